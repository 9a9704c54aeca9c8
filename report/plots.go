package report

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// Plot is one figure written as SVG and PNG, paths relative to the report.
type Plot struct {
	Name string // file name without extension
	Kind string // which figure: Name without the file's prefix
	// Headline plots are shown with the findings, the others with their
	// file's details.
	Headline bool
	Title    string
	Caption  string
	SVG      string
	PNG      string
}

const (
	plotWidth  = 9 * vg.Inch
	plotHeight = 5.5 * vg.Inch
)

// Plots draws every figure f supports into dir and returns them in report
// order. A figure without data (no probes, no resources) is left out.
func Plots(f *File, dir string) ([]Plot, error) { return plotsNamed(f, dir, "") }

// plotsNamed draws f's figures with file names beginning with prefix.
func plotsNamed(f *File, dir, prefix string) ([]Plot, error) {
	var out []Plot
	add := func(name, title, caption string, p *plot.Plot, err error) error {
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		if p == nil {
			return nil
		}
		pl := Plot{Name: prefix + name, Kind: name, Title: title, Caption: caption, Headline: name == latencyThroughputName}
		pl.SVG, pl.PNG = pl.Name+".svg", pl.Name+".png"
		for _, file := range []string{pl.SVG, pl.PNG} {
			if err := p.Save(plotWidth, plotHeight, filepath.Join(dir, file)); err != nil {
				return fmt.Errorf("plot %s: %w", file, err)
			}
		}
		out = append(out, pl)
		return nil
	}
	for step := 1; step <= f.Steps(); step++ {
		p, title, err := latencySpectrum(f, step)
		if err := add(fmt.Sprintf("latency-step%d", step), title,
			"Latency by percentile, HdrHistogram style: each proxy's histograms of this step merged over its runs. The x axis stretches the tail: each grid step is ten times rarer.", p, err); err != nil {
			return nil, err
		}
	}
	figures := []struct {
		name, title, caption string
		draw                 func(*File) (*plot.Plot, error)
	}{
		{latencyThroughputName, "Latency against throughput", latencyThroughputCaption, latencyThroughput},
		{"throughput", "Throughput against offered rate", "Successful responses per second against the target rate: every run's step as a dot (search probes included; × = load generator saturated), the line through the medians with their bootstrap interval. On the dashed diagonal every offered request was served.", throughput},
		{"p99-timeline", "p99 latency over time", "Each second's p99 latency, median across runs, with the steps one after another as the load generator ran them.", timeline},
		{"peak-rss", "Peak resident memory", "The proxy process's resident-set high-water mark at the end of the last step, median across runs, with the bootstrap interval.", peakRSS},
		{"image-size", "Image and binary size", "Size of the static binary and of the FROM scratch image holding it.", sizes},
		{"perf-loss", "eBPF perf-buffer loss ratio", "Share of probe events the kernel could not hand to the perf buffer (failed / attempted), median across runs, per step.", perfLoss},
	}
	for _, fig := range figures {
		p, err := fig.draw(f)
		if err := add(fig.name, fig.title, fig.caption, p, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// newPlot sets up a figure with the title every plot carries: what it
// shows, then scenario, host and date, so a figure lifted out of the report
// still says where it came from.
func newPlot(f *File, what string) *plot.Plot {
	p := plot.New()
	h := f.Host
	p.Title.Text = fmt.Sprintf("%s: %s\n%s, %d cores, Linux %s, %s UTC, run %s",
		f.Scenario.Name, what, h.CPUModel, h.Cores, h.Kernel, f.StartedAt.UTC().Format("2006-01-02 15:04"), f.RunID)
	p.Title.TextStyle.Font.Size = 13
	p.Title.Padding = 6
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = 13
		a.Tick.Label.Font.Size = 11
	}
	p.Legend.TextStyle.Font.Size = 12
	p.Legend.Padding = vg.Points(2)
	legendAt(p, true, false)
	p.Add(plotter.NewGrid())
	return p
}

// legendAt places the legend in a corner, kept off the canvas edge: a
// right-hand legend otherwise ends flush with the image border.
func legendAt(p *plot.Plot, top, left bool) {
	p.Legend.Top, p.Legend.Left = top, left
	p.Legend.XOffs = -vg.Points(10)
	if left {
		p.Legend.XOffs = vg.Points(6)
	}
	p.Legend.YOffs = -vg.Points(4)
	if !top {
		p.Legend.YOffs = vg.Points(4)
	}
}

// proxyColor keeps each proxy's colour the same in every figure.
func proxyColor(name string, i int) color.Color {
	switch name {
	case "go":
		return color.RGBA{0x00, 0x7d, 0x9c, 0xff}
	case "rust":
		return color.RGBA{0xb7, 0x41, 0x0e, 0xff}
	case "zig":
		return color.RGBA{0xe0, 0x8e, 0x00, 0xff}
	case "nginx":
		return color.RGBA{0x00, 0x96, 0x39, 0xff}
	case lab.Direct.Name:
		return color.RGBA{0x60, 0x60, 0x60, 0xff}
	}
	extra := []color.Color{color.RGBA{0x6a, 0x3d, 0x9a, 0xff}, color.RGBA{0xe3, 0x1a, 0x1c, 0xff}, color.RGBA{0x1f, 0x78, 0xb4, 0xff}}
	return extra[i%len(extra)]
}

// glyph gives each proxy its own marker shape, so overlapping dots of
// different proxies stay distinguishable without colour.
func glyph(i int) draw.GlyphDrawer {
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}}
	return shapes[i%len(shapes)]
}

