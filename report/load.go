// Package report turns a results file into what a blog post is written
// from: Markdown tables with intervals and significance, plots (SVG and
// PNG, made with gonum/plot), and a metric-by-metric diff of two files that
// flags what changed in the environment.
package report

import (
	"encoding/json"
	"fmt"
	"os"

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

// Search is one repetition's search for the highest rate that meets the
// scenario's objective.
type Search struct {
	Repetition int
	Rate       float64       `json:"rate"`
	StoppedBy  string        `json:"stopped_by"` // proxy | loadgen | max
	Reason     string        `json:"reason"`
	Probes     []SearchProbe `json:"probes"`
}

// SearchProbe is one rate the search tried.
type SearchProbe struct {
	TargetRate float64 `json:"target_rate"`
	Passed     bool    `json:"passed"`
	Reason     string  `json:"reason"`
}

// extras are fields newer than lab's types know of (baselines, searches,
// the load generator's own CPU time); reading them separately keeps the
// report working on files with and without them.
type extras struct {
	Proxies []struct {
		Name     string `json:"name"`
		Baseline bool   `json:"baseline"`
		Runs     []struct {
			Search *Search `json:"search"`
			Steps  []struct {
				Resources *struct {
					LoadgenCPUSeconds *float64 `json:"loadgen_cpu_seconds"`
				} `json:"resources"`
			} `json:"steps"`
		} `json:"runs"`
	} `json:"proxies"`
}

// Load reads a results file.
func Load(path string) (*File, error) {
	r, err := lab.ReadResults(path)
	if err != nil {
		return nil, err
	}
	if r.Scenario == nil {
		return nil, fmt.Errorf("%s: no scenario in the file; is it a proxylab results file?", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ex extras
	if err := json.Unmarshal(b, &ex); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f := &File{Path: path, Results: r}
	for i, pr := range r.Proxies {
		p := &Proxy{ProxyResult: pr, Summary: lab.Summarise(pr.Runs), Baseline: pr.Name == Direct}
		if i < len(ex.Proxies) && ex.Proxies[i].Name == pr.Name {
			e := ex.Proxies[i]
			p.Baseline = p.Baseline || e.Baseline
			for j, run := range e.Runs {
				if run.Search != nil && j < len(pr.Runs) {
					run.Search.Repetition = pr.Runs[j].Repetition
					p.Searches = append(p.Searches, run.Search)
				}
				cpu := make([]float64, len(run.Steps))
				for k, st := range run.Steps {
					cpu[k] = -1
					if st.Resources != nil && st.Resources.LoadgenCPUSeconds != nil {
						cpu[k] = *st.Resources.LoadgenCPUSeconds
					}
				}
				p.LoadgenCPU = append(p.LoadgenCPU, cpu)
			}
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
