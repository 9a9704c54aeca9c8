package loadgen

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Attack runs one open-model constant-rate step and returns its measurements.
//
// At most Config.Connections requests are in flight: when all of them are
// busy the pacer waits instead of queueing requests inside the client, and the
// step is reported as saturated (see StepResult.LoadgenSaturated) rather than
// silently turning into a closed-model measurement.
//
// progress, if not nil, is called about once per second from a goroutine of
// its own, never concurrently with itself and never after Attack returns.
//
// On ctx cancellation Attack stops sending, aborts the requests in flight and
// returns what completed before the cancellation (Duration is the real elapsed
// time, Interrupted is true) together with ctx.Err(). The result is nil only
// when the step or the generator is unusable, or the step could not start.
func (g *Generator) Attack(ctx context.Context, s Step, progress func(Progress)) (*StepResult, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if err := g.acquire(); err != nil {
		return nil, err
	}
	defer g.release()
	if err := ctx.Err(); err != nil {
		rec := newRecorder(s, time.Now())
		rec.cutOff(0)
		return rec.result(g.config.Connections, true), err
	}
	rec, interrupted, err := g.run(ctx, s, progress)
	if rec == nil {
		return nil, err
	}
	res := rec.result(g.config.Connections, interrupted)
	if interrupted {
		return res, ctx.Err()
	}
	return res, err
}

// Warmup runs load at the step's rate and duration and discards the
// measurements, so that connection set-up, cold caches and pool growth, in
// the proxy and in this client, stay out of the statistics. It returns an
// error only for an invalid step, a closed or busy generator, a step that
// could not start (no descriptor left for its event loops), or ctx.Err().
func (g *Generator) Warmup(ctx context.Context, s Step) error {
	if err := s.validate(); err != nil {
		return err
	}
	if err := g.acquire(); err != nil {
		return err
	}
	defer g.release()
	if err := ctx.Err(); err != nil {
		return err
	}
	s.Raw = nil
	rec, interrupted, err := g.run(ctx, s, nil)
	switch {
	case rec == nil:
		return err
	case interrupted:
		return ctx.Err()
	}
	return nil
}

// group is the recorder of one loop's workers. Loops, one per CPU the
// process may use, keep workers running in parallel from contending for one
// set of histograms; their recorders are merged when the step ends. Only
// the loop's goroutine records into its group.
type group struct {
	rec  *recorder
	loop *loop
}

// run sends one step, one worker per connection slot, and returns what the
// workers recorded, merged. A nil recorder means the step could not start.
func (g *Generator) run(ctx context.Context, s Step, progress func(Progress)) (rec *recorder, interrupted bool, err error) {
	start := time.Now()
	sched := newSchedule(s.Rate, s.Duration, start)
	groups := make([]*group, min(runtime.GOMAXPROCS(0), len(g.slots)))
	for i := range groups {
		l, err := newLoop(start, sched, g.config.timeout())
		if err != nil {
			for _, gr := range groups[:i] {
				gr.loop.close()
			}
			return nil, false, err
		}
		groups[i] = &group{rec: newRecorder(s, start), loop: l}
	}
	var raw *rawWriter
	if s.Raw != nil {
		raw = newRawWriter(s.Raw, g.req, start)
	}
	for i, c := range g.slots {
		gr := groups[i%len(groups)]
		gr.loop.add(c, func() { g.work(c, sched, gr, raw) })
	}

	aborted := make(chan struct{})
	stopAbort := context.AfterFunc(ctx, func() {
		defer close(aborted)
		cut := time.Since(start)
		for _, gr := range groups {
			gr.rec.cutOff(cut)
		}
		sched.halt()
		for _, gr := range groups {
			gr.loop.abort()
		}
	})
	stopProgress := reportProgress(func() (n, failed uint64) {
		for _, gr := range groups {
			n += gr.rec.requests.Load()
			failed += gr.rec.failed.Load()
		}
		return n, failed
	}, start, progress)

	var wg sync.WaitGroup
	for _, gr := range groups {
		wg.Go(gr.loop.run)
	}
	wg.Wait()

	stopProgress()
	if !stopAbort() {
		<-aborted
		// An interruption that came as the loops ended found connections
		// they no longer watched.
		for _, c := range g.slots {
			c.close()
		}
		interrupted = true
	}
	for _, gr := range groups {
		gr.loop.close()
	}
	rec = groups[0].rec
	for _, gr := range groups[1:] {
		rec.merge(gr.rec)
	}
	if raw != nil {
		err = raw.close()
	}
	return rec, interrupted, err
}

// work is one worker: it claims the next hit, waits for its time, sends it on
// its own connection and records the outcome, until the schedule ends.
func (g *Generator) work(c *conn, sched *schedule, gr *group, raw *rawWriter) {
	now := time.Since(sched.start)
	for {
		waits := c.waits
		due, slot, ok := sched.claim(now)
		if !ok {
			return
		}
		// A hit whose slot had passed when it was claimed waited for this
		// worker: every connection was busy until now.
		claimed := max(slot, now)
		if due > now && !c.lp.sleep(c, due) {
			return
		}
		seq, sent := sched.send()
		code, bodyBytes, err := c.exchange(g, sent)
		now = time.Since(sched.start)

		h := hit{seq: seq, sent: sent, latency: now - sent, slot: slot, code: uint16(code),
			waited: claimed - slot, delayed: max(sent-claimed, 0)}
		switch {
		case err != nil:
			h.code = 0
			if c.cutOff(sent) {
				h.err = g.timeoutText
			} else {
				h.err = g.req.errPrefix + err.Error()
			}
		case code < 100 || code > 999:
			h.code = 0
			h.err = g.req.errPrefix + "malformed HTTP status code " + strconv.Itoa(code)
		case code < 200 || code >= 400:
			h.err = c.statusError(code)
		}
		if gr.rec.record(&h) && raw != nil {
			raw.add(&h, bodyBytes)
		}
		if c.waits == waits {
			c.lp.turn(c)
		}
	}
}

// reportProgress calls fn about once per second until the returned stop
// function is called; stop waits for a call in progress to finish.
func reportProgress(count func() (n, failed uint64), start time.Time, fn func(Progress)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastN := start, uint64(0)
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			now := time.Now()
			n, failed := count()
			p := Progress{Elapsed: now.Sub(start), Requests: n, Errors: failed}
			if dt := now.Sub(last).Seconds(); dt > 0 {
				p.Rate = float64(n-lastN) / dt
			}
			last, lastN = now, n
			fn(p)
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}
