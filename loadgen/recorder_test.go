package loadgen

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sample describes one synthetic vegeta result relative to step start.
type sample struct {
	seq     uint64
	sent    time.Duration
	latency time.Duration
	code    uint16
	err     string
	// slot is the intended send time; when 0, that of hit seq on a paced
	// step ((seq+1)/rate), but never after sent, as in the schedule.
	slot time.Duration
}

func record(s Step, samples []sample, cutoff time.Duration) *recorder {
	start := time.Now()
	rec := newRecorder(s, start)
	if cutoff > 0 {
		rec.cutOff(cutoff)
	}
	for _, x := range samples {
		slot := x.slot
		if slot == 0 && s.Rate > 0 {
			slot = min(time.Duration(x.seq+1)*time.Second/time.Duration(s.Rate), x.sent)
		}
		rec.record(&hit{seq: x.seq, sent: x.sent, latency: x.latency, slot: slot, code: x.code, err: x.err})
	}
	return rec
}

// onSchedule returns n successful samples sent exactly on the pacer's slots.
func onSchedule(rate, n int, latency time.Duration) []sample {
	out := make([]sample, n)
	for i := range out {
		out[i] = sample{seq: uint64(i), sent: time.Duration(i+1) * time.Second / time.Duration(rate), latency: latency, code: 200}
	}
	return out
}

