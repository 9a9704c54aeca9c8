package lab

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// cpuTimes is one CPU's line of /proc/stat, in seconds since boot.
type cpuTimes struct {
	user, nice, system, idle, iowait, irq, softirq, steal float64
}

// parseProcStat reads the per-CPU lines of /proc/stat ("cpuN user nice
// system idle iowait irq softirq steal guest guest_nice", in USER_HZ
// ticks). The aggregate "cpu" line and every other line are skipped; guest
// time is already inside user and nice, so it is not read.
func parseProcStat(b []byte) (map[int]cpuTimes, error) {
	out := map[int]cpuTimes{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		cpu, err := strconv.Atoi(f[0][3:])
		if err != nil {
			return nil, fmt.Errorf("/proc/stat:%d: %q is not a CPU", n, f[0])
		}
		if len(f) < 9 {
			return nil, fmt.Errorf("/proc/stat:%d: %d fields for %s, want at least 8 times", n, len(f), f[0])
		}
		var v [8]float64
		for i := range v {
			t, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat:%d: field %d of %s: %w", n, i+2, f[0], err)
			}
			v[i] = float64(t) / clockTicks
		}
		out[cpu] = cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("/proc/stat: no per-CPU line")
	}
	return out, sc.Err()
}

// readProcStat reads every CPU's times in one read of /proc/stat, so that
// the CPUs are seen at the same instant.
func readProcStat() (map[int]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseProcStat(b)
}

// coreTimes is what each of cpus did between two readings. A CPU missing
// from either reading is left out.
func coreTimes(before, after map[int]cpuTimes, cpus []int) []CoreTime {
	var out []CoreTime
	for _, c := range cpus {
		a, okA := before[c]
		b, okB := after[c]
		if !okA || !okB {
			continue
		}
		out = append(out, CoreTime{
			CPU:   c,
			Busy:  roundTick(b.user + b.nice + b.system - a.user - a.nice - a.system),
			IRQ:   roundTick(b.irq + b.softirq - a.irq - a.softirq),
			Steal: roundTick(b.steal - a.steal),
			Idle:  roundTick(b.idle + b.iowait - a.idle - a.iowait),
		})
	}
	return out
}

// roundTick rounds seconds to the 10 ms tick /proc counts in, so that a
// difference of two readings carries no false digits.
func roundTick(s float64) float64 { return math.Round(s*clockTicks) / clockTicks }

// OutsideProcess is a process outside the run that ran on the run's cores
// during a step, with the CPU time it used there.
type OutsideProcess struct {
	PID        int     `json:"pid"`
	Name       string  `json:"name"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Host       string  `json:"host,omitempty"` // as Party.Host
}

// procTime is one process's CPU seconds, all its threads'.
type procTime struct {
	name    string
	seconds float64
	// start is when the process started, in ticks since boot: with the
	// pid it tells a process from a later one that reused the pid. The
	// name cannot: kernel workers rename themselves after the queue they
	// serve.
	start int64
	// kernel: a kernel thread, kthreadd (pid 2) or one of its children.
	kernel bool
}

// processTimes reads the CPU time of every user-space process that last
// ran on one of cpus, except those skip names. Kernel threads (kthreadd and
// its children) are left out: they do the run's own deferred work too (a
// churn step's sockets are freed by kvfree_rcu_reclaim workers, a tenth of
// a core), and what they do for others cannot be told apart from it. Per-process times are the scheduler's
// exact figures, unlike /proc/stat's per-core tick samples, which alias
// with a periodic load: a 500/s pacer against the 250 Hz tick put 0.10 s
// on the proxy's core in one step and 0.50 s in the next while the proxy
// used 0.26 s in both. The times of reaped children are left out: they
// land in the parent when the child exits, whenever it ran (init took 2 s
// at once when an earlier row's container shim exited), so a process that
// both starts and ends within a step is not seen.
func processTimes(cpus []int, skip func(pid int) bool) map[int]procTime {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := map[int]procTime{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || skip(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it exited meanwhile
		}
		if t, cpu, ok := parsePidStat(b); ok && !t.kernel && slices.Contains(cpus, cpu) {
			out[pid] = t
		}
	}
	return out
}

// parsePidStat reads a /proc/PID/stat line: the command, utime and stime
// (fields 14 and 15), the start time (22) and the CPU it last ran on (39).
func parsePidStat(b []byte) (procTime, int, bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procTime{}, 0, false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 37 {
		return procTime{}, 0, false
	}
	var ticks int64
	for _, i := range []int{11, 12} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	cpu, err := strconv.Atoi(f[36])
	if err != nil {
		return procTime{}, 0, false
	}
	start, _ := strconv.ParseInt(f[19], 10, 64)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	kernel := pid == 2 || f[1] == "2"
	return procTime{name: string(b[open+1 : end]), seconds: float64(ticks) / clockTicks, start: start, kernel: kernel}, cpu, true
}

// outsideOf is what each process used between two readings, the largest
// first; a process that started in between counts whole.
func outsideOf(before, after map[int]procTime) []OutsideProcess {
	out := []OutsideProcess{}
	for pid, a := range after {
		used := a.seconds
		if b, ok := before[pid]; ok && b.start == a.start {
			used -= b.seconds
		}
		if used = roundTick(used); used > 0 {
			out = append(out, OutsideProcess{PID: pid, Name: a.name, CPUSeconds: used})
		}
	}
	slices.SortFunc(out, func(x, y OutsideProcess) int {
		return cmp.Or(cmp.Compare(y.CPUSeconds, x.CPUSeconds), cmp.Compare(x.PID, y.PID))
	})
	return out
}
