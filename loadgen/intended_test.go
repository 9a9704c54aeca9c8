package loadgen

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// stallingHandler answers at once except during one window, which opens
// `after` the first request: every request arriving in it is held until the
// window closes, as a proxy stalled by a pause (GC, a blocked event loop, a
// full accept queue) holds its answers.
func stallingHandler(after, stall time.Duration) http.HandlerFunc {
	var once sync.Once
	var opens, closes time.Time
	return func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			opens = time.Now().Add(after)
			closes = opens.Add(stall)
		})
		if now := time.Now(); now.After(opens) && now.Before(closes) {
			time.Sleep(closes.Sub(now))
		}
		ok(w, r)
	}
}

// TestIntendedLatencyShowsAStall is the case intended latency exists for: a
// target stalls for 300 ms with few connections, the requests due during the
// stall wait for a connection, and once one is free they are answered fast.
// Service latency sees only the few requests held by the target; latency
// from the intended send time sees every user who waited.
func TestIntendedLatencyShowsAStall(t *testing.T) {
	const stall = 300 * time.Millisecond
	srv := newServer(t, stallingHandler(800*time.Millisecond, stall))
	// 500/s for 2 s is 1000 requests: the 4 held by the target are 0.4% of
	// them, below the p99, while the ~150 due during the stall are 15%.
	res, err := Attack(context.Background(), Target{URL: srv.URL}, Config{Connections: 4, KeepAlive: true},
		Step{Rate: 500, Duration: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, res)
	if p := srv.peak.Load(); p > 4 {
		t.Errorf("server saw %d requests at once, want at most the 4 connections", p)
	}
	l, i := res.Latency, res.IntendedLatency
	t.Logf("latency %+v\nintended %+v", l, *i)
	if l.Max < 200_000 {
		t.Fatalf("latency max %d µs: the target did not stall", l.Max)
	}
	if l.P99 >= 100_000 {
		t.Errorf("latency p99 %d µs, want far below the %s stall: only the requests in flight met it", l.P99, stall)
	}
	if i.P99 < 200_000 || i.Max < 250_000 {
		t.Errorf("latency_intended p99 %d µs max %d µs, want most of the %s stall", i.P99, i.Max, stall)
	}
	if res.SaturationCause != SaturatedConnections {
		t.Errorf("saturation cause %q (%s), want %q: requests waited for the stalled connections",
			res.SaturationCause, res.Saturation, SaturatedConnections)
	}
	var stalled bool
	for _, s := range res.Timeline {
		stalled = stalled || s.P99Intended >= 200_000
	}
	if !stalled {
		t.Errorf("no second's p99_intended shows the stall: %+v", res.Timeline)
	}
}

// TestIntendedLatencyOfAFastTarget: when every request finds a connection
// free, the intended send time is the send time up to the pacer's own
// lateness (a timer wake-up, a scheduling delay on a busy machine).
func TestIntendedLatencyOfAFastTarget(t *testing.T) {
	srv := newServer(t, ok)
	res, err := Attack(context.Background(), Target{URL: srv.URL}, Config{Connections: 8, KeepAlive: true},
		Step{Rate: 200, Duration: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, res)
	l, i := res.Latency, res.IntendedLatency
	t.Logf("latency %+v\nintended %+v", l, *i)
	// The pacer's timer wakes a worker a fraction of a millisecond after the
	// slot on an idle machine (Go's timers), a few milliseconds on a busy one.
	if d := i.Mean - l.Mean; d > 5000 {
		t.Errorf("intended mean %.0f µs is %.0f µs above the service mean", i.Mean, d)
	}
	if d := i.P50 - l.P50; d > 5000 {
		t.Errorf("intended p50 %d µs is %d µs above the service p50", i.P50, d)
	}
	if d := i.P99 - l.P99; d > int64(MaxSendLag/time.Microsecond) {
		t.Errorf("intended p99 %d µs is %d µs above the service p99, beyond the pacer's tolerated lag", i.P99, d)
	}
}
