package loadgen

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// hit is one request's outcome, what vegeta calls a Result, without the
// fields that would cost an allocation per request.
type hit struct {
	seq     uint64
	sent    time.Duration // since step start
	latency time.Duration
	// slot is when the pacer meant the hit to go out, since step start: its
	// intended send time, never after sent; 0 when unpaced.
	slot time.Duration
	// waited is how long the hit was due before a worker was free to claim
	// it (every connection busy); delayed, how late it went out after it
	// was both due and claimed (the load generator's own slowness).
	waited  time.Duration
	delayed time.Duration
	code    uint16 // 0 for transport errors
	err     string // "" when the status is 2xx/3xx
}

// recorder folds results into counters and histograms as they arrive, so a
// step's memory does not grow with its request count. Only record runs per
// result; it is called from one goroutine at a time, the event loop whose
// workers it records. A step keeps one recorder per loop and merges them
// when it ends.
type recorder struct {
	start    time.Time
	target   int
	interval time.Duration // between scheduled sends, as vegeta's pacer computes it; 0 when unpaced

	// cutoff (ns since start) drops results that ended after an interruption:
	// they were aborted by it, and their errors and latencies are ours.
	cutoff atomic.Int64

	// Read by the progress reporter while the step runs.
	requests atomic.Uint64
	failed   atomic.Uint64

	succeeded uint64
	latency   latencyStats
	// intended times each hit from its slot instead of its send, so that a
	// wait for a free connection counts as the user would have seen it
	// (without it, latency omits exactly the stalls that made requests
	// wait: coordinated omission). Paced steps only: unpaced ones have no
	// slots, its histogram is nil.
	intended latencyStats
	codes    [1000]uint64 // net/http only accepts three-digit status codes
	errors   errorCounts
	timeline timeline

	lastSent time.Duration // since start
	lastEnd  time.Duration // since start
	maxLag   time.Duration // worst start of a request behind its scheduled slot
	maxWait  time.Duration // worst wait of a due request for a free connection
	maxDelay time.Duration // worst delay of a due, claimed request before it went out
}

func newRecorder(s Step, start time.Time) *recorder {
	r := &recorder{
		start:    start,
		target:   s.Rate,
		latency:  newLatencyStats(),
		errors:   errorCounts{},
		timeline: newTimeline(s.Duration),
	}
	if s.Rate > 0 {
		r.interval = time.Second / time.Duration(s.Rate)
		r.intended = newLatencyStats()
	}
	r.cutoff.Store(math.MaxInt64)
	return r
}

func (r *recorder) cutOff(elapsed time.Duration) { r.cutoff.Store(int64(elapsed)) }

// record counts h unless it ended after an interruption, and tells which.
func (r *recorder) record(h *hit) bool {
	sent := h.sent
	end := sent + h.latency
	if int64(end) > r.cutoff.Load() {
		return false
	}
	us := clampUS(h.latency.Microseconds())
	failed := h.code < 200 || h.code >= 400

	r.latency.record(us)
	second := r.timeline.at(sent)
	second.record(us, failed)
	if r.interval > 0 {
		// Exact: end - slot = latency + waited + delayed, as sent >= claimed >= slot.
		ius := clampUS((end - h.slot).Microseconds())
		r.intended.record(ius)
		second.recordIntended(ius)
	}
	if int(h.code) < len(r.codes) {
		r.codes[h.code]++
	}
	if h.err != "" {
		r.errors.add(h.err, 1)
	}
	if failed {
		r.failed.Add(1)
	} else {
		r.succeeded++
	}
	r.requests.Add(1)

	r.lastSent = max(r.lastSent, sent)
	r.lastEnd = max(r.lastEnd, end)
	// vegeta's pacer schedules request n (0-based) at (n+1) intervals.
	if r.interval > 0 {
		r.maxLag = max(r.maxLag, sent-time.Duration(h.seq+1)*r.interval)
	}
	r.maxWait = max(r.maxWait, h.waited)
	r.maxDelay = max(r.maxDelay, h.delayed)
	return true
}

// merge adds what o recorded. o must be done recording.
func (r *recorder) merge(o *recorder) {
	r.requests.Add(o.requests.Load())
	r.failed.Add(o.failed.Load())
	r.succeeded += o.succeeded
	r.latency.merge(&o.latency)
	r.intended.merge(&o.intended)
	r.timeline.merge(o.timeline)
	for code, n := range o.codes {
		r.codes[code] += n
	}
	for text, n := range o.errors {
		r.errors.add(text, n)
	}
	r.lastSent = max(r.lastSent, o.lastSent)
	r.lastEnd = max(r.lastEnd, o.lastEnd)
	r.maxLag = max(r.maxLag, o.maxLag)
	r.maxWait = max(r.maxWait, o.maxWait)
	r.maxDelay = max(r.maxDelay, o.maxDelay)
}

// result builds the step's result. An interrupted step is measured up to the
// cutoff; a complete one up to its last send.
func (r *recorder) result(connections int, interrupted bool) *StepResult {
	requests := r.requests.Load()
	res := &StepResult{
		TargetRate:  float64(r.target),
		Requests:    requests,
		StatusCodes: map[string]uint64{},
		Errors:      map[string]uint64(r.errors),
		Latency:     r.latency.summary(),
		Interrupted: interrupted,
	}
	if r.interval > 0 {
		intended := r.intended.summary()
		res.IntendedLatency = &intended
	}
	for code, n := range r.codes {
		if n > 0 {
			res.StatusCodes[strconv.Itoa(code)] = n
		}
	}

	sending, answering := r.lastSent, r.lastEnd
	seconds := len(r.timeline)
	if interrupted {
		elapsed := time.Duration(r.cutoff.Load())
		sending, answering = elapsed, elapsed
		seconds = int((elapsed + time.Second - 1) / time.Second)
	}
	res.Duration = sending.Seconds()
	res.Timeline = r.timeline.seconds(seconds)
	if sending > 0 {
		res.AchievedRate = float64(requests) / sending.Seconds()
	}
	if answering > 0 {
		res.Throughput = float64(r.succeeded) / answering.Seconds()
	}
	if requests > 0 {
		res.Success = float64(r.succeeded) / float64(requests)
	}
	// An unpaced step has no target to fall short of.
	if r.target > 0 && (!interrupted || requests > 0) {
		res.LoadgenSaturated, res.SaturationCause, res.Saturation = saturation(r.target, res.AchievedRate,
			lateness{lag: r.maxLag, wait: r.maxWait, delay: r.maxDelay}, connections)
	}
	return res
}
