package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkAttackUnpaced measures the generator's own ceiling against an
// in-process fasthttp server on loopback: both share the machine, so read
// the figure as a comparison between revisions, and the CPU profile
// (-cpuprofile) for where the generator's time goes.
func BenchmarkAttackUnpaced(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	go srv.Serve(ln)
	defer srv.Shutdown()
	benchmarkAttack(b, "http://"+ln.Addr().String()+"/", 0)
}

// BenchmarkAttackUpstream drives the lab's upstream, built from ../upstream
// and run as a process of its own, so that the profile and the cpu-us/req
// figure (this process's user+system time per request) are the client's
// alone. The upstream inherits the benchmark's CPU affinity: under
// `taskset -c 0` both share one CPU, as on the lab's 2-core hosts, and a
// cycle the client saves is one the upstream gains.
func BenchmarkAttackUpstream(b *testing.B) {
	url := startUpstream(b)
	b.Run("rate=0", func(b *testing.B) { benchmarkAttack(b, url, 0) })
	b.Run("rate=5000", func(b *testing.B) { benchmarkAttack(b, url, 5000) })
}

// benchmarkAttack runs one-second steps at rate over 64 connections and
// reports requests per second and this process's CPU time per request.
func benchmarkAttack(b *testing.B, url string, rate int) {
	g, err := New(Target{URL: url}, Config{Connections: 64, KeepAlive: true})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	// Connections are dialled before the clock starts.
	if err := g.Warmup(context.Background(), Step{Rate: rate, Duration: 200 * time.Millisecond}); err != nil {
		b.Fatal(err)
	}
	var requests uint64
	var elapsed time.Duration
	cpu0 := cpuTime(b)
	b.ReportAllocs()
	for b.Loop() {
		res, err := g.Attack(context.Background(), Step{Rate: rate, Duration: time.Second}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Success != 1 {
			b.Fatalf("success %v: %v", res.Success, res.Errors)
		}
		requests += res.Requests
		elapsed += time.Duration(res.Duration * float64(time.Second))
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(requests)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(requests), "cpu-us/req")
}

// cpuTime is the user+system time this process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startUpstream builds and starts the lab's upstream on an ephemeral
// loopback port and returns its URL; it is stopped when b ends.
func startUpstream(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "upstream")
	if out, err := exec.Command("go", "build", "-o", bin, "../upstream").CombinedOutput(); err != nil {
		b.Fatalf("building ../upstream: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "LISTEN_ADDR=127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The first line names the bound address: "... listen=127.0.0.1:NNNN ...".
	br := bufio.NewReader(stderr)
	line, err := br.ReadString('\n')
	if err != nil {
		b.Fatalf("upstream said nothing: %v", err)
	}
	// Whatever it logs later must not fill the pipe and stall it.
	go io.Copy(io.Discard, br)
	for _, f := range strings.Fields(line) {
		if addr, ok := strings.CutPrefix(f, "listen="); ok {
			return "http://" + addr + "/"
		}
	}
	b.Fatalf("upstream did not report its address: %q", line)
	return ""
}

// BenchmarkResponseHead compares the in-place parse of the upstream's
// response head with fasthttp's, which reads every other shape.
func BenchmarkResponseHead(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nServer: fasthttp\r\nDate: Tue, 01 Dec 2026 15:09:30 GMT\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n")
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			if _, _, ok := plainHead(raw, false); !ok {
				b.Fatal("not plain")
			}
		}
	})
	b.Run("fasthttp", func(b *testing.B) {
		var h fasthttp.ResponseHeader
		r := bytes.NewReader(raw)
		br := bufio.NewReader(r)
		for b.Loop() {
			r.Reset(raw)
			br.Reset(r)
			if err := h.Read(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