func TestRecorder(t *testing.T) {
	reset := "read tcp 127.0.0.1:%d->127.0.0.1:8081: read: connection reset by peer"
	cases := []struct {
		name        string
		step        Step
		samples     []sample
		cutoff      time.Duration
		interrupted bool
		check       func(t *testing.T, res *StepResult)
	}{
		{
			name: "codes and errors counted, client ports folded",
			step: Step{Rate: 4, Duration: time.Second},
			samples: []sample{
				{seq: 0, sent: 250 * time.Millisecond, latency: time.Millisecond, code: 200},
				{seq: 1, sent: 500 * time.Millisecond, latency: time.Millisecond, code: 500, err: "500 Internal Server Error"},
				{seq: 2, sent: 750 * time.Millisecond, latency: time.Millisecond, err: fmt.Sprintf(reset, 50001)},
				{seq: 3, sent: time.Second, latency: time.Millisecond, err: fmt.Sprintf(reset, 50002)},
			},
			check: func(t *testing.T, res *StepResult) {
				wantCodes := map[string]uint64{"200": 1, "500": 1, "0": 2}
				wantErrors := map[string]uint64{
					"500 Internal Server Error":                               1,
					"read tcp 127.0.0.1:8081: read: connection reset by peer": 2,
				}
				if !reflect.DeepEqual(res.StatusCodes, wantCodes) || !reflect.DeepEqual(res.Errors, wantErrors) {
					t.Errorf("codes %v errors %v, want %v %v", res.StatusCodes, res.Errors, wantCodes, wantErrors)
				}
				if res.Success != 0.25 || res.Timeline[0].Errors != 3 {
					t.Errorf("success %v, timeline %+v", res.Success, res.Timeline)
				}
				wantThroughput := 1 / (1001 * time.Millisecond).Seconds()
				if res.AchievedRate != 4 || res.Throughput != wantThroughput {
					t.Errorf("achieved %v throughput %v, want 4 and %v", res.AchievedRate, res.Throughput, wantThroughput)
				}
				if res.LoadgenSaturated {
					t.Errorf("saturated: %s", res.Saturation)
				}
			},
		},
		{
			name:    "latencies summarised in microseconds",
			step:    Step{Rate: 1000, Duration: time.Second},
			samples: append(onSchedule(1000, 990, 100*time.Microsecond), onSchedule(1000, 10, 50*time.Millisecond)...),
			check: func(t *testing.T, res *StepResult) {
				l := res.Latency
				if l.Min != 100 || l.P50 != 100 || l.P90 != 100 || l.P99 != 100 || l.P999 != 50000 || l.Max != 50000 {
					t.Errorf("latency %+v", l)
				}
				if want := (990*100 + 10*50000) / 1000.0; l.Mean != want {
					t.Errorf("mean %v, want %v", l.Mean, want)
				}
			},
		},
		{
			name:    "latency beyond the histogram is clamped",
			step:    Step{Rate: 1, Duration: time.Second},
			samples: []sample{{seq: 0, sent: time.Second, latency: 2 * time.Minute, code: 200}},
			check: func(t *testing.T, res *StepResult) {
				if res.Requests != 1 || res.Latency.Max != latencyMaxUS || res.Latency.P99 != latencyMaxUS {
					t.Errorf("requests %d latency %+v", res.Requests, res.Latency)
				}
			},
		},
		{
			name: "late sends count in the last second",
			step: Step{Rate: 1, Duration: 2 * time.Second},
			samples: []sample{
				{seq: 0, sent: time.Second, latency: time.Millisecond, code: 200},
				{seq: 1, sent: 2300 * time.Millisecond, latency: time.Millisecond, code: 200},
			},
			check: func(t *testing.T, res *StepResult) {
				if len(res.Timeline) != 2 || res.Timeline[0].Requests != 0 || res.Timeline[1].Requests != 2 {
					t.Errorf("timeline %+v", res.Timeline)
				}
			},
		},
		{
			name:        "results ending after an interruption are dropped",
			step:        Step{Rate: 10, Duration: 10 * time.Second},
			samples:     append(onSchedule(10, 12, time.Millisecond), sample{seq: 12, sent: 1250 * time.Millisecond, latency: time.Second, err: "use of closed network connection"}),
			cutoff:      1500 * time.Millisecond,
			interrupted: true,
			check: func(t *testing.T, res *StepResult) {
				if res.Requests != 12 || len(res.Errors) != 0 || !res.Interrupted {
					t.Errorf("requests %d errors %v interrupted %v", res.Requests, res.Errors, res.Interrupted)
				}
				if res.Duration != 1.5 || res.AchievedRate != 8 || len(res.Timeline) != 2 {
					t.Errorf("duration %v achieved %v timeline %+v", res.Duration, res.AchievedRate, res.Timeline)
				}
			},
		},
		{
			name: "a stalled send marks the step saturated",
			step: Step{Rate: 10, Duration: time.Second},
			samples: append(onSchedule(10, 5, time.Millisecond),
				sample{seq: 5, sent: 900 * time.Millisecond, latency: time.Millisecond, code: 200},
				sample{seq: 6, sent: 900 * time.Millisecond, latency: time.Millisecond, code: 200},
				sample{seq: 7, sent: 900 * time.Millisecond, latency: time.Millisecond, code: 200},
				sample{seq: 8, sent: 900 * time.Millisecond, latency: time.Millisecond, code: 200},
				sample{seq: 9, sent: time.Second, latency: time.Millisecond, code: 200}),
			check: func(t *testing.T, res *StepResult) {
				if !res.LoadgenSaturated || !strings.Contains(res.Saturation, "300ms behind schedule") {
					t.Errorf("saturated %v: %q", res.LoadgenSaturated, res.Saturation)
				}
				if res.AchievedRate != 10 {
					t.Errorf("achieved %v, want the full 10/s despite the stall", res.AchievedRate)
				}
			},
		},
		{
			name: "nothing recorded",
			step: Step{Rate: 10, Duration: time.Second},
			check: func(t *testing.T, res *StepResult) {
				if res.Requests != 0 || res.Success != 0 || res.StatusCodes == nil || res.Errors == nil || res.Latency.Histogram == "" {
					t.Errorf("empty result %+v", res)
				}
				if !res.LoadgenSaturated {
					t.Error("a step that sent nothing is not flagged")
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := record(tc.step, tc.samples, tc.cutoff).result(4, tc.interrupted)
			tc.check(t, res)
			checkConsistent(t, res)
		})
	}
}

func TestSaturation(t *testing.T) {
	cases := []struct {
		name     string
		achieved float64
		late     lateness
		want     bool
		cause    string
		text     []string
	}{
		{"on target", 1000, lateness{}, false, "", nil},
		{"just inside", 950, lateness{lag: MaxSendLag, wait: MaxSendLag}, false, "", nil},
		{"rate short", 902.3, lateness{}, true, SaturatedLoadgen, []string{"achieved 902.3/s of 1000/s (90.2%)", "could not keep the rate"}},
		{"connections busy", 1000, lateness{lag: 2 * time.Second, wait: 2 * time.Second, delay: time.Millisecond}, true, SaturatedConnections,
			[]string{"2s behind schedule", "waited up to 2s for a free connection: all 8 were busy"}},
		{"short of CPU", 1000, lateness{lag: 2 * time.Second, wait: time.Second, delay: time.Second}, true, SaturatedLoadgen,
			[]string{"2s behind schedule", "up to 1s late with a connection free"}},
		{"both", 10, lateness{lag: time.Second, wait: time.Second}, true, SaturatedConnections, []string{"(1.0%)", "1s behind schedule", "; "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, cause, text := saturation(1000, tc.achieved, tc.late, 8)
			if got != tc.want || cause != tc.cause || (text == "") == tc.want {
				t.Fatalf("saturation = %v %q %q, want %v %q", got, cause, text, tc.want, tc.cause)
			}
			for _, s := range tc.text {
				if !strings.Contains(text, s) {
					t.Errorf("text %q lacks %q", text, s)
				}
			}
		})
	}
}

func TestErrorKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{"500 Internal Server Error", "500 Internal Server Error"},
		{`Get "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused`, `Get "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused`},
		{"read tcp 127.0.0.1:40000->127.0.0.1:8081: read: connection reset by peer", "read tcp 127.0.0.1:8081: read: connection reset by peer"},
		{"a 1.2.3.4:5->6.7.8.9:0 and b 1:1->2:2", "a 6.7.8.9:0 and b 2:2"},
		{"->x", "x"},
	}
	for _, tc := range cases {
		if got := errorKey(tc.in); got != tc.want {
			t.Errorf("errorKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrorCountsBounded(t *testing.T) {
	e := errorCounts{}
	for i := range 3 * maxErrorKinds {
		e.add(fmt.Sprintf("599 reason %d", i), 1)
	}
	e.add("599 reason 0", 1)
	if len(e) != maxErrorKinds+1 || e[otherErrors] != 2*maxErrorKinds || e["599 reason 0"] != 2 {
		t.Errorf("%d kinds, %d other, %d of the first", len(e), e[otherErrors], e["599 reason 0"])
	}
}

func BenchmarkRecord(b *testing.B) {
	const rate = 100_000
	s := Step{Rate: rate, Duration: 10 * time.Second}
	start := time.Now()
	results := make([]hit, 4096)
	for i := range results {
		code := uint16(200)
		if i%100 == 0 {
			code = 502
		}
		results[i] = hit{
			seq:     uint64(i),
			sent:    time.Duration(i+1) * time.Second / rate * 200, // spread over the 10 s
			latency: time.Duration(50+i%2000) * time.Microsecond,
			code:    code,
		}
	}
	rec := newRecorder(s, start)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec.record(&results[i%len(results)])
		i++
	}
}
