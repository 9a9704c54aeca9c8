package claims

import (
	"slices"

	"github.com/proxylab/proxylab/lab"
)

// Where a figure is read from.
const (
	// FromStep: one step of each run, chosen by at.
	FromStep = "step"
	// FromSearch: each searched run as a whole.
	FromSearch = "search"
	// FromBuild: the row's image or binary, the same in every run.
	FromBuild = "build"
)

// Figure is one quantity a claim can be about.
type Figure struct {
	Name  string
	Label string // short, for verdicts: "p99"
	// Unit is the base unit of values and relations: "/s", "us"
	// (microseconds), "bytes", "ratio" (a share, 0.0072 = 0.72%), "count".
	Unit string
	// Noisy: the figure varies from run to run, so a verdict rests on the
	// interval of its median across runs; otherwise on the value itself.
	Noisy bool
	From  string // FromStep, FromSearch or FromBuild
	// TakesAt: the figure is per step and a claim may select the step
	// with at; without at the scenario must have exactly one step, unless
	// Whole is set.
	TakesAt bool
	// Whole: without at, the figure is the maximum over the run's steps.
	Whole bool
	// Step reads a FromStep figure; ok is false when the step lacks it.
	Step func(*lab.Step) (v float64, ok bool)
	// Run reads a FromSearch figure; lowerBound is set when the search
	// stopped at something other than the proxy.
	Run func(*lab.Run) (v float64, lowerBound, ok bool)
	// Build reads a FromBuild figure from the row.
	Build func(*lab.ProxyResult) (v float64, ok bool)
	// Needs says what results hold the figure, for a verdict that found
	// none.
	Needs string
	// About is one line on how the figure is read, for the README.
	About string
}

func (f *Figure) unit() *unit { return units[f.Unit] }

// Figures is every figure, in the order documentation lists them.
var Figures = []*Figure{
	{Name: "capacity", Label: "capacity", Unit: "/s", Noisy: true, From: FromSearch,
		Run:   searchRate,
		Needs: "run a search scenario (load.search)",
		About: "the highest rate a saturation search found (search.rate); a search that stopped at the load generator, at search.max or unfinished gives a lower bound only"},
	{Name: "achieved_rate", Label: "achieved rate", Unit: "/s", Noisy: true, From: FromStep, TakesAt: true,
		Step:  func(s *lab.Step) (float64, bool) { return s.AchievedRate, true },
		Needs: "run a scenario with load.steps",
		About: "requests sent per second in the step"},
	latency("latency_p50", "p50", func(s *lab.Step) int64 { return s.Latency.P50 }),
	latency("latency_p90", "p90", func(s *lab.Step) int64 { return s.Latency.P90 }),
	latency("latency_p99", "p99", func(s *lab.Step) int64 { return s.Latency.P99 }),
	latency("latency_p99_9", "p99.9", func(s *lab.Step) int64 { return s.Latency.P999 }),
	latency("latency_max", "max latency", func(s *lab.Step) int64 { return s.Latency.Max }),
	{Name: "cpu_per_request", Label: "CPU per request", Unit: "us", Noisy: true, From: FromStep, TakesAt: true,
		Step:  cpuPerRequest,
		Needs: "run a scenario with load.steps against a proxy (the direct row has no proxy CPU)",
		About: "the proxy's CPU time in the step over the requests of the step"},
	{Name: "perf_loss_ratio", Label: "perf loss ratio", Unit: "ratio", Noisy: true, From: FromStep, TakesAt: true,
		Step:  perfLoss,
		Needs: "run a scenario with probes.enabled and events sent (probes.events all or a sample)",
		About: "the perf buffer's lost share of the events sent; only when events were sent"},
	{Name: "accepts", Label: "accepts", Unit: "count", Noisy: true, From: FromStep, TakesAt: true,
		Step:  func(s *lab.Step) (float64, bool) { return probeCount(s, true) },
		Needs: "run a scenario with probes.enabled",
		About: "connections the proxy accepted in the step, as the probes counted them"},
	{Name: "connects", Label: "connects", Unit: "count", Noisy: true, From: FromStep, TakesAt: true,
		Step:  func(s *lab.Step) (float64, bool) { return probeCount(s, false) },
		Needs: "run a scenario with probes.enabled",
		About: "connections the proxy opened to the upstream in the step, as the probes counted them"},
	{Name: "peak_rss", Label: "peak RSS", Unit: "bytes", Noisy: true, From: FromStep, TakesAt: true, Whole: true,
		Step:  peakRSS,
		Needs: "run a scenario against a proxy (the direct row has no proxy memory)",
		About: "the proxy's resident memory high-water mark: at the step with at, else the run's maximum over its steps"},
	{Name: "image_bytes", Label: "image size", Unit: "bytes", From: FromBuild,
		Build: func(p *lab.ProxyResult) (float64, bool) { return float64(p.Image.SizeBytes), p.Image.SizeBytes > 0 },
		Needs: "any results file with the rows' images (the direct row has none)",
		About: "the size of the row's container image"},
	{Name: "binary_bytes", Label: "binary size", Unit: "bytes", From: FromBuild,
		Build: func(p *lab.ProxyResult) (float64, bool) { return float64(p.BinaryBytes), p.BinaryBytes > 0 },
		Needs: "any results file with the rows' binaries (the direct row has none)",
		About: "the size of the row's executable"},
}

// FigureNames lists the figures' names in table order.
func FigureNames() []string {
	names := make([]string, len(Figures))
	for i, f := range Figures {
		names[i] = f.Name
	}
	return names
}

// FigureByName returns the named figure, or nil.
func FigureByName(name string) *Figure {
	i := slices.IndexFunc(Figures, func(f *Figure) bool { return f.Name == name })
	if i < 0 {
		return nil
	}
	return Figures[i]
}

func latency(name, label string, of func(*lab.Step) int64) *Figure {
	return &Figure{Name: name, Label: label, Unit: "us", Noisy: true, From: FromStep, TakesAt: true,
		Step:  func(s *lab.Step) (float64, bool) { return float64(of(s)), s.Requests > 0 },
		Needs: "run a scenario with load.steps",
		About: "the step's " + label + " latency over every request"}
}

func searchRate(r *lab.Run) (v float64, lowerBound, ok bool) {
	if r.Search == nil {
		return 0, false, false
	}
	return float64(r.Search.Rate), r.Search.StoppedBy != lab.StoppedByProxy || !r.Search.LimitedByProxy(), true
}

func cpuPerRequest(s *lab.Step) (float64, bool) {
	if s.Resources == nil || s.Resources.NoProxy || s.Requests == 0 {
		return 0, false
	}
	return s.Resources.ProxyCPUSeconds / float64(s.Requests) * 1e6, true
}

func perfLoss(s *lab.Step) (float64, bool) {
	if s.Probes == nil || s.Probes.SampleEvery == 0 {
		// Nothing was sent, so there is no ratio to give.
		return 0, false
	}
	return s.Probes.LossRatio, true
}

func probeCount(s *lab.Step, accepts bool) (float64, bool) {
	if s.Probes == nil || s.Probes.Mode == "" {
		return 0, false
	}
	if accepts {
		return float64(s.Probes.Accepts), true
	}
	return float64(s.Probes.Connects), true
}

func peakRSS(s *lab.Step) (float64, bool) {
	if s.Resources == nil || s.Resources.NoProxy {
		return 0, false
	}
	return float64(s.Resources.ProxyPeakRSSBytes), true
}
