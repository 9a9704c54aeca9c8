// Package threads applies a per-thread setting, a CPU affinity or a
// scheduling policy, to every thread of this process.
package threads

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// settle is longer than the making of a thread takes.
const settle = 10 * time.Millisecond

// Each calls set for every thread of this process. Linux keeps affinity and
// policy per thread, and a new thread inherits its creator's; but a thread
// is listed in /proc/self/task only once it is made, so one being made from
// a thread not set yet shows afterwards with the old setting. The passes,
// a few milliseconds apart, go on until one where set changes nothing.
//
// set reports whether it changed its thread; a thread that has exited
// meanwhile (ESRCH) is skipped.
func Each(set func(tid int) (changed bool, err error)) error {
	for {
		changed, err := pass(set)
		if err != nil || !changed {
			return err
		}
		time.Sleep(settle)
	}
}

// pass calls set once for each thread listed now.
func pass(set func(tid int) (bool, error)) (changed bool, err error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return false, fmt.Errorf("listing this process's threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		c, err := set(tid)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("thread %d: %w", tid, err)
		}
		changed = changed || c
	}
	return changed, nil
}
