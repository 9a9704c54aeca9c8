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
	intended         *hdrhistogram.Histogram // from the pacer's slots; paced steps only, allocated on first use
}

func newTimeline(d time.Duration) timeline {
	return make(timeline, int((d+time.Second-1)/time.Second))
}

// at is the bucket of a request sent at sent. The pacer may send its last
// request a moment after the step's end, and a blocked pacer later still;
// those count in the final second so every step has ceil(duration) entries.
func (t timeline) at(sent time.Duration) *secondBucket {
	return &t[min(max(int(sent/time.Second), 0), len(t)-1)]
}

// record files a request's service latency under the second it was sent in.
func (b *secondBucket) record(us int64, failed bool) {
	b.requests++
	if failed {
		b.errors++
	}
	if b.hist == nil {
		b.hist = newLatencyHistogram(timelineDigits)
	}
	b.hist.RecordValue(us) // cannot fail: us is clamped
}

// recordIntended files the same request's latency from its slot. It goes
// under the second the request was sent in, as everything else in the
// bucket, so a stall shows in the second that sent its backlog.
func (b *secondBucket) recordIntended(us int64) {
	if b.intended == nil {
		b.intended = newLatencyHistogram(timelineDigits)
	}
	b.intended.RecordValue(us) // cannot fail: us is clamped
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
		if b.intended != nil {
			out[i].P99Intended = b.intended.ValueAtQuantile(99)
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
		b.hist = mergeHistogram(b.hist, ob.hist)
		b.intended = mergeHistogram(b.intended, ob.intended)
	}
}

// mergeHistogram adds o into h, either of which may not exist yet, and
// returns the sum.
func mergeHistogram(h, o *hdrhistogram.Histogram) *hdrhistogram.Histogram {
	if o == nil {
		return h
	}
	if h == nil {
		h = newLatencyHistogram(timelineDigits)
	}
	h.Merge(o) // drops nothing: both have the same range
	return h
}