func lineStyle(p *lab.ProxyResult, i int) draw.LineStyle {
	s := draw.LineStyle{Color: proxyColor(p.Name, i), Width: vg.Points(2)}
	if p.Baseline {
		s.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	}
	return s
}

// mergedHistogram pools the step's histograms of every counted run.
func mergedHistogram(p *lab.ProxyResult, step int) (*hdrhistogram.Histogram, int) {
	var merged *hdrhistogram.Histogram
	runs := 0
	for _, st := range lab.StepsAt(p.Runs, step-1) {
		h, err := hdrhistogram.Decode([]byte(st.Latency.Histogram))
		if err != nil || h.TotalCount() == 0 {
			continue
		}
		runs++
		if merged == nil {
			merged = h
			continue
		}
		merged.Merge(h)
	}
	return merged, runs
}

func latencySpectrum(f *File, step int) (*plot.Plot, string, error) {
	target := 0.0
	for _, p := range f.Proxies {
		if s := p.StepSummary(step); s != nil {
			target = s.TargetRate
		}
	}
	title := fmt.Sprintf("Latency by percentile at %s (step %d)", f.load(step, target), step)
	p := newPlot(f, strings.ToLower(title[:1])+title[1:])
	p.X.Label.Text = "percentile (log scale of 1/(1 − p))"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.X.Tick.Marker = percentileTicks{}
	p.Y.Tick.Marker = log10Ticks{}
	legendAt(p, true, true)
	drawn := 0
	maxX, maxY := 1.0, math.Inf(-1)
	for i, px := range f.Proxies {
		h, runs := mergedHistogram(px, step)
		if h == nil {
			continue
		}
		var pts plotter.XYs
		last := math.Log10(float64(h.TotalCount()))
		for k := 0.0; ; k += 0.02 {
			k = math.Min(k, last)
			q := 100 * (1 - math.Pow(10, -k))
			v := float64(h.ValueAtQuantile(q)) / 1000
			pts = append(pts, plotter.XY{X: k, Y: math.Log10(math.Max(v, 0.001))})
			maxY = math.Max(maxY, pts[len(pts)-1].Y)
			if k >= last {
				break
			}
		}
		maxX = math.Max(maxX, last)
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, "", err
		}
		l.LineStyle = lineStyle(px, i)
		p.Add(l)
		pooled := fmt.Sprintf("%d runs pooled", runs)
		if runs == 1 {
			pooled = "1 run"
		}
		p.Legend.Add(proxyLabel(px)+", "+pooled, l)
		drawn++
	}
	if drawn == 0 {
		return nil, title, nil
	}
	p.X.Min, p.X.Max = 0, maxX+0.15
	// Head room keeps the slowest tail off the frame.
	p.Y.Max = maxY + 0.08
	return p, title, nil
}

