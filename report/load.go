// Package report turns a results file into what a blog post is written
// from: the terminal table, Markdown tables with intervals and
// significance, plots (SVG and PNG, made with gonum/plot), and a
// metric-by-metric diff of two files that flags what changed in the
// environment. It is the only place that renders results: lab measures and
// returns numbers, and every output here derives its warnings from Notes.
package report

import (
	"fmt"
	"strconv"
	"time"

	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/scenarios"
)

// File is one results file as the report reads it: lab's results, brought
// up to this version's shape by lab.ReadResults, and where they came from.
type File struct {
	Path string
	*lab.Results
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
	return &File{Path: path, Results: r}, nil
}

// Proxy finds a proxy by name; nil when the file has none of that name.
func (f *File) Proxy(name string) *lab.ProxyResult {
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

// searches are the saturation searches of p's runs, in repetition order.
func searches(p *lab.ProxyResult) []*lab.Run {
	var out []*lab.Run
	for _, r := range p.Runs {
		if r.Search != nil {
			out = append(out, r)
		}
	}
	return out
}

// loadgenCPU is the load generator's CPU seconds in step (1-based) of
// every run that records it. Every real step costs the load generator some
// CPU, so 0 means the file predates the figure.
func loadgenCPU(p *lab.ProxyResult, step int) []float64 {
	var v []float64
	for _, r := range p.Runs {
		if step-1 < len(r.Steps) {
			if res := r.Steps[step-1].Resources; res != nil && res.LoadgenCPUSeconds > 0 {
				v = append(v, res.LoadgenCPUSeconds)
			}
		}
	}
	return v
}

// closed reports whether f's load is the closed model: each connection
// sends its next request when the last answer arrived, so a step has no
// target rate and its figures are never set beside open-model ones.
func (f *File) closed() bool { return f.Scenario.Load.Model == scenarios.ModelClosed }

// load names the load of step (1-based) whose target rate is target:
// "2000/s" in the open model; "closed loop, 400 connections, 30 s" in the
// closed one, whose results file holds a target rate of 0 that must never
// be read as a rate.
func (f *File) load(step int, target float64) string {
	if !f.closed() {
		return rate(target) + "/s"
	}
	l := fmt.Sprintf("closed loop, %d connections", f.Scenario.Load.Connections)
	if st := f.Scenario.Load.Steps; step >= 1 && step <= len(st) {
		l += ", " + seconds(st[step-1].Duration.D())
	}
	return l
}

// seconds writes a step's duration as a reader says it: "30 s", "1.5 s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}
