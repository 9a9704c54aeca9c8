package loadgen

import (
	"fmt"
	"strings"
	"time"
)

// StepResult is what one step measured. Its JSON encoding is part of the
// results file.
//
// Every response counts towards Latency and Timeline, errors included, as
// vegeta counts them: a refused connection is recorded with the few
// microseconds it took to fail. Read Latency together with Success and
// StatusCodes; a step full of fast failures has flattering percentiles.
type StepResult struct {
	TargetRate   float64           `json:"target_rate"`
	AchievedRate float64           `json:"achieved_rate"` // requests sent per second, from step start to the last send
	Throughput   float64           `json:"throughput"`    // successful responses per second, from step start to the last response
	Duration     float64           `json:"duration"`      // seconds spent sending; the real elapsed time when interrupted
	Requests     uint64            `json:"requests"`      // responses and transport errors recorded
	Success      float64           `json:"success"`       // ratio of 2xx/3xx responses, 0..1
	StatusCodes  map[string]uint64 `json:"status_codes"`  // "200": n, "0" for transport errors
	Errors       map[string]uint64 `json:"errors"`        // error text -> count; statuses outside 2xx/3xx appear as their status line
	Latency      Latency           `json:"latency"`       // every recorded request, errors included, from its send
	// IntendedLatency times the same requests from their intended send
	// time, the pacer's slot (n+1)/rate, to the end of the response body,
	// as wrk2 and Nighthawk do. Latency starts at the actual send, so a
	// request that waited for a free connection (every one busy: the
	// target stalled) or went out late leaves its wait out of Latency, and
	// the stall that caused the wait shows less than its users saw it
	// (coordinated omission); here the wait counts. So does the load
	// generator's own lateness: on a target that keeps up the two differ
	// by how late the pacer's timers wake (a fraction of a millisecond on
	// an idle machine), and a step saturated by the load generator
	// (SaturatedLoadgen) overstates it.
	//
	// nil for unpaced steps (rate 0, the closed model): a request there is
	// meant to go out when the previous answer on its connection arrived,
	// which is when it does go out, so its intended latency is Latency.
	IntendedLatency  *Latency `json:"latency_intended,omitempty"`
	Timeline         []Second `json:"timeline"`             // one entry per second of the step, by send time
	LoadgenSaturated bool     `json:"loadgen_saturated"`    // the load generator did not deliver the target rate
	Saturation       string   `json:"saturation,omitempty"` // why LoadgenSaturated is true
	// SaturationCause says which side held the rate back: SaturatedConnections
	// or SaturatedLoadgen; empty when the rate was delivered.
	SaturationCause string `json:"saturation_cause,omitempty"`
	Interrupted     bool   `json:"interrupted,omitempty"`
}

// Latency summarises request latencies in microseconds. Min, Max and Mean are
// exact; the percentiles come from an HDR histogram (1 µs .. 60 s, 3
// significant digits, so within 0.1%) and are clamped to [Min, Max].
type Latency struct {
	Unit      string  `json:"unit"` // always "us"
	Min       int64   `json:"min"`
	Mean      float64 `json:"mean"`
	P50       int64   `json:"p50"`
	P90       int64   `json:"p90"`
	P99       int64   `json:"p99"`
	P999      int64   `json:"p99_9"`
	Max       int64   `json:"max"`
	Histogram string  `json:"histogram"` // hdrhistogram-go Encode(V2CompressedEncodingCookieBase), base64
}

// Second is one wall-clock second of a step, counted by the time requests
// were sent (not answered), since step start.
type Second struct {
	Second   int    `json:"second"`
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"` // transport errors and statuses outside 2xx/3xx
	P99      int64  `json:"p99"`    // µs, 2 significant digits
	// P99Intended is the p99 of IntendedLatency among the same requests
	// (µs, 2 significant digits); absent for unpaced steps and for seconds
	// in which nothing was sent.
	P99Intended int64 `json:"p99_intended,omitempty"`
}

// Progress is reported about once per second while a step runs.
type Progress struct {
	Elapsed  time.Duration
	Requests uint64  // responses and transport errors so far
	Errors   uint64  // transport errors + non-2xx/3xx
	Rate     float64 // responses per second over the last report interval
}

// MinAchievedRatio is the share of the target rate a step must reach to count
// as delivered. vegeta's pacer normally reaches the target within a fraction
// of a percent; a shortfall of more than 5% is beyond pacing jitter and means
// the proxy saw a lower load than the step claims.
const MinAchievedRatio = 0.95

// MaxSendLag is how far a single request may start behind its slot in the
// constant schedule. vegeta never drops a tick: when every connection is busy
// or the generator is starved of CPU it sends late and then bursts to catch
// up, which keeps the average rate while hiding the stall from the latency
// figures (coordinated omission). A lag past this bound means that happened
// for long enough to matter.
const MaxSendLag = 100 * time.Millisecond

// saturation decides whether a step failed to deliver its load and says why.
func saturation(target int, achieved float64, l lateness, connections int) (saturated bool, cause, reason string) {
	var why []string
	if ratio := achieved / float64(target); ratio < MinAchievedRatio {
		why = append(why, fmt.Sprintf("achieved %.1f/s of %d/s (%.1f%%)", achieved, target, 100*ratio))
	}
	if l.lag > MaxSendLag {
		why = append(why, fmt.Sprintf("requests started up to %s behind schedule", l.lag.Round(time.Millisecond)))
	}
	if len(why) == 0 {
		return false, "", ""
	}
	// Requests that went out late although a connection was free were
	// held back by the load generator itself; requests that found every
	// connection busy were held back by the target's latency (at this rate
	// it kept more requests in flight than there are connections).
	switch {
	case l.delay > MaxSendLag:
		why = append(why, fmt.Sprintf("requests went out up to %s late with a connection free: the load generator was short of CPU",
			l.delay.Round(time.Millisecond)))
		return true, SaturatedLoadgen, strings.Join(why, "; ")
	case l.wait > 0:
		why = append(why, fmt.Sprintf("requests waited up to %s for a free connection: all %d were busy, so the target's latency at this rate exceeded what %d connections carry",
			l.wait.Round(time.Millisecond), connections, connections))
		return true, SaturatedConnections, strings.Join(why, "; ")
	}
	why = append(why, "the load generator could not keep the rate")
	return true, SaturatedLoadgen, strings.Join(why, "; ")
}

// Causes of a saturated step.
const (
	// SaturatedConnections: every connection was busy when requests came
	// due; the target (proxy, upstream or the host under them) was too slow
	// for this rate over this many connections.
	SaturatedConnections = "connections"
	// SaturatedLoadgen: the load generator could not send in time with
	// connections free.
	SaturatedLoadgen = "loadgen"
)

// lateness is how far a step's requests fell behind, in parts.
type lateness struct {
	lag   time.Duration // behind the pacer's slot, in all
	wait  time.Duration // waiting for a free connection
	delay time.Duration // claimed and due, not yet sent
}