// The log axes below plot log10 of the value on a linear scale and label
// the ticks with the value itself: gonum/plot places a log axis's label by
// the arithmetic middle of the data range, which pushes it off the canvas.

// percentileTicks labels the log10(1/(1-p)) axis with percentiles: 0 ->
// 0%, 1 -> 90%, 2 -> 99%, ...
type percentileTicks struct{}

func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	// A tick right at the end would put half its label past the edge.
	for k := math.Ceil(lo - 1e-9); k <= hi-0.2; k++ {
		t = append(t, plot.Tick{Value: k, Label: percentileLabel(math.Pow(10, k))})
	}
	return t
}

func percentileLabel(v float64) string {
	if v <= 1 {
		return "0%"
	}
	p := 100 * (1 - 1/v)
	digits := max(0, int(math.Round(math.Log10(v)))-2)
	return fmt.Sprintf("%.*f%%", digits, p)
}

// log10Ticks marks 1..9 of each decade on a log10-transformed axis and
// labels 1, 2 and 5, which a log axis of latencies needs to be read
// without a ruler.
type log10Ticks struct{}

func (log10Ticks) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	for d := math.Floor(lo); d <= math.Ceil(hi); d++ {
		for m := 1.0; m <= 9; m++ {
			v := math.Log10(m) + d
			if v < lo-1e-9 || v > hi+1e-9 {
				continue
			}
			tk := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				tk.Label = trimNum(math.Pow(10, v))
			}
			t = append(t, tk)
		}
	}
	return t
}

func trimNum(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// errPoints are points with their lower and upper error bars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

func throughput(f *File) (*plot.Plot, error) {
	p := newPlot(f, "throughput against offered rate")
	p.X.Label.Text = "target rate (requests/s)"
	p.Y.Label.Text = "throughput (successful responses/s)"
	legendAt(p, true, true)
	maxRate := 0.0
	drawn, saturated := 0, 0
	for i, px := range f.Proxies {
		all, sat, top := stepPoints(px)
		maxRate = math.Max(maxRate, top)
		col := proxyColor(px.Name, i)
		if err := addScatter(p, all, draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: glyph(i)}); err != nil {
			return nil, err
		}
		if err := addScatter(p, sat, draw.GlyphStyle{Color: col, Radius: vg.Points(4), Shape: draw.CrossGlyph{}}); err != nil {
			return nil, err
		}
		// The median line only where steps are fixed; a search's probes
		// differ from run to run and have no per-step median.
		var err error
		if f.Scenario.Load.Search == nil && len(px.Summary) > 0 {
			err = addMedianLine(p, px, i)
		} else if len(all)+len(sat) > 0 {
			var s *plotter.Scatter
			if s, err = scatter(append(all, sat...), draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: glyph(i)}); err == nil {
				p.Legend.Add(proxyLabel(px), s)
			}
		}
		if err != nil {
			return nil, err
		}
		drawn += len(all) + len(sat)
		saturated += len(sat)
	}
	if drawn == 0 {
		return nil, nil
	}
	if err := addThroughputKey(p, maxRate, saturated > 0); err != nil {
		return nil, err
	}
	p.X.Min, p.Y.Min = 0, 0
	p.X.Max, p.Y.Max = maxRate*1.05, maxRate*1.05
	return p, nil
}

// stepPoints are every run's steps of px as (target rate, throughput),
// apart the ones the load generator did not deliver, and the largest value.
func stepPoints(px *lab.ProxyResult) (all, sat plotter.XYs, top float64) {
	for _, r := range px.Runs {
		for _, st := range r.Steps {
			if st.Interrupted {
				continue
			}
			pt := plotter.XY{X: st.TargetRate, Y: st.Throughput}
			top = math.Max(top, math.Max(st.TargetRate, st.Throughput))
			if st.LoadgenSaturated {
				sat = append(sat, pt)
			} else {
				all = append(all, pt)
			}
		}
	}
	return all, sat, top
}

// scatter is a scatter of pts drawn with style.
func scatter(pts plotter.XYs, style draw.GlyphStyle) (*plotter.Scatter, error) {
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	s.GlyphStyle = style
	return s, nil
}

