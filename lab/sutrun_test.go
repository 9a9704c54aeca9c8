package lab

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Between two of its agent's readings, a SUT host that is another machine
// shows what its cores did and which outside process used them, labelled
// as the SUT host's: here a burner the test starts on CPU 0 of this
// machine, read through a real agent on loopback.
func TestSUTReadingsBetweenTwoReadings(t *testing.T) {
	a := newAgentClient(strings.TrimPrefix(startAgent(t, AgentConfig{}), "http://"), testAgentToken)
	ctx := context.Background()
	before, err := a.reading(ctx, "0")
	if err != nil {
		t.Fatal(err)
	}
	burner := exec.Command("taskset", "-c", "0", "sh", "-c", "while :; do :; done")
	if err := burner.Start(); err != nil {
		t.Skipf("host lacks taskset or sh to pin a burner: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	after, err := a.reading(ctx, "0")
	burner.Process.Kill()
	burner.Wait()
	if err != nil {
		t.Fatal(err)
	}
	cores := sutCoreTimes(before, after, "0")
	if len(cores) != 1 || cores[0].CPU != 0 || cores[0].Host != SUTLabel || cores[0].Busy < 0.1 {
		t.Errorf("cores %+v: want CPU 0 of the SUT host, busy for most of 0.5 s", cores)
	}
	var found bool
	for _, p := range sutOutside(before, after) {
		if p.Host != SUTLabel {
			t.Errorf("outside process %+v not labelled as the SUT host's", p)
		}
		found = found || p.PID == burner.Process.Pid && p.CPUSeconds >= 0.05
	}
	if !found {
		t.Errorf("the burner (pid %d) is not among the outside processes %+v", burner.Process.Pid, sutOutside(before, after))
	}
}
