package loadgen

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Batch schedules every thread of this process that has the normal policy
// as SCHED_BATCH; the threads the Go runtime starts later inherit it from
// the ones that start them. A policy someone chose (chrt) is kept.
//
// The lab's placement on a small host puts the load generator on the
// upstream's core. A thread of the normal policy that wakes because an
// answer came preempts the upstream there and then, so the upstream answers
// a request or two per turn and pays for a pair of context switches each
// time. A batch thread keeps its weight, so its share of the core, but does
// not preempt on waking: it runs once the upstream blocks or at the next
// tick, and the upstream answers what it holds in one turn. This holds
// where the upstream is a scheduling group of its own, as in its container's
// cgroup; within one group the two gain nothing measurable. (wrk does not do
// this itself; run under chrt -b it gains too, less.)
//
// A thread is listed in /proc/self/task only once it is made, after it has
// taken its creator's policy; one being made from a thread the pass has
// not set yet shows afterwards with the normal policy. So the passes, a few
// milliseconds apart, go on until one finds nothing to set.
func Batch() error {
	for {
		changed, err := batchPass()
		if err != nil || !changed {
			return err
		}
		time.Sleep(settleThreads)
	}
}

// settleThreads is longer than the making of a thread takes.
const settleThreads = 10 * time.Millisecond

// batchPass sets each thread of the normal policy, keeping its nice value,
// and reports whether it found one.
func batchPass() (changed bool, err error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return false, fmt.Errorf("loadgen: listing this process's threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if err == unix.ESRCH {
			continue // the thread has exited since
		}
		if err != nil {
			return false, fmt.Errorf("loadgen: scheduling policy of thread %d: %w", tid, err)
		}
		if attr.Policy != unix.SCHED_NORMAL {
			continue
		}
		// A fresh attribute: the one read back carries the thread's time
		// slice, which set again would count as one asked for.
		err = unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_BATCH, Nice: attr.Nice}, 0)
		if err != nil && err != unix.ESRCH {
			return false, fmt.Errorf("loadgen: making thread %d SCHED_BATCH: %w", tid, err)
		}
		changed = true
	}
	return changed, nil
}