// addScatter adds a scatter of pts to p; none when there are no points.
func addScatter(p *plot.Plot, pts plotter.XYs, style draw.GlyphStyle) error {
	if len(pts) == 0 {
		return nil
	}
	s, err := scatter(pts, style)
	if err == nil {
		p.Add(s)
	}
	return err
}

// addMedianLine draws px's median throughput per step with its bootstrap
// interval, and its legend entry.
func addMedianLine(p *plot.Plot, px *lab.ProxyResult, i int) error {
	var med errPoints
	for _, s := range px.Summary {
		lo, hi := s.Throughput.Median, s.Throughput.Median
		if s.Throughput.HasInterval {
			lo, hi = s.Throughput.Lo, s.Throughput.Hi
		}
		med.XYs = append(med.XYs, plotter.XY{X: s.TargetRate, Y: s.Throughput.Median})
		med.YErrors = append(med.YErrors, struct{ Low, High float64 }{s.Throughput.Median - lo, hi - s.Throughput.Median})
	}
	col := proxyColor(px.Name, i)
	l, err := plotter.NewLine(med.XYs)
	if err != nil {
		return err
	}
	l.LineStyle = lineStyle(px, i)
	p.Add(l)
	thumb, err := scatter(med.XYs, draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: glyph(i)})
	if err != nil {
		return err
	}
	eb, err := plotter.NewYErrorBars(med)
	if err != nil {
		return err
	}
	eb.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1.5)}
	eb.CapWidth = vg.Points(8)
	p.Add(eb)
	p.Legend.Add(proxyLabel(px), l, thumb)
	return nil
}

// addThroughputKey draws the diagonal where every offered request was
// served, and explains the saturated marker when one is drawn.
func addThroughputKey(p *plot.Plot, maxRate float64, saturated bool) error {
	d, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: maxRate, Y: maxRate}})
	if err != nil {
		return err
	}
	d.LineStyle = draw.LineStyle{Color: color.Gray{0x90}, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(4)}}
	p.Add(d)
	p.Legend.Add("offered = served", d)
	if !saturated {
		return nil
	}
	x, err := scatter(plotter.XYs{{}}, draw.GlyphStyle{Color: color.Gray{0x40}, Radius: vg.Points(4), Shape: draw.CrossGlyph{}})
	if err != nil {
		return err
	}
	p.Legend.Add("load generator saturated", x)
	return nil
}

func timeline(f *File) (*plot.Plot, error) {
	p := newPlot(f, "p99 latency, second by second")
	p.X.Label.Text = "seconds since the first measured step began"
	p.Y.Label.Text = "p99 latency of the second (ms, log scale)"
	p.Y.Tick.Marker = log10Ticks{}
	steps := f.Steps()
	// Step boundaries from the longest timeline of each step, so every
	// proxy's seconds line up under the same step.
	lengths := make([]int, steps)
	for _, px := range f.Proxies {
		for i := range steps {
			for _, st := range lab.StepsAt(px.Runs, i) {
				lengths[i] = max(lengths[i], len(st.Timeline))
			}
		}
	}
	drawn := 0
	maxY, minY := 0.0, math.Inf(1)
	for i, px := range f.Proxies {
		var pts plotter.XYs
		offset := 0
		for s := range steps {
			runs := lab.StepsAt(px.Runs, s)
			for sec := range lengths[s] {
				var v []float64
				for _, st := range runs {
					if sec < len(st.Timeline) && st.Timeline[sec].Requests > 0 {
						v = append(v, float64(st.Timeline[sec].P99)/1000)
					}
				}
				if len(v) > 0 {
					y := math.Max(stats.Median(v), 0.001)
					maxY, minY = math.Max(maxY, y), math.Min(minY, y)
					pts = append(pts, plotter.XY{X: float64(offset + sec), Y: math.Log10(y)})
				}
			}
			offset += lengths[s]
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.LineStyle = lineStyle(px, i)
		p.Add(l)
		p.Legend.Add(proxyLabel(px), l)
		drawn++
	}
	if drawn == 0 {
		return nil, nil
	}
	// Mark where each step starts, with its rate.
	var marks plotter.XYLabels
	offset := 0
	for s, n := range lengths {
		if s > 0 {
			v, err := plotter.NewLine(plotter.XYs{{X: float64(offset), Y: math.Log10(minY / 1.5)}, {X: float64(offset), Y: math.Log10(maxY * 2.5)}})
			if err != nil {
				return nil, err
			}
			v.LineStyle = draw.LineStyle{Color: color.Gray{0x80}, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(2), vg.Points(3)}}
			p.Add(v)
		}
		target := 0.0
		for _, px := range f.Proxies {
			if sm := px.StepSummary(s + 1); sm != nil {
				target = sm.TargetRate
			}
		}
		marks.XYs = append(marks.XYs, plotter.XY{X: float64(offset) + 0.3, Y: math.Log10(maxY * 1.6)})
		marks.Labels = append(marks.Labels, f.load(s+1, target))
		offset += n
	}
	l, err := plotter.NewLabels(marks)
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = 11
	}
	p.Add(l)
	p.X.Min, p.X.Max = 0, float64(offset)
	p.Y.Min, p.Y.Max = math.Log10(minY/1.5), math.Log10(maxY*2.5)
	// Keep the legend clear of the step labels along the top and of the
	// first step's lines, which start at the left.
	legendAt(p, false, false)
	return p, nil
}

