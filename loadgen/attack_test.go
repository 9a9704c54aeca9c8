package loadgen

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

func TestAttackOutcomes(t *testing.T) {
	var calls atomic.Int64
	everyOtherFails := func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 0 {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		ok(w, r)
	}

	cases := []struct {
		name                   string
		url                    func(t *testing.T) string
		step                   Step
		minReq, maxReq         uint64
		minSuccess, maxSuccess float64
		codes                  []string
		errText                string // a substring of the only Errors key; "" means no errors
	}{
		{
			name:   "every request succeeds",
			url:    func(t *testing.T) string { return newServer(t, ok).URL },
			step:   Step{Rate: 100, Duration: 2 * time.Second},
			minReq: 120, maxReq: 205,
			minSuccess: 1, maxSuccess: 1,
			codes: []string{"200"},
		},
		{
			name:   "every other request answers 500",
			url:    func(t *testing.T) string { return newServer(t, everyOtherFails).URL },
			step:   Step{Rate: 100, Duration: time.Second},
			minReq: 60, maxReq: 105,
			minSuccess: 0.49, maxSuccess: 0.51,
			codes:   []string{"200", "500"},
			errText: "500 Internal Server Error",
		},
		{
			name:   "connection refused",
			url:    refusedURL,
			step:   Step{Rate: 100, Duration: time.Second},
			minReq: 60, maxReq: 105,
			minSuccess: 0, maxSuccess: 0,
			codes:   []string{"0"},
			errText: "connection refused",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Attack(context.Background(), Target{URL: tc.url(t)}, Config{Connections: 4, KeepAlive: true}, tc.step, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests < tc.minReq || res.Requests > tc.maxReq {
				t.Errorf("requests = %d, want %d..%d", res.Requests, tc.minReq, tc.maxReq)
			}
			if res.Success < tc.minSuccess || res.Success > tc.maxSuccess {
				t.Errorf("success = %v, want %v..%v", res.Success, tc.minSuccess, tc.maxSuccess)
			}
			if len(res.StatusCodes) != len(tc.codes) {
				t.Errorf("status codes = %v, want keys %v", res.StatusCodes, tc.codes)
			}
			for _, c := range tc.codes {
				if res.StatusCodes[c] == 0 {
					t.Errorf("status codes = %v, want a count for %q", res.StatusCodes, c)
				}
			}
			if res.TargetRate != float64(tc.step.Rate) || res.Interrupted {
				t.Errorf("target_rate = %v, interrupted = %v", res.TargetRate, res.Interrupted)
			}
			// vegeta catches up after a stall, and a stall before the end
			// shortens the sending span along with the count, so only a stall
			// across the very end moves the achieved rate on a busy machine.
			want := float64(tc.step.Rate)
			if res.AchievedRate < want*0.6 || res.AchievedRate > want*1.2 {
				t.Errorf("achieved_rate = %v, want about %v", res.AchievedRate, want)
			}
			if wantSecs := tc.step.Duration.Seconds(); res.Duration < wantSecs/2 || res.Duration > wantSecs*1.5 {
				t.Errorf("duration = %v, want about %v", res.Duration, wantSecs)
			}
			if len(res.Timeline) != int(tc.step.Duration/time.Second) {
				t.Errorf("timeline has %d seconds, want %d", len(res.Timeline), tc.step.Duration/time.Second)
			}
			checkErrors(t, res, tc.errText)
			checkConsistent(t, res)
		})
	}
}

func checkErrors(t *testing.T, res *StepResult, want string) {
	t.Helper()
	if res.Errors == nil {
		t.Fatal("errors is nil, want a map")
	}
	if want == "" {
		if len(res.Errors) != 0 {
			t.Errorf("errors = %v, want none", res.Errors)
		}
		return
	}
	failed := res.Requests - res.StatusCodes["200"]
	if len(res.Errors) != 1 {
		t.Fatalf("errors = %v, want one kind containing %q", res.Errors, want)
	}
	for text, n := range res.Errors {
		if !strings.Contains(text, want) || n != failed {
			t.Errorf("errors = %v, want %d x %q", res.Errors, failed, want)
		}
	}
}

// checkConsistent asserts what must hold between the fields of any result.
func checkConsistent(t *testing.T, res *StepResult) {
	t.Helper()
	var coded, failed uint64
	for c, n := range res.StatusCodes {
		code, err := strconv.Atoi(c)
		if err != nil {
			t.Errorf("status code key %q is not a number", c)
		}
		coded += n
		if code < 200 || code >= 400 {
			failed += n
		}
	}
	if coded != res.Requests {
		t.Errorf("status codes sum to %d, requests = %d", coded, res.Requests)
	}
	var perSecond, perSecondErrors uint64
	for i, s := range res.Timeline {
		if s.Second != i {
			t.Errorf("timeline[%d].second = %d", i, s.Second)
		}
		perSecond += s.Requests
		perSecondErrors += s.Errors
	}
	if perSecond != res.Requests || perSecondErrors != failed {
		t.Errorf("timeline sums to %d requests, %d errors; want %d, %d", perSecond, perSecondErrors, res.Requests, failed)
	}

	checkLatency(t, "latency", res.Latency, res.Requests)
	if paced := res.TargetRate > 0; (res.IntendedLatency != nil) != paced {
		t.Fatalf("latency_intended = %+v at target rate %v, want it exactly on paced steps", res.IntendedLatency, res.TargetRate)
	}
	for _, s := range res.Timeline {
		if (s.P99Intended != 0) != (res.TargetRate > 0 && s.Requests > 0) || (s.P99Intended != 0 && s.P99Intended < s.P99) {
			t.Errorf("timeline[%d] = %+v at target rate %v", s.Second, s, res.TargetRate)
		}
	}
	if res.IntendedLatency == nil {
		return
	}
	checkLatency(t, "latency_intended", *res.IntendedLatency, res.Requests)
	// Every request's intended latency is at least its service latency, so
	// every order statistic is too.
	l, i := res.Latency, *res.IntendedLatency
	if res.Requests > 0 && (i.Min < l.Min || i.P50 < l.P50 || i.P90 < l.P90 || i.P99 < l.P99 || i.P999 < l.P999 || i.Max < l.Max || i.Mean < l.Mean) {
		t.Errorf("latency_intended %+v below latency %+v", i, l)
	}
}

