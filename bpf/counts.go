package bpf

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Counts are cumulative since Attach (or, after Sub, over an interval).
// Attempted, Failed, Accepts and Connects are counted in the kernel;
// Received and LostSamples by the perf buffer reader.
//
// Loss can happen at three layers, and each has its count: the kernel
// skipped a program (ProgMisses, KretprobeMisses: accepts and connects are
// then short by up to that many), a record did not fit in the perf buffer
// because the reader fell behind (Failed; LostSamples is the reader's view
// of the same), and nothing is lost after that (Received).
type Counts struct {
	Mode string `json:"mode"`
	// Events and SampleEvery say which events were sent through the perf
	// buffer: "all" (1), "none" (0), or "sample", one in SampleEvery per CPU.
	Events      string  `json:"events"`
	SampleEvery uint32  `json:"sample_every"`
	Accepts     uint64  `json:"accepts"`
	Connects    uint64  `json:"connects"`
	Attempted   uint64  `json:"attempted"` // events sent (sampled), not events counted
	Received    uint64  `json:"received"`
	Failed      uint64  `json:"failed"`
	LostSamples uint64  `json:"lost_samples"`
	LossRatio   float64 `json:"loss_ratio"`
	// ProgMisses: runs of the attached programs the kernel skipped;
	// KretprobeMisses: returns the kretprobes missed (kprobe mode). Nil
	// when the kernel does not keep the count; MissesUnknown says why.
	ProgMisses      *uint64 `json:"prog_misses,omitempty"`
	KretprobeMisses *uint64 `json:"kretprobe_misses,omitempty"`
	MissesUnknown   string  `json:"misses_unknown,omitempty"`
	// ReaderCPUSeconds is the CPU time of the perf buffer's reader thread.
	ReaderCPUSeconds float64 `json:"reader_cpu_seconds"`
}

// UnmarshalJSON reads counts written before events could be chosen as
// what they were then, every event sent, and says that counts written
// before the miss counts existed do not know them.
func (c *Counts) UnmarshalJSON(b []byte) error {
	type plain Counts
	v := plain{Events: EventsAll.Name(), SampleEvery: EventsAll.Every}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.ProgMisses == nil && v.MissesUnknown == "" {
		v.MissesUnknown = MissesNotRecorded
	}
	*c = Counts(v)
	return nil
}

// Predates reports counts read from a file written before the miss counts,
// the events setting and the reader's CPU time were recorded.
func (c Counts) Predates() bool { return c.MissesUnknown == MissesNotRecorded }

// MissesNotRecorded is MissesUnknown for counts written before the miss
// counts existed.
const MissesNotRecorded = "not recorded (written before the kernel's miss counts were kept)"

// Missed is how many events the kernel's miss counts say the counters may
// lack, and whether every miss count that applies to the mode is known.
func (c Counts) Missed() (n uint64, known bool) {
	if c.ProgMisses != nil {
		n += *c.ProgMisses
	}
	if c.KretprobeMisses != nil {
		n += *c.KretprobeMisses
	}
	return n, c.MissesUnknown == ""
}

// Sub returns the counts accumulated since prev, an earlier Snapshot of the
// same Probes.
func (c Counts) Sub(prev Counts) Counts {
	d := Counts{
		Mode:             c.Mode,
		Events:           c.Events,
		SampleEvery:      c.SampleEvery,
		Accepts:          c.Accepts - prev.Accepts,
		Connects:         c.Connects - prev.Connects,
		Attempted:        c.Attempted - prev.Attempted,
		Received:         c.Received - prev.Received,
		Failed:           c.Failed - prev.Failed,
		LostSamples:      c.LostSamples - prev.LostSamples,
		ProgMisses:       subOpt(c.ProgMisses, prev.ProgMisses),
		KretprobeMisses:  subOpt(c.KretprobeMisses, prev.KretprobeMisses),
		MissesUnknown:    cmp.Or(c.MissesUnknown, prev.MissesUnknown),
		ReaderCPUSeconds: c.ReaderCPUSeconds - prev.ReaderCPUSeconds,
	}
	d.LossRatio = lossRatio(d.Failed, d.Attempted)
	return d
}

// subOpt is a - b for counts the kernel may not keep: unknown at either end
// is unknown over the interval.
func subOpt(a, b *uint64) *uint64 {
	if a == nil || b == nil {
		return nil
	}
	d := *a - *b
	return &d
}

func lossRatio(failed, attempted uint64) float64 {
	if attempted == 0 {
		return 0
	}
	return float64(failed) / float64(attempted)
}

// Indexes of the counters map, as in probes.c.
const (
	counterAccepts = iota
	counterConnects
	counterAttempted
	counterFailed
	counterNoSpace
	counterFlushNoSpace
	counterMax
)

type kernelCounts [counterMax]uint64

func (p *Probes) kernel() (kernelCounts, error) {
	var k kernelCounts
	var perCPU []uint64
	for i := range k {
		if err := p.maps.Counters.Lookup(uint32(i), &perCPU); err != nil {
			return k, fmt.Errorf("bpf: reading counters: %w", err)
		}
		for _, v := range perCPU {
			k[i] += v
		}
	}
	return k, nil
}

// Tries before Snapshot stops new perf output to find a quiet cut.
const (
	openTries   = 3
	pausedTries = 50
)