// bars draws one bar per proxy that has a value (NaN = none, as for the
// direct baseline, which has no proxy process), each in its colour, with
// error bars and the value written above.
func bars(p *plot.Plot, f *File, vals []float64, errs [][2]float64, unit string) error {
	var names []string
	w := vg.Points(40)
	top := 0.0
	var labels plotter.XYLabels
	x := 0
	for i, px := range f.Proxies {
		if math.IsNaN(vals[i]) {
			continue
		}
		names = append(names, proxyLabel(px))
		b, err := plotter.NewBarChart(plotter.Values{vals[i]}, w)
		if err != nil {
			return err
		}
		b.XMin = float64(x)
		b.Color = proxyColor(px.Name, i)
		b.LineStyle.Width = 0
		p.Add(b)
		hi := vals[i] + errs[i][1]
		top = math.Max(top, hi)
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(x), Y: hi})
		labels.Labels = append(labels.Labels, fmt.Sprintf("%.2f %s", vals[i], unit))
		if errs[i] != [2]float64{} {
			ep := errPoints{XYs: plotter.XYs{{X: float64(x), Y: vals[i]}}, YErrors: plotter.YErrors{{Low: errs[i][0], High: errs[i][1]}}}
			eb, err := plotter.NewYErrorBars(ep)
			if err != nil {
				return err
			}
			eb.LineStyle.Width = vg.Points(1.5)
			eb.CapWidth = vg.Points(12)
			p.Add(eb)
		}
		x++
	}
	if err := addBarLabels(p, labels); err != nil {
		return err
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(x)-0.5
	p.Y.Min, p.Y.Max = 0, math.Max(top, 1e-9)*1.18
	return nil
}

// addBarLabels writes each bar's value just above it, so small bars next
// to large ones can still be read.
func addBarLabels(p *plot.Plot, labels plotter.XYLabels) error {
	if len(labels.XYs) == 0 {
		return nil
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = 11
		l.TextStyle[i].XAlign = draw.XCenter
	}
	l.Offset = vg.Point{Y: vg.Points(4)}
	p.Add(l)
	return nil
}

func peakRSS(f *File) (*plot.Plot, error) {
	vals := make([]float64, len(f.Proxies))
	errs := make([][2]float64, len(f.Proxies))
	any := false
	for i, px := range f.Proxies {
		vals[i] = math.NaN()
		if len(px.Summary) == 0 {
			continue
		}
		s := px.Summary[len(px.Summary)-1].PeakRSSBytes
		if s.N == 0 {
			continue
		}
		any = true
		vals[i] = s.Median / (1 << 20)
		if s.HasInterval {
			errs[i] = [2]float64{(s.Median - s.Lo) / (1 << 20), (s.Hi - s.Median) / (1 << 20)}
		}
	}
	if !any {
		return nil, nil
	}
	p := newPlot(f, "peak resident memory of the proxy process")
	p.Y.Label.Text = "peak RSS (MiB)"
	p.X.Label.Text = "proxy"
	if err := bars(p, f, vals, errs, "MiB"); err != nil {
		return nil, err
	}
	p.Legend = plot.NewLegend()
	return p, nil
}

