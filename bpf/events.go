package bpf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Events says which counted events also go through the perf buffer. The
// accept and connect counts are per-CPU counters in the kernel and exact
// whatever is chosen; what crosses the buffer is only for studying its
// delivery, and each record costs the watched process a perf output and a
// reader wake-up, so the zero value sends none.
type Events struct {
	// Every: 0 sends none, 1 every event, N one event in N on each CPU.
	Every uint32
}

// EventsNone and EventsAll are the two ends; EventsSample lies between.
var (
	EventsNone = Events{}
	EventsAll  = Events{Every: 1}
)

// EventsSample sends one event in n on each CPU.
func EventsSample(n uint32) Events { return Events{Every: n} }

// Name is "none", "all" or "sample", as results files write it.
func (e Events) Name() string {
	switch e.Every {
	case 0:
		return "none"
	case 1:
		return "all"
	}
	return "sample"
}

func (e Events) String() string {
	if e.Every > 1 {
		return fmt.Sprintf("one in %d per CPU", e.Every)
	}
	return e.Name()
}

// MaxSample bounds a sample rate: beyond it a step sends next to nothing,
// which is what none is for.
const MaxSample = 1 << 20

func (e Events) check() error {
	if e.Every > MaxSample {
		return fmt.Errorf("bpf: sample rate %d is above %d; use no events instead", e.Every, MaxSample)
	}
	return nil
}

// ParseEvents reads the spelling of the probes command's --events flag:
// all, none, or a sample rate N (one event in N per CPU).
func ParseEvents(s string) (Events, error) {
	switch s {
	case "all":
		return EventsAll, nil
	case "none":
		return EventsNone, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 2 || n > MaxSample {
		return Events{}, fmt.Errorf("bpf: events %q: want all, none or a sample rate from 2 to %d", s, MaxSample)
	}
	return EventsSample(uint32(n)), nil
}

// threadCPUSeconds is the CPU time of one thread of this process so far:
// from schedstat in nanoseconds where the kernel has it, else from stat in
// clock ticks.
func threadCPUSeconds(tid int64) (float64, error) {
	dir := "/proc/self/task/" + strconv.FormatInt(tid, 10)
	if b, err := os.ReadFile(dir + "/schedstat"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if ns, err := strconv.ParseUint(f[0], 10, 64); err == nil {
				return float64(ns) / 1e9, nil
			}
		}
	}
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return 0, fmt.Errorf("bpf: reader CPU time: %w", err)
	}
	return statCPUSeconds(string(b))
}

// userHZ is the unit of /proc's tick counts, fixed at 100 on Linux.
const userHZ = 100

// statCPUSeconds reads utime + stime (fields 14 and 15) of a
// /proc/.../stat line; the command name before them may hold spaces and
// parentheses, so fields are counted from the last ')'.
func statCPUSeconds(line string) (float64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, errors.New("bpf: reader CPU time: stat line without a command name")
	}
	f := strings.Fields(line[i+1:])
	if len(f) < 13 {
		return 0, errors.New("bpf: reader CPU time: short stat line")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("bpf: reader CPU time: %w", err)
	}
	return float64(utime+stime) / userHZ, nil
}
