package loadgen

import (
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// schedule hands out a step's hits in vegeta's order and at vegeta's times:
// hit n goes out when the pacer says, given n hits before it, and none is
// due after the step's duration. Any idle worker claims the next hit, so no
// single pacing goroutine sits between the pacer and the sockets (vegeta's
// one ticker goroutine and its two channel hand-offs per hit were the
// ceiling of its attacker), while a hit still waits when every connection is
// busy, and is then sent late, as with vegeta; the lag is what flags the step
// as saturated.
type schedule struct {
	pacer    vegeta.Pacer
	interval time.Duration // between slots; 0 when unpaced
	start    time.Time
	duration time.Duration

	hits    atomic.Uint64 // claimed, for the pacer
	stopped atomic.Bool

	// Sequence numbers are given at send time, together with the send
	// time, under one lock, as vegeta does: then ordering results by seq
	// orders them by time too, which vegeta plot requires.
	sendMu sync.Mutex
	seq    uint64
}

func newSchedule(rate int, d time.Duration, start time.Time) *schedule {
	var interval time.Duration
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	return &schedule{
		interval: interval,
		// Freq 0 is vegeta's infinite rate: every hit is due at once.
		pacer:    vegeta.ConstantPacer{Freq: rate, Per: time.Second},
		start:    start,
		duration: d,
	}
}

// claim takes the next hit at now (since start) and returns when it is due
// and its slot: when the pacer meant it to go out. The pacer says only "now"
// for a hit already overdue, so the slot is what tells how long it waited to
// be claimed. ok is false once the step is over.
func (s *schedule) claim(now time.Duration) (due, slot time.Duration, ok bool) {
	if s.stopped.Load() {
		return 0, 0, false
	}
	n := s.hits.Add(1) - 1
	// vegeta's ConstantPacer makes hit n (0-based) due at (n+1) intervals.
	slot = time.Duration(n+1) * s.interval
	wait, stop := s.pacer.Pace(now, n)
	due = now + max(wait, 0)
	if stop || due > s.duration {
		return 0, 0, false
	}
	return due, min(slot, due), true
}

// send numbers a hit that is about to be sent and stamps its send time.
func (s *schedule) send() (seq uint64, sent time.Duration) {
	s.sendMu.Lock()
	sent = time.Since(s.start)
	seq = s.seq
	s.seq++
	s.sendMu.Unlock()
	return seq, sent
}

// halt ends the step early: no hit is handed out after it, and the loops
// wake the workers waiting for a hit's time (loop.wakeSleepers).
func (s *schedule) halt() { s.stopped.Store(true) }
