package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxylab/proxylab/lab"
)

// sutEnvFile is where scripts/setup.sh --remote-test says how to reach the
// lab's own test SUT host: a second engine in a network namespace.
const sutEnvFile = "/run/proxylab-sut/sut.env"

// testSUT is the test SUT host: its engine and its address.
type testSUT struct {
	engine, address string
	e               *lab.Engine
}

// requireSUT skips only when this host has no test SUT host; `make test`
// starts one and sets PROXYLAB_REQUIRE_SUT=1, so there its absence fails.
func requireSUT(t *testing.T) *testSUT {
	t.Helper()
	s, err := readSUTEnv(sutEnvFile)
	if err == nil {
		s.e, err = lab.ConnectTo(context.Background(), s.engine)
	}
	if err != nil {
		if os.Getenv("PROXYLAB_REQUIRE_SUT") == "1" {
			t.Fatalf("PROXYLAB_REQUIRE_SUT=1 but: %v", err)
		}
		t.Skipf("host lacks the lab's test SUT host (%v); start it with scripts/setup.sh --remote-test", err)
	}
	t.Cleanup(func() { s.e.Close() })
	return s
}

func readSUTEnv(path string) (*testSUT, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &testSUT{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "PROXYLAB_SUT_ENGINE":
			s.engine = v
		case "PROXYLAB_SUT_ADDRESS":
			s.address = v
		}
	}
	if s.engine == "" || s.address == "" {
		return nil, errors.New(path + " names no engine or no address")
	}
	return s, sc.Err()
}

func (s *testSUT) args() []string { return []string{"--sut", s.engine, "--sut-address", s.address} }

// The smoke run through the SUT host's engine owes what the local one
// does, and says where it ran and how its figures were taken there. The
// conformance suite runs on this host whatever the engine, on the very
// binaries, so the local smoke test covers it.
func TestCompareOnSUTHost(t *testing.T) {
	sut := requireSUT(t)
	res, path, out := compareOn(t, sut.e, 8*time.Minute, append([]string{"scenarios/smoke.yaml", "--skip-verify"}, sut.args()...)...)
	checkSmoke(t, res, path, out, false)
	h := res.Host.SUT
	if h == nil {
		t.Fatal("results do not describe the SUT host")
	}
	if h.Engine != sut.engine || h.Address != sut.address || !h.SameMachine || h.Host.Cores == 0 || h.Host.DockerVersion == "" ||
		h.Path.Interface == "" || h.Path.ConnectMicros <= 0 || !strings.Contains(h.Readings, "/proc of the SUT host") {
		t.Errorf("SUT host %+v, want engine %s at %s, this machine, its cores, engine, path and readings", h, sut.engine, sut.address)
	}
	for _, p := range res.Proxies {
		for _, st := range p.Runs[0].Steps {
			r := st.Resources
			if r.UpstreamCPUSeconds == nil || r.ProxyCPUSeconds <= 0 || len(r.Cores) == 0 || r.Interference == nil {
				t.Errorf("%s: resources %+v: want the proxy's and the upstream's CPU, the cores and the interference", p.Name, r)
			}
			if !hasParty(r.Parties, lab.PartyReader) {
				t.Errorf("%s: parties %+v: want the lab's reader on the SUT host among them", p.Name, r.Parties)
			}
		}
	}
}

// With probes on, the reader on the SUT host counts the proxy's accepts
// there, exactly as they are counted on one host.
func TestCompareProbesOnSUTHost(t *testing.T) {
	sut := requireSUT(t)
	if os.Geteuid() != 0 {
		t.Skip("host lacks the capability: eBPF probes need root")
	}
	res, _, _ := compareOn(t, sut.e, 5*time.Minute, append([]string{"cmd/proxylab/testdata/probes.yaml", "--skip-verify"}, sut.args()...)...)
	checkProbeCounts(t, res)
	if !strings.Contains(res.Host.SUT.Readings, "/proc of the SUT host") {
		t.Errorf("readings %q: want them taken on the SUT host", res.Host.SUT.Readings)
	}
	if r := res.Probes.ReaderCPUs; r != res.Placement.UpstreamCPUs {
		t.Errorf("reader pinned to %q (%s), want the upstream's CPUs on the SUT host, %q", r, res.Probes.ReaderPinError, res.Placement.UpstreamCPUs)
	}
}

// Ctrl-C removes the run's containers on the SUT engine, the reader's
// too, and keeps what was measured.
func TestCompareInterruptOnSUTHost(t *testing.T) {
	sut := requireSUT(t)
	interrupt(t, sut.e, syscall.SIGINT, sut.args()...)
}

// Bad SUT input is refused before anything is measured, with a message
// that names what was wrong.
func TestCompareRefusesBadSUT(t *testing.T) {
	sut := requireSUT(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"engine without address", []string{"--sut", sut.engine}, 2, "--sut and --sut-address go together"},
		{"a name", []string{"--sut", sut.engine, "--sut-address", "sut.example"}, 2, "names are refused"},
		{"loopback", []string{"--sut", sut.engine, "--sut-address", "127.0.0.1"}, 2, "is loopback"},
		{"unreachable engine", []string{"--sut", "unix:///run/proxylab-sut/none.sock", "--sut-address", sut.address}, 3, "none.sock"},
		{"ssh engine", []string{"--sut", "ssh://sut.example", "--sut-address", sut.address}, 3, "ssh -nNT -L"},
		// The test host's /30 has no other address: nothing answers there.
		{"address that does not answer", []string{"--sut", sut.engine, "--sut-address", "10.254.254.3"}, 1, "does not answer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b, err := proxylab(ctx, append([]string{"compare", "scenarios/smoke.yaml", "--results-dir", t.TempDir()}, tc.args...)...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.code || !strings.Contains(string(b), tc.want) {
				t.Errorf("exit %v, want %d with %q:\n%s", err, tc.code, tc.want, b)
			}
		})
	}
	assertNoContainers(t, sut.e, "")
}

func hasParty(ps []lab.Party, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}
