package loadgen

import (
	"context"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
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
// when the step or the generator is unusable.
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
	rec, interrupted := g.run(ctx, s, progress)
	res := rec.result(g.config.Connections, interrupted)
	if interrupted {
		return res, ctx.Err()
	}
	return res, nil
}

// Warmup runs load at the step's rate and duration and discards the
// measurements, so that connection set-up, cold caches and pool growth, in
// the proxy and in this client, stay out of the statistics. It returns an
// error only for an invalid step, a closed or busy generator, or ctx.Err().
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
	if _, interrupted := g.run(ctx, s, nil); interrupted {
		return ctx.Err()
	}
	return nil
}

// run sends one step and streams every result into a recorder.
func (g *Generator) run(ctx context.Context, s Step, progress func(Progress)) (rec *recorder, interrupted bool) {
	workers := uint64(g.config.Connections)
	atk := vegeta.NewAttacker(
		vegeta.Client(g.client),
		// One worker per connection: a worker holds one request at a time,
		// so in-flight requests never exceed the pool.
		vegeta.Workers(workers),
		vegeta.MaxWorkers(workers),
		// Bodies are drained but not kept: nothing here reads them.
		vegeta.MaxBody(0),
	)
	targeter := vegeta.NewStaticTargeter(g.target)
	pacer := vegeta.ConstantPacer{Freq: s.Rate, Per: time.Second}

	start := time.Now()
	rec = newRecorder(s, start)
	results := atk.Attack(targeter, pacer, s.Duration, "")

	aborted := make(chan struct{})
	stopAbort := context.AfterFunc(ctx, func() {
		defer close(aborted)
		rec.cutOff(time.Since(start))
		atk.Stop()
		g.conns.abort()
	})
	stopProgress := reportProgress(rec, start, progress)

	for r := range results {
		rec.record(r)
	}

	stopProgress()
	if !stopAbort() {
		<-aborted
		// Every worker has returned, so no dial can race the pool reopening.
		g.conns.resume()
		interrupted = true
	}
	return rec, interrupted
}

// reportProgress calls fn about once per second until the returned stop
// function is called; stop waits for a call in progress to finish.
func reportProgress(rec *recorder, start time.Time, fn func(Progress)) (stop func()) {
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
			n := rec.requests.Load()
			p := Progress{Elapsed: now.Sub(start), Requests: n, Errors: rec.failed.Load()}
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
