// Package report turns a results file into what a blog post is written
// from: Markdown tables with intervals and significance, plots (SVG and
// PNG, made with gonum/plot), and a metric-by-metric diff of two files that
// flags what changed in the environment.
package report

import (
	"fmt"

	"github.com/proxylab/proxylab/lab"
)

// File is one results file as the report reads it.
type File struct {
	Path string
	*lab.Results
	// Proxies in the file's order, with what the report derives for each.
	Proxies []*Proxy
}

// Proxy is one measured proxy (or baseline) with its summary recomputed
// by this version's method, so that older files read the same way.
type Proxy struct {
	*lab.ProxyResult
	// Baseline rows (direct load at the upstream, nginx) are shown for
	// scale but never called the best.
	Baseline bool
	Summary  []lab.StepSummary
	// Searches holds each repetition's saturation search, when the
	// scenario searched for the highest rate instead of fixed steps.
	Searches []*Search
	// LoadgenCPU is the load generator's CPU seconds per run and step, when
	// the file records it (indexed like Runs and their Steps; -1 = absent).
	LoadgenCPU [][]float64
}

// Direct is the baseline row that sends load straight at the upstream.
const Direct = "direct"

// Search is one repetition's saturation search, as lab recorded it.
type Search struct {
	Repetition int
	*lab.SearchResult
}

// Load reads a results file. Files written before baselines, searches or
// the load generator's CPU time were recorded read as having none.
func Load(path string) (*File, error) {
	r, err := lab.ReadResults(path)
	if err != nil {
		return nil, err
	}
	if r.Scenario == nil {
		return nil, fmt.Errorf("%s: no scenario in the file; is it a proxylab results file?", path)
	}
	f := &File{Path: path, Results: r}
	for _, pr := range r.Proxies {
		p := &Proxy{ProxyResult: pr, Summary: lab.SummariseFor(r.Scenario, pr.Runs), Baseline: pr.Baseline || pr.Name == Direct}
		for _, run := range pr.Runs {
			if sr := run.Search; sr != nil {
				p.Searches = append(p.Searches, &Search{Repetition: run.Repetition, SearchResult: sr})
			}
			cpu := make([]float64, len(run.Steps))
			for k, st := range run.Steps {
				// Every real step costs the load generator some CPU, so 0
				// means the file predates the figure.
				cpu[k] = -1
				if st.Resources != nil && st.Resources.LoadgenCPUSeconds > 0 {
					cpu[k] = st.Resources.LoadgenCPUSeconds
				}
			}
			p.LoadgenCPU = append(p.LoadgenCPU, cpu)
		}
		f.Proxies = append(f.Proxies, p)
	}
	return f, nil
}

// Proxy finds a proxy by name; nil when the file has none of that name.
func (f *File) Proxy(name string) *Proxy {
	for _, p := range f.Proxies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Steps is the number of step rows any proxy has.
func (f *File) Steps() int {
	n := 0
	for _, p := range f.Proxies {
		n = max(n, len(p.Summary))
	}
	return n
}

// StepSummary returns p's summary of step (1-based), or nil.
func (p *Proxy) StepSummary(step int) *lab.StepSummary {
	for i := range p.Summary {
		if p.Summary[i].Step == step {
			return &p.Summary[i]
		}
	}
	return nil
}