func sizes(f *File) (*plot.Plot, error) {
	p := newPlot(f, "static binary and image size")
	p.Y.Label.Text = "size (MiB)"
	p.X.Label.Text = "proxy"
	w := vg.Points(28)
	var names []string
	any := false
	top := 0.0
	var labels plotter.XYLabels
	for i, px := range f.Proxies {
		names = append(names, proxyLabel(px))
		if px.BinaryBytes == 0 && px.Image.SizeBytes == 0 {
			continue
		}
		any = true
		for k, v := range []float64{float64(px.BinaryBytes), float64(px.Image.SizeBytes)} {
			b, err := plotter.NewBarChart(plotter.Values{v / (1 << 20)}, w)
			if err != nil {
				return nil, err
			}
			b.XMin = float64(i)
			b.Offset = w * vg.Length(2*k-1) / 2
			c := proxyColor(px.Name, i)
			if k == 0 {
				c = lighten(c)
			}
			b.Color = c
			b.LineStyle.Width = 0
			p.Add(b)
		}
		mib := float64(px.Image.SizeBytes) / (1 << 20)
		top = math.Max(top, math.Max(mib, float64(px.BinaryBytes)/(1<<20)))
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: math.Max(mib, float64(px.BinaryBytes)/(1<<20))})
		labels.Labels = append(labels.Labels, fmt.Sprintf("%.2f MiB", mib))
	}
	if !any {
		return nil, nil
	}
	if err := addBarLabels(p, labels); err != nil {
		return nil, err
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(f.Proxies))-0.5
	p.Y.Min, p.Y.Max = 0, top*1.3
	// One legend entry per kind of bar, in neutral grey.
	for k, name := range []string{"static binary (left, light)", "scratch image (right; value shown)"} {
		b, err := plotter.NewBarChart(plotter.Values{0}, w)
		if err != nil {
			return nil, err
		}
		b.Color = color.Gray{0x50}
		if k == 0 {
			b.Color = color.Gray{0xb0}
		}
		p.Legend.Add(name, b)
	}
	return p, nil
}

func lighten(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8((v>>8 + 2*0xff) / 3) }
	return color.RGBA{mix(r), mix(g), mix(b), 0xff}
}

func perfLoss(f *File) (*plot.Plot, error) {
	if f.Probes == nil || f.Probes.Mode == "" {
		return nil, nil
	}
	steps := f.Steps()
	if steps == 0 {
		return nil, nil
	}
	p := newPlot(f, "eBPF perf-buffer loss ratio")
	p.Y.Label.Text = "loss ratio (failed / attempted)"
	p.X.Label.Text = "step (target rate)"
	n := len(f.Proxies)
	w := vg.Points(min(30, 240/float64(max(n, 1))))
	maxV := 0.0
	any := false
	for i, px := range f.Proxies {
		vals := make(plotter.Values, steps)
		for s := range steps {
			if sm := px.StepSummary(s + 1); sm != nil && sm.ProbeLossRatio.N > 0 {
				vals[s] = sm.ProbeLossRatio.Median
				maxV = math.Max(maxV, vals[s])
				any = true
			}
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		b.Offset = w * vg.Length(2*i-n+1) / 2
		b.Color = proxyColor(px.Name, i)
		b.LineStyle.Width = 0
		p.Add(b)
		p.Legend.Add(proxyLabel(px), b)
	}
	if !any {
		return nil, nil
	}
	var names []string
	for s := range steps {
		t := 0.0
		for _, px := range f.Proxies {
			if sm := px.StepSummary(s + 1); sm != nil {
				t = sm.TargetRate
			}
		}
		names = append(names, fmt.Sprintf("step %d (%s)", s+1, f.load(s+1, t)))
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(steps)-0.5
	p.Y.Min = 0
	if maxV == 0 {
		// All zero: a visible scale says "nothing lost" better than an
		// empty axis would.
		p.Y.Max = 0.01
		p.Title.Text += "\nno event lost in any step"
	} else {
		p.Y.Max = maxV * 1.25
	}
	return p, nil
}
