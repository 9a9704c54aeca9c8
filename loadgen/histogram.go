package loadgen

import (
	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

const (
	latencyMinUS = 1
	latencyMaxUS = 60_000_000 // beyond any sensible per-request timeout; longer values are clamped
	// 3 digits keep every percentile within 0.1% at about 140 KiB per histogram.
	latencyDigits = 3
	// Per-second histograms exist once per second of a step; 2 digits (1%)
	// are plenty for a plotted timeline and cost about 20 KiB each.
	timelineDigits = 2
)

func newLatencyHistogram(digits int) *hdrhistogram.Histogram {
	return hdrhistogram.New(latencyMinUS, latencyMaxUS, digits)
}

// clampUS bounds a latency to what the histograms can hold, so that recording
// never fails and never needs an error check on the hot path.
func clampUS(us int64) int64 {
	switch {
	case us < 0:
		return 0
	case us > latencyMaxUS:
		return latencyMaxUS
	}
	return us
}

// latencyStats accumulates one step's latencies.
type latencyStats struct {
	hist     *hdrhistogram.Histogram
	count    int64
	sum      int64
	min, max int64
}

func newLatencyStats() latencyStats {
	return latencyStats{hist: newLatencyHistogram(latencyDigits)}
}

func (l *latencyStats) record(us int64) {
	l.hist.RecordValue(us) // cannot fail: us is clamped
	if l.count == 0 || us < l.min {
		l.min = us
	}
	if us > l.max {
		l.max = us
	}
	l.count++
	l.sum += us
}

func (l *latencyStats) summary() Latency {
	s := Latency{Unit: "us"}
	if enc, err := l.hist.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err == nil {
		s.Histogram = string(enc)
	}
	if l.count == 0 {
		return s
	}
	s.Min, s.Max = l.min, l.max
	s.Mean = float64(l.sum) / float64(l.count)
	// HDR answers with the highest value equivalent to a bucket, which can
	// lie past the exact extremes; a percentile outside them would be absurd.
	at := func(q float64) int64 { return min(max(l.hist.ValueAtQuantile(q), l.min), l.max) }
	s.P50, s.P90, s.P99, s.P999 = at(50), at(90), at(99), at(99.9)
	return s
}

// merge adds the latencies o recorded; percentiles of the merged stats are
// those of one latencyStats fed every value.
func (l *latencyStats) merge(o *latencyStats) {
	if o.count == 0 {
		return
	}
	l.hist.Merge(o.hist) // drops nothing: both have the same range
	if l.count == 0 || o.min < l.min {
		l.min = o.min
	}
	l.max = max(l.max, o.max)
	l.count += o.count
	l.sum += o.sum
}
