package loadgen

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/proxylab/proxylab/threads"
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
// Threads being made meanwhile are caught too (threads.Each).
func Batch() error {
	err := threads.Each(func(tid int) (bool, error) {
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil || attr.Policy != unix.SCHED_NORMAL {
			return false, err
		}
		// A fresh attribute: the one read back carries the thread's time
		// slice, which set again would count as one asked for.
		return true, unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_BATCH, Nice: attr.Nice}, 0)
	})
	if err != nil {
		return fmt.Errorf("loadgen: making the threads SCHED_BATCH: %w", err)
	}
	return nil
}
