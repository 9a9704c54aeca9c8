package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMFinishesInFlight runs the built proxy, gets a slow request in
// flight, sends SIGTERM and expects the request to be answered, new
// connections to be refused and the process to exit with status 0. A
// chunked request runs on a connection fasthttp has handed over to the
// proxy, which its Shutdown does not count.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	cases := []struct{ name, request string }{
		{"bodyless", "GET /?delay_ms=2000&size=10 HTTP/1.1\r\nHost: origin\r\n\r\n"},
		{"chunked body", "POST /?delay_ms=2000&size=10 HTTP/1.1\r\nHost: origin\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { finishesInFlight(t, tc.request) })
	}
}

func finishesInFlight(t *testing.T, request string) {
	upstream := startUpstream(t)
	line := regexp.MustCompile(`^proxylab-go-proxy v-test go\S+ listen=(127\.0\.0\.1:\d+) upstream=` +
		regexp.QuoteMeta(upstream) + ` workers=3\n$`)
	p := startProcess(t, proxyBin, []string{
		"LISTEN_ADDR=127.0.0.1:0", "UPSTREAM_ADDR=" + upstream, "WORKERS=3",
	}, line)

	stats := dial(t, upstream)
	before := upstreamAccepted(t, stats)
	c := dial(t, p.addr)
	c.send(request)
	// The request is in flight once the proxy has connected upstream.
	for upstreamAccepted(t, stats) == before {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Refusing new connections has to happen while the request is still
	// being served, so the process must still be running when it does.
	for {
		nc, err := net.Dial("tcp", p.addr)
		if err != nil {
			break
		}
		nc.Close()
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-p.exited:
		t.Fatal("new connections were accepted until the proxy exited")
	default:
	}
	resp, body := c.read("GET")
	if resp.StatusCode != 200 || len(body) != 10 {
		t.Fatalf("in-flight request: status %d, %d bytes", resp.StatusCode, len(body))
	}
	<-p.exited
	if p.err != nil {
		t.Fatalf("proxy exit: %v", p.err)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestBinaryRejectsBadEnvironment checks the exit code and message of the
// real process, not just of run.
func TestBinaryRejectsBadEnvironment(t *testing.T) {
	cases := []struct{ env, name string }{
		{"UPSTREAM_TIMEOUT_MS=soon", "UPSTREAM_TIMEOUT_MS"},
		{"MAX_HEADER_BYTES=0", "MAX_HEADER_BYTES"},
		{"LISTEN_ADDR=8080", "LISTEN_ADDR"},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			cmd := exec.Command(proxyBin)
			cmd.Env = append(os.Environ(), tc.env)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2", err)
			}
			if !strings.HasPrefix(string(out), "go-proxy: invalid "+tc.name+"=") {
				t.Fatalf("message %q does not name %s", out, tc.name)
			}
		})
	}
}
