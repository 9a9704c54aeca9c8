package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// inFlight sends a request that the server holds for delay and waits until
// the server has accepted its connection, as seen through /stats on a
// connection opened beforehand. It returns a function that reads the answer.
func inFlight(t *testing.T, addr string, delay time.Duration) func() (*http.Response, []byte) {
	t.Helper()
	sc := dial(t, addr)
	sbr := bufio.NewReader(sc)
	base := statsOn(t, sc, sbr)

	c := dial(t, addr)
	fmt.Fprintf(c, "GET /?delay_ms=%d&size=10 HTTP/1.1\r\nHost: origin\r\n\r\n", delay.Milliseconds())
	for statsOn(t, sc, sbr) == base {
		time.Sleep(10 * time.Millisecond)
	}
	return func() (*http.Response, []byte) {
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("in-flight request lost: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
}

func statsOn(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	_, body := roundTrip(t, c, br, "GET /stats HTTP/1.1\r\nHost: origin\r\n\r\n", "GET")
	return string(body)
}

func TestShutdownFinishesInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, defaultConfig()) }()

	answer := inFlight(t, ln.Addr().String(), 500*time.Millisecond)
	cancel()
	resp, body := answer()
	if resp.StatusCode != 200 || len(body) != 10 {
		t.Fatalf("in-flight request got status %d, %d bytes", resp.StatusCode, len(body))
	}
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func TestBinarySIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGTERM")
	}
	bin := filepath.Join(t.TempDir(), "upstream")
	build := exec.Command("go", "build", "-ldflags=-X main.version=v-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "LISTEN_ADDR=127.0.0.1:0", "RESPONSE_BYTES=42")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })

	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^proxylab-upstream v-test go\S+ listen=(127\.0\.0\.1:\d+) response_bytes=42\n$`)
	m := re.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("start-up line %q does not match %s", line, re)
	}

	answer := inFlight(t, m[1], 500*time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	resp, body := answer()
	if resp.StatusCode != 200 || len(body) != 10 {
		t.Fatalf("in-flight request got status %d, %d bytes", resp.StatusCode, len(body))
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}
