package report

import (
	"cmp"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/stats"
)

// latencyThroughputName is the latency-against-throughput plot, the one
// the findings show: what a reader of a proxy benchmark looks for first.
const latencyThroughputName = "latency-throughput"

const latencyThroughputCaption = "Latency against the rate actually achieved: every run's step as a point (search probes included; p99 large, p50 small; × = target rate not delivered), and lines through the medians at each rate of the steps that were delivered (p99 solid, p50 dashed). Where a row's curve turns upwards, requests start to queue."

// ltSeries is one row's points on the latency-against-throughput plot:
// x is the achieved rate, y log10 of the latency in ms.
type ltSeries struct {
	Proxy        *lab.ProxyResult
	Index        int         // in the file, for its colour and glyph
	P50, P99     plotter.XYs // steps whose rate was delivered
	Sat50, Sat99 plotter.XYs // steps whose rate was not
	Med50, Med99 plotter.XYs // medians per rate of the delivered steps, by rate
}

// latencySeries gathers every row's points. A row without a step is left
// out. Steps are grouped by target rate in a search (its runs probe
// different rates) and by their place otherwise.
func latencySeries(f *File) []ltSeries {
	var out []ltSeries
	for i, p := range f.Proxies {
		s := ltSeries{Proxy: p, Index: i}
		groups := map[float64][]*lab.Step{}
		for _, r := range p.Runs {
			for k, st := range r.Steps {
				if st.Interrupted || st.Requests == 0 {
					continue
				}
				p50, p99 := logMs(st.Latency.P50), logMs(st.Latency.P99)
				if st.LoadgenSaturated {
					s.Sat50 = append(s.Sat50, plotter.XY{X: st.AchievedRate, Y: p50})
					s.Sat99 = append(s.Sat99, plotter.XY{X: st.AchievedRate, Y: p99})
					continue
				}
				s.P50 = append(s.P50, plotter.XY{X: st.AchievedRate, Y: p50})
				s.P99 = append(s.P99, plotter.XY{X: st.AchievedRate, Y: p99})
				key := float64(k)
				if f.Scenario.Load.Search != nil {
					key = st.TargetRate
				}
				groups[key] = append(groups[key], st)
			}
		}
		s.Med50, s.Med99 = medianCurve(groups, func(st *lab.Step) int64 { return st.Latency.P50 }), medianCurve(groups, func(st *lab.Step) int64 { return st.Latency.P99 })
		if len(s.P99)+len(s.Sat99) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// medianCurve is, per group of steps, the median achieved rate against
// the median latency, ordered by rate.
func medianCurve(groups map[float64][]*lab.Step, lat func(*lab.Step) int64) plotter.XYs {
	var pts plotter.XYs
	for _, steps := range groups {
		var x, y []float64
		for _, st := range steps {
			x, y = append(x, st.AchievedRate), append(y, float64(lat(st)))
		}
		pts = append(pts, plotter.XY{X: stats.Median(x), Y: logMs(int64(stats.Median(y)))})
	}
	slices.SortFunc(pts, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
	return pts
}

// logMs is log10 of a latency in µs taken to ms, kept above 1 µs so that
// a zero does not fall off the axis.
func logMs(us int64) float64 { return math.Log10(math.Max(float64(us)/1000, 0.001)) }

// latencyThroughput draws the plot; nil when there is nothing to draw. A
// closed-model file with a single step per row gives one point per row,
// which says nothing its findings table does not, so it has none.
func latencyThroughput(f *File) (*plot.Plot, error) {
	if f.closed() && f.Steps() <= 1 {
		return nil, nil
	}
	series := latencySeries(f)
	if len(series) == 0 {
		return nil, nil
	}
	p := newPlot(f, "latency against throughput")
	p.X.Label.Text = "achieved rate (requests/s)"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Tick.Marker = log10Ticks{}
	legendAt(p, true, true)
	saturated := false
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		if err := addLatencySeries(p, s); err != nil {
			return nil, err
		}
		saturated = saturated || len(s.Sat99) > 0
		for _, pts := range []plotter.XYs{s.P50, s.P99, s.Sat50, s.Sat99} {
			for _, pt := range pts {
				lo, hi = math.Min(lo, pt.Y), math.Max(hi, pt.Y)
			}
		}
	}
	if err := addLatencyKey(p, saturated); err != nil {
		return nil, err
	}
	p.X.Min = 0
	// Head room above for the legend, a little below for the fastest dots.
	p.Y.Min, p.Y.Max = lo-0.1, hi+0.35
	return p, nil
}

// addLatencySeries draws one row: its dots, crosses and median lines, and
// its legend entry.
func addLatencySeries(p *plot.Plot, s ltSeries) error {
	col := proxyColor(s.Proxy.Name, s.Index)
	dots := []struct {
		pts   plotter.XYs
		style draw.GlyphStyle
	}{
		{s.P99, draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: glyph(s.Index)}},
		{s.P50, draw.GlyphStyle{Color: col, Radius: vg.Points(1.8), Shape: glyph(s.Index)}},
		{s.Sat99, draw.GlyphStyle{Color: col, Radius: vg.Points(4), Shape: draw.CrossGlyph{}}},
		{s.Sat50, draw.GlyphStyle{Color: col, Radius: vg.Points(2.5), Shape: draw.CrossGlyph{}}},
	}
	for _, d := range dots {
		if err := addScatter(p, d.pts, d.style); err != nil {
			return err
		}
	}
	solid := draw.LineStyle{Color: col, Width: vg.Points(2)}
	dashed := draw.LineStyle{Color: col, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
	var thumbs []plot.Thumbnailer
	for _, m := range []struct {
		pts   plotter.XYs
		style draw.LineStyle
	}{{s.Med99, solid}, {s.Med50, dashed}} {
		if len(m.pts) < 2 {
			continue
		}
		l, err := plotter.NewLine(m.pts)
		if err != nil {
			return err
		}
		l.LineStyle = m.style
		p.Add(l)
		if len(thumbs) == 0 {
			thumbs = append(thumbs, l)
		}
	}
	thumb, err := scatter(plotter.XYs{{}}, dots[0].style)
	if err != nil {
		return err
	}
	p.Legend.Add(proxyLabel(s.Proxy), append(thumbs, thumb)...)
	return nil
}

// addLatencyKey explains the two line styles, and the cross when one is
// drawn, in neutral grey.
func addLatencyKey(p *plot.Plot, saturated bool) error {
	grey := color.Gray{0x50}
	for _, k := range []struct {
		name  string
		style draw.LineStyle
	}{
		{"p99 (solid)", draw.LineStyle{Color: grey, Width: vg.Points(2)}},
		{"p50 (dashed)", draw.LineStyle{Color: grey, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}},
	} {
		l, err := plotter.NewLine(plotter.XYs{{}, {}})
		if err != nil {
			return err
		}
		l.LineStyle = k.style
		p.Legend.Add(k.name, l)
	}
	if !saturated {
		return nil
	}
	x, err := scatter(plotter.XYs{{}}, draw.GlyphStyle{Color: grey, Radius: vg.Points(4), Shape: draw.CrossGlyph{}})
	if err != nil {
		return err
	}
	p.Legend.Add("target rate not delivered", x)
	return nil
}
