package loadgen

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/proxylab/proxylab/threads"
)

// Batch reaches every thread, those the runtime starts afterwards too, and
// leaves alone a policy chosen for one of them.
func TestBatch(t *testing.T) {
	t.Cleanup(func() { normalAgain(t) })

	// A thread of its own with a policy chosen for it.
	chosen := make(chan int)
	release := make(chan struct{})
	defer close(release)
	go func() {
		runtime.LockOSThread()
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_IDLE}, 0); err != nil {
			t.Error(err)
		}
		chosen <- unix.Gettid()
		<-release
	}()
	idle := <-chosen
	t.Cleanup(func() { unix.SchedSetAttr(idle, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0) })

	if err := Batch(); err != nil {
		t.Fatal(err)
	}
	// Threads the runtime starts now: each goroutine that keeps its thread
	// and blocks makes the next one need another.
	before := policies(t)
	locked := make(chan struct{})
	for range 4 {
		go func() {
			runtime.LockOSThread()
			locked <- struct{}{}
			<-release
		}()
		<-locked
	}
	after := policies(t)
	started := 0
	for tid := range after {
		if _, ok := before[tid]; !ok {
			started++
		}
	}
	if started == 0 {
		t.Fatal("no thread was started after Batch: the test proves nothing")
	}
	for tid, policy := range after {
		want := unix.SCHED_BATCH
		if tid == idle {
			want = unix.SCHED_IDLE
		}
		if policy != uint32(want) {
			t.Errorf("thread %d has policy %d, want %d", tid, policy, want)
		}
	}
}

// policies maps each thread of the process to its scheduling policy.
func policies(t *testing.T) map[int]uint32 {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]uint32{}
	for _, e := range tasks {
		tid, _ := strconv.Atoi(e.Name())
		if attr, err := unix.SchedGetAttr(tid, 0); err == nil {
			m[tid] = attr.Policy
		}
	}
	return m
}

// normalAgain gives every batch thread the normal policy back, as Batch
// sets them.
func normalAgain(t *testing.T) {
	if err := threads.Each(toNormal); err != nil {
		t.Error(err)
	}
}

func toNormal(tid int) (bool, error) {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil || attr.Policy != unix.SCHED_BATCH {
		return false, err
	}
	return true, unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: attr.Nice}, 0)
}
