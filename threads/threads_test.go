package threads

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Each visits the calling thread, passes again while set changes anything,
// skips threads gone meanwhile, and stops at the first other error.
func TestEach(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := unix.Gettid()

	seen := map[int]int{}
	err := Each(func(tid int) (bool, error) {
		seen[tid]++
		return seen[tid] == 1, nil // each thread changes once
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen[self] != 2 {
		t.Errorf("the calling thread was visited %d times, want 2 (a pass that changed it, a pass that did not)", seen[self])
	}

	if err := Each(func(int) (bool, error) { return true, unix.ESRCH }); err != nil {
		t.Errorf("a thread gone is an error: %v", err)
	}
	boom := errors.New("boom")
	err = Each(func(int) (bool, error) { return false, boom })
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "thread ") {
		t.Errorf("err = %v, want boom with its thread", err)
	}
}
