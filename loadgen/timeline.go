package loadgen

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// timeline holds one bucket per second of a step. Results arrive in completion
// order, long after the second they were sent in, so every bucket stays open
// until the step ends.
type timeline []secondBucket

type secondBucket struct {
	requests, errors uint64
	hist             *hdrhistogram.Histogram // allocated on first use
}

func newTimeline(d time.Duration) timeline {
	return make(timeline, int((d+time.Second-1)/time.Second))
}

// record files a request under the second it was sent in. The pacer may send
// its last request a moment after the step's end, and a blocked pacer later
// still; those count in the final second so every step has ceil(duration)
// entries.
func (t timeline) record(sent time.Duration, us int64, failed bool) {
	i := min(max(int(sent/time.Second), 0), len(t)-1)
	b := &t[i]
	b.requests++
	if failed {
		b.errors++
	}
	if b.hist == nil {
		b.hist = newLatencyHistogram(timelineDigits)
	}
	b.hist.RecordValue(us) // cannot fail: us is clamped
}

// seconds renders the first n seconds.
func (t timeline) seconds(n int) []Second {
	n = min(n, len(t))
	out := make([]Second, n)
	for i := range out {
		b := &t[i]
		out[i] = Second{Second: i, Requests: b.requests, Errors: b.errors}
		if b.hist != nil {
			out[i].P99 = b.hist.ValueAtQuantile(99)
		}
	}
	return out
}

// merge adds o's seconds to t's; both cover the same step.
func (t timeline) merge(o timeline) {
	for i := range min(len(t), len(o)) {
		b, ob := &t[i], &o[i]
		b.requests += ob.requests
		b.errors += ob.errors
		if ob.hist == nil {
			continue
		}
		if b.hist == nil {
			b.hist = newLatencyHistogram(timelineDigits)
		}
		b.hist.Merge(ob.hist)
	}
}
