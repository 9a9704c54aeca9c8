package loadgen

import (
	"math/rand/v2"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// TestMergedHistogramsMatchOne checks that a step split over several
// recorders reports what one recorder fed every value would: the same
// percentiles, extremes, mean and per-second figures.
func TestMergedHistogramsMatchOne(t *testing.T) {
	cases := []struct {
		name  string
		parts int
		n     int
		value func(r *rand.Rand) int64 // µs
	}{
		{"uniform", 2, 100_000, func(r *rand.Rand) int64 { return 50 + r.Int64N(5000) }},
		{"bimodal", 4, 100_000, func(r *rand.Rand) int64 {
			if r.IntN(100) == 0 {
				return 40_000 + r.Int64N(20_000)
			}
			return 80 + r.Int64N(40)
		}},
		{"long tail", 64, 200_000, func(r *rand.Rand) int64 { return int64(100 * r.ExpFloat64() * r.ExpFloat64()) }},
		{"beyond the range, clamped", 3, 1000, func(r *rand.Rand) int64 { return clampUS(r.Int64N(2 * latencyMaxUS)) }},
		{"more parts than values", 8, 3, func(r *rand.Rand) int64 { return 1 + r.Int64N(10) }},
		{"nothing recorded", 4, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			step := Step{Rate: 1000, Duration: 5 * time.Second}
			start := time.Now()
			one := newRecorder(step, start)
			parts := make([]*recorder, tc.parts)
			for i := range parts {
				parts[i] = newRecorder(step, start)
			}
			rng := rand.New(rand.NewPCG(1, uint64(tc.n)))
			for i := range tc.n {
				us := tc.value(rng)
				h := hit{
					seq:     uint64(i),
					sent:    time.Duration(rng.Int64N(int64(step.Duration))),
					latency: time.Duration(us) * time.Microsecond,
					code:    200,
				}
				// Some hits waited for a connection, up to half a second.
				if rng.IntN(20) == 0 {
					h.slot = max(h.sent-time.Duration(rng.Int64N(int64(500*time.Millisecond))), 0)
				} else {
					h.slot = h.sent
				}
				if rng.IntN(50) == 0 {
					h.code, h.err = 502, "502 Bad Gateway"
				}
				one.record(&h)
				parts[rng.IntN(len(parts))].record(&h)
			}
			merged := parts[0]
			for _, p := range parts[1:] {
				merged.merge(p)
			}

			want, got := one.result(4, false), merged.result(4, false)
			if got.Latency.P50 != want.Latency.P50 || got.Latency.P90 != want.Latency.P90 ||
				got.Latency.P99 != want.Latency.P99 || got.Latency.P999 != want.Latency.P999 ||
				got.Latency.Min != want.Latency.Min || got.Latency.Max != want.Latency.Max ||
				got.Latency.Mean != want.Latency.Mean {
				t.Errorf("merged latency %+v\nwant %+v", got.Latency, want.Latency)
			}
			if *got.IntendedLatency != *want.IntendedLatency {
				t.Errorf("merged intended latency %+v\nwant %+v", *got.IntendedLatency, *want.IntendedLatency)
			}
			for _, q := range []float64{0, 1, 25, 50, 75, 90, 99, 99.9, 99.99, 100} {
				gh, wh := decodeHist(t, got.Latency.Histogram), decodeHist(t, want.Latency.Histogram)
				if g, w := gh.ValueAtQuantile(q), wh.ValueAtQuantile(q); g != w {
					t.Errorf("histogram p%v = %d, want %d", q, g, w)
				}
				gh, wh = decodeHist(t, got.IntendedLatency.Histogram), decodeHist(t, want.IntendedLatency.Histogram)
				if g, w := gh.ValueAtQuantile(q), wh.ValueAtQuantile(q); g != w {
					t.Errorf("intended histogram p%v = %d, want %d", q, g, w)
				}
			}
			if got.Requests != want.Requests || got.Success != want.Success || len(got.StatusCodes) != len(want.StatusCodes) {
				t.Errorf("merged requests %d success %v codes %v, want %d %v %v",
					got.Requests, got.Success, got.StatusCodes, want.Requests, want.Success, want.StatusCodes)
			}
			for c, n := range want.StatusCodes {
				if got.StatusCodes[c] != n {
					t.Errorf("status %s: %d, want %d", c, got.StatusCodes[c], n)
				}
			}
			if got.Errors["502 Bad Gateway"] != want.Errors["502 Bad Gateway"] {
				t.Errorf("errors %v, want %v", got.Errors, want.Errors)
			}
			for i := range want.Timeline {
				if got.Timeline[i] != want.Timeline[i] {
					t.Errorf("second %d: %+v, want %+v", i, got.Timeline[i], want.Timeline[i])
				}
			}
			if got.AchievedRate != want.AchievedRate || got.Throughput != want.Throughput ||
				got.LoadgenSaturated != want.LoadgenSaturated || got.Saturation != want.Saturation {
				t.Errorf("merged rates %v %v %v %q, want %v %v %v %q", got.AchievedRate, got.Throughput, got.LoadgenSaturated, got.Saturation,
					want.AchievedRate, want.Throughput, want.LoadgenSaturated, want.Saturation)
			}
			checkConsistent(t, got)
		})
	}
}

func decodeHist(t *testing.T, enc string) *hdrhistogram.Histogram {
	t.Helper()
	h, err := hdrhistogram.Decode([]byte(enc))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