// Snapshot drains the perf buffer and returns the counts at one consistent
// cut: every attempted output is either received or failed, so
// Attempted == Received + Failed holds exactly, and every output dropped for
// a full buffer has been reported, so LostSamples == Failed unless some
// outputs failed for another reason.
//
// A cut is consistent when the kernel's attempted and failed counters did not
// move while the buffer was drained and everything they account for has
// arrived. Under a steady event stream that may never happen, so after a
// few tries the programs stop sending (they keep counting accepts and
// connects) until the cut is found; events during those milliseconds are
// then counted but not in Attempted.
func (p *Probes) Snapshot() (Counts, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.coll == nil {
		return Counts{}, errors.New("bpf: snapshot of closed probes")
	}
	for try := 0; try < openTries+pausedTries; try++ {
		if try == openTries {
			if err := p.setPaused(1); err != nil {
				return Counts{}, err
			}
			defer p.setPaused(0)
		}
		before, err := p.kernel()
		if err != nil {
			return Counts{}, err
		}
		if err := p.drain(); err != nil {
			return Counts{}, err
		}
		// The LOST records owed for outputs dropped since a ring's last
		// successful output are only written with its next one, so each
		// ring gets one more output now that there is room, and is drained
		// again.
		if err := p.flushRings(); err != nil {
			return Counts{}, err
		}
		if !p.noFlush {
			if err := p.drain(); err != nil {
				return Counts{}, err
			}
		}
		// Read after the drain and before the second kernel read: a record
		// counted here was attempted before that read, so received can never
		// run ahead of the cut being checked.
		received, lost := p.received.Load(), p.lost.Load()
		after, err := p.kernel()
		if err != nil {
			return Counts{}, err
		}
		attempted, failed := after[counterAttempted], after[counterFailed]
		if attempted != before[counterAttempted] || failed != before[counterFailed] || received+failed != attempted {
			continue
		}
		// A flush dropped for a full ring is owed a LOST record too; it is
		// not an event, so it is taken out again once reported.
		if !p.noFlush && lost != after[counterNoSpace] {
			continue
		}
		if flushLost := after[counterFlushNoSpace]; lost >= flushLost {
			lost -= flushLost
		}
		m := p.misses()
		return Counts{
			Mode:             p.mode,
			Events:           p.events.Name(),
			SampleEvery:      p.events.Every,
			Accepts:          after[counterAccepts],
			Connects:         after[counterConnects],
			Attempted:        attempted,
			Received:         received,
			Failed:           failed,
			LostSamples:      lost,
			LossRatio:        lossRatio(failed, attempted),
			ProgMisses:       m.prog,
			KretprobeMisses:  m.kretprobe,
			MissesUnknown:    m.unknown,
			ReaderCPUSeconds: p.readerCPUSeconds(),
		}, nil
	}
	return Counts{}, errors.New("bpf: no consistent snapshot: events kept arriving while the perf buffer was drained")
}

// readerCPUSeconds is the reader thread's CPU time so far; 0 if it cannot
// be read, which a step then shows as no time rather than failing.
func (p *Probes) readerCPUSeconds() float64 {
	s, err := threadCPUSeconds(p.readerTID.Load())
	if err != nil {
		return 0
	}
	return s
}

// flushRings makes one output on every online CPU's ring. Kernels before
// 5.10 cannot run a program on a chosen CPU; there LostSamples may lag
// Failed, and Snapshot stops waiting for it to catch up.
func (p *Probes) flushRings() error {
	if p.noFlush {
		return nil
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("bpf: counting CPUs: %w", err)
	}
	for cpu := range cpus {
		_, err := p.flush.Run(&ebpf.RunOptions{CPU: uint32(cpu), Flags: unix.BPF_F_TEST_RUN_ON_CPU})
		switch {
		case err == nil:
		case errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL):
			p.noFlush = true
			return nil
		case errors.Is(err, unix.ENXIO):
			// Offline: the reader has no ring for it either.
		default:
			return fmt.Errorf("bpf: flushing perf buffer on CPU %d: %w", cpu, err)
		}
	}
	return nil
}

// isFlush tells flushRings' records apart from events; see struct event
// in probes.c.
func isFlush(raw []byte) bool {
	return len(raw) >= 8 && binary.NativeEndian.Uint32(raw[4:8]) == kindFlush
}

const kindFlush = 3

func (p *Probes) setPaused(v uint32) error {
	if err := p.maps.Paused.Put(uint32(0), v); err != nil {
		return fmt.Errorf("bpf: pausing perf output: %w", err)
	}
	return nil
}

// drainTimeout bounds a drain so a stuck reader cannot hang a run.
const drainTimeout = 5 * time.Second

// drain returns once the reader has consumed every record that was in the
// perf buffer when it was called.
func (p *Probes) drain() error {
	if errp := p.readErr.Load(); errp != nil {
		return fmt.Errorf("bpf: reading perf buffer: %w", *errp)
	}
	select {
	case <-p.flushed: // stale, from an earlier timed-out drain
	default:
	}
	if err := p.reader.Flush(); err != nil {
		return fmt.Errorf("bpf: flushing perf buffer: %w", err)
	}
	select {
	case <-p.flushed:
		return nil
	case <-p.done:
		if errp := p.readErr.Load(); errp != nil {
			return fmt.Errorf("bpf: reading perf buffer: %w", *errp)
		}
		return errors.New("bpf: perf reader stopped")
	case <-time.After(drainTimeout):
		return errors.New("bpf: perf buffer drain timed out")
	}
}
