package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/proxylab/proxylab/lab"
)

// display shows a run's progress: one status line redrawn in place on a
// terminal, plain lines (one every plainEvery) when the output is a file or
// a pipe, so CI logs stay readable.
type display struct {
	mu        sync.Mutex
	w         io.Writer
	tty       bool
	live      bool // a status line is on screen and must be cleared first
	lastPlain time.Time
}

const plainEvery = 5 * time.Second

func newDisplay(w io.Writer) *display {
	d := &display{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		d.tty = true
	}
	return d
}

func (d *display) observe(e lab.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch e.Kind {
	case lab.EventInfo:
		d.line(e.Message)
	case lab.EventStepStart:
		d.line(fmt.Sprintf("%s %s: %s for %s", where(e), stepName(e), rateText(e.Rate), e.Duration))
	case lab.EventProgress:
		p := e.Progress
		s := fmt.Sprintf("%s %s  %s/%s  live %.0f/s of %s  requests %d  errors %d",
			where(e), stepName(e), p.Elapsed.Truncate(time.Second), e.Duration, p.Rate, rateText(e.Rate), p.Requests, p.Errors)
		if d.tty {
			fmt.Fprintf(d.w, "\r\033[K%s", s)
			d.live = true
		} else if time.Since(d.lastPlain) >= plainEvery {
			fmt.Fprintln(d.w, s)
			d.lastPlain = time.Now()
		}
	case lab.EventStepDone:
		r := e.Result
		done := "done"
		if r.Interrupted {
			done = fmt.Sprintf("interrupted after %.1fs", r.Duration)
		}
		s := fmt.Sprintf("%s %s %s: %.1f/s achieved, success %.2f%%, p50 %dµs, p99 %dµs",
			where(e), stepName(e), done, r.AchievedRate, r.Success*100, r.Latency.P50, r.Latency.P99)
		if r.LoadgenSaturated {
			s += "  [" + r.Saturation + "]"
		}
		d.line(s)
	}
}

// rateText is a step's offered load: its rate, or for the closed model
// (rate 0) what sets the pace instead.
func rateText(rate int) string {
	if rate == 0 {
		return "closed loop"
	}
	return fmt.Sprintf("%d/s", rate)
}

// line prints a lasting line, clearing a status line first.
func (d *display) line(s string) {
	if d.live {
		fmt.Fprint(d.w, "\r\033[K")
		d.live = false
	}
	fmt.Fprintln(d.w, s)
}

func (d *display) done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live {
		fmt.Fprint(d.w, "\r\033[K")
		d.live = false
	}
}

func where(e lab.Event) string {
	return fmt.Sprintf("[%s %d/%d]", e.Proxy, e.Repetition, e.Repetitions)
}

func stepName(e lab.Event) string {
	if e.Step == 0 {
		return "warm-up"
	}
	if e.Steps == 0 {
		// A search: how many probes it takes is not known in advance.
		return fmt.Sprintf("probe %d", e.Step)
	}
	return fmt.Sprintf("step %d/%d", e.Step, e.Steps)
}