func checkLatency(t *testing.T, name string, l Latency, requests uint64) {
	t.Helper()
	if l.Unit != "us" {
		t.Errorf("%s unit = %q", name, l.Unit)
	}
	if requests > 0 && !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("%s out of order: %+v", name, l)
	}
	if requests > 0 && (l.Mean < float64(l.Min) || l.Mean > float64(l.Max)) {
		t.Errorf("%s mean %v outside [%d, %d]", name, l.Mean, l.Min, l.Max)
	}
	h, err := hdrhistogram.Decode([]byte(l.Histogram))
	if err != nil {
		t.Fatalf("%s histogram does not decode: %v", name, err)
	}
	if h.TotalCount() != int64(requests) {
		t.Errorf("%s histogram holds %d values, requests = %d", name, h.TotalCount(), requests)
	}
}

func TestAttackSaturatedByConnections(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		ok(w, r)
	})
	// Two connections answering 5 requests/s each can never carry 100/s.
	res, err := Attack(context.Background(), Target{URL: srv.URL}, Config{Connections: 2, KeepAlive: true}, Step{Rate: 100, Duration: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.LoadgenSaturated {
		t.Errorf("loadgen_saturated = false with achieved_rate %v", res.AchievedRate)
	}
	if !strings.Contains(res.Saturation, "of 100/s (") || !strings.Contains(res.Saturation, "%)") {
		t.Errorf("saturation = %q, want the achieved percentage of 100/s", res.Saturation)
	}
	// The server was too slow, not the load generator: the step must say so.
	if res.SaturationCause != SaturatedConnections || !strings.Contains(res.Saturation, "all 2 were busy") {
		t.Errorf("cause %q (%s), want %q", res.SaturationCause, res.Saturation, SaturatedConnections)
	}
	if p := srv.peak.Load(); p > 2 {
		t.Errorf("server saw %d requests at once, want at most the 2 connections", p)
	}
	// Queued requests would show up here: 2 connections x 5/s over ~1.2 s is 12.
	if res.Requests > 20 {
		t.Errorf("requests = %d, want at most about 12", res.Requests)
	}
	checkConsistent(t, res)
}

func TestAttackInterrupted(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		// Requests aborted by the interruption must not be reported.
		wantSome bool
	}{
		{name: "answering server", handler: ok, wantSome: true},
		{name: "server that never answers", handler: func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.handler)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(500*time.Millisecond, cancel)

			began := time.Now()
			res, err := Attack(ctx, Target{URL: srv.URL}, Config{Connections: 2, KeepAlive: true}, Step{Rate: 100, Duration: 10 * time.Second}, nil)
			took := time.Since(began)

			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if took > 5*time.Second {
				t.Errorf("took %s to return from a cancelled 10 s step", took)
			}
			if res == nil || !res.Interrupted {
				t.Fatalf("result = %+v, want an interrupted partial result", res)
			}
			if res.Duration < 0.4 || res.Duration > 5 {
				t.Errorf("duration = %v, want the time until cancellation", res.Duration)
			}
			if tc.wantSome && (res.Requests == 0 || res.Requests >= 1000) {
				t.Errorf("requests = %d, want a partial count", res.Requests)
			}
			if !tc.wantSome && (res.Requests != 0 || len(res.Errors) != 0) {
				t.Errorf("requests = %d, errors = %v, want the aborted requests left out", res.Requests, res.Errors)
			}
			if len(res.Timeline) != 1 {
				t.Errorf("timeline has %d seconds, want the 1 begun before cancellation", len(res.Timeline))
			}
			checkConsistent(t, res)
		})
	}
}

func TestAttackReportsProgress(t *testing.T) {
	srv := newServer(t, ok)
	var (
		mu       sync.Mutex
		reports  []Progress
		returned atomic.Bool
		late     atomic.Bool
	)
	res, err := Attack(context.Background(), Target{URL: srv.URL}, Config{Connections: 2, KeepAlive: true}, Step{Rate: 100, Duration: 2500 * time.Millisecond}, func(p Progress) {
		if returned.Load() {
			late.Store(true)
		}
		mu.Lock()
		reports = append(reports, p)
		mu.Unlock()
	})
	returned.Store(true)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // a leaked reporter would tick in here
	if late.Load() {
		t.Error("progress called after Attack returned")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) == 0 || len(reports) > 3 {
		t.Fatalf("got %d progress reports in a 2.5 s step, want about 2", len(reports))
	}
	for i, p := range reports {
		if p.Requests == 0 || p.Requests > res.Requests || p.Rate <= 0 || p.Errors != 0 {
			t.Errorf("report %d = %+v (step total %d requests)", i, p, res.Requests)
		}
		if i > 0 && (p.Elapsed <= reports[i-1].Elapsed || p.Requests < reports[i-1].Requests) {
			t.Errorf("report %d = %+v does not follow %+v", i, p, reports[i-1])
		}
	}
}
