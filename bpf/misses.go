package bpf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Events the programs never saw are the loss before any counter: the
// kernel skips a program when another BPF program already runs on that CPU
// (recursion protection), and a kretprobe misses a return when all of its
// instances are taken by calls still in flight (a blocking accept holds
// one while it sleeps). Both are counted by the kernel, but only by recent
// ones; where a count is missing, the results say why instead of a zero.

// version is a kernel release's major and minor number.
type version [2]int

func (v version) atLeast(major, minor int) bool {
	return v[0] > major || v[0] == major && v[1] >= minor
}

func (v version) String() string { return fmt.Sprintf("%d.%d", v[0], v[1]) }

// parseRelease reads "6.1.0-28-amd64" as 6.1.
func parseRelease(r string) (version, bool) {
	majStr, rest, _ := strings.Cut(r, ".")
	minStr := rest
	if i := strings.IndexFunc(rest, func(c rune) bool { return c < '0' || c > '9' }); i >= 0 {
		minStr = rest[:i]
	}
	maj, err1 := strconv.Atoi(majStr)
	minor, err2 := strconv.Atoi(minStr)
	if err1 != nil || err2 != nil {
		return version{}, false
	}
	return version{maj, minor}, true
}

func runningKernel() (version, string) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return version{}, ""
	}
	r := unix.ByteSliceToString(u.Release[:])
	v, _ := parseRelease(r)
	return v, r
}

// coverage is which miss counts a kernel keeps for an attach mode.
type coverage struct {
	prog      bool   // skipped program runs (bpf_prog_info.recursion_misses)
	kretprobe bool   // missed kretprobe returns (kprobe link info)
	unknown   string // why a count that applies to the mode is not kept
}

// missCoverage: fentry programs count recursion misses since 5.12;
// kprobe and tracepoint programs, which run through trace_call_bpf, and
// the kprobe link's missed count, since 6.7.
func missCoverage(mode string, v version, release string) coverage {
	switch mode {
	case ModeFentry:
		if v.atLeast(5, 12) {
			return coverage{prog: true}
		}
		return coverage{unknown: fmt.Sprintf("kernel %s does not count skipped fentry programs (since 5.12)", release)}
	case ModeKprobe:
		if v.atLeast(6, 7) {
			return coverage{prog: true, kretprobe: true}
		}
		return coverage{unknown: fmt.Sprintf("kernel %s neither counts skipped kprobe programs nor reports kretprobe misses (both since 6.7)", release)}
	case ModeTracepoint:
		if v.atLeast(6, 7) {
			return coverage{prog: true}
		}
		return coverage{unknown: fmt.Sprintf("kernel %s does not count skipped tracepoint programs (since 6.7)", release)}
	}
	return coverage{unknown: "unknown mode " + mode}
}

// missCounts are the kernel's miss counts of the attached programs, each
// nil when the kernel does not keep it; unknown says why.
type missCounts struct {
	prog, kretprobe *uint64
	unknown         string
}

func (p *Probes) misses() missCounts {
	m := missCounts{unknown: p.coverage.unknown}
	if p.coverage.prog {
		var sum uint64
		ok := true
		for name, prog := range p.coll.Programs {
			st, err := prog.Stats()
			if err != nil {
				ok = false
				m.unknown = fmt.Sprintf("reading the run statistics of %s: %v", name, err)
				break
			}
			sum += st.RecursionMisses
		}
		if ok {
			m.prog = &sum
		}
	}
	if p.coverage.kretprobe {
		if n, err := kretprobeMisses(p.links); err != nil {
			m.unknown = err.Error()
		} else {
			n += p.kretBase
			m.kretprobe = &n
		}
	}
	return m
}

// kretprobeMisses sums the missed count the kernel reports for each kprobe
// link: returns missed for want of an instance, and hits dropped because
// another kprobe was running.
func kretprobeMisses(links []link.Link) (uint64, error) {
	var sum uint64
	for _, l := range links {
		info, err := l.Info()
		if err != nil {
			return 0, fmt.Errorf("reading kretprobe link info: %w", err)
		}
		pe := info.PerfEvent()
		if pe == nil || pe.Kprobe() == nil {
			return 0, fmt.Errorf("kretprobe link info of type %v carries no kprobe part", info.Type)
		}
		sum += pe.Kprobe().Missed
	}
	return sum, nil
}
