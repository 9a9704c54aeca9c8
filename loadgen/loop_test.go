package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestUnsolicitedBytes: a server that writes a response nobody asked for,
// on an idle keep-alive connection or right behind an answer, must not
// have it taken as the answer to the next request: the connection is
// dropped, as net/http drops it, and the next request goes out on a new
// one.
func TestUnsolicitedBytes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration // between the answer and the unsolicited one; 0: in the same write
	}{
		{"on an idle connection", 20 * time.Millisecond},
		{"behind an answer", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const answer, unsolicited = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 299 Unsolicited\r\nContent-Length: 0\r\n\r\n"
			addr, accepted := serveConns(t, func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					out := answer + unsolicited
					if tc.after > 0 {
						if _, err := io.WriteString(c, answer); err != nil {
							return
						}
						time.Sleep(tc.after)
						out = unsolicited
					}
					if _, err := io.WriteString(c, out); err != nil {
						return
					}
				}
			})
			res, err := Attack(context.Background(), Target{URL: "http://" + addr + "/"},
				Config{Connections: 1, KeepAlive: true}, Step{Rate: 10, Duration: time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests < 5 || res.Success != 1 || res.StatusCodes["299"] != 0 {
				t.Fatalf("requests %d success %v codes %v errors %v", res.Requests, res.Success, res.StatusCodes, res.Errors)
			}
			if uint64(accepted.Load()) < res.Requests {
				t.Errorf("accepted %d connections for %d requests: a connection with unsolicited bytes was used again",
					accepted.Load(), res.Requests)
			}
			checkConsistent(t, res)
		})
	}
}

// TestFailingDialDoesNotStallItsLoop: in the closed model a worker whose
// every dial is refused at once fails request after request without ever
// waiting; the other connections of its loop must still be served, and
// the step end on time.
func TestFailingDialDoesNotStallItsLoop(t *testing.T) {
	srv := newServer(t, ok)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one loop for both slots
	g, err := New(Target{URL: srv.URL}, Config{Connections: 2, KeepAlive: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// The first dial, slot 0's, goes through; every later one is refused.
	var dials atomic.Int64
	guard := g.dialer.guard
	g.dialer.guard = func(ctx context.Context, network, addr string, rc syscall.RawConn) error {
		if dials.Add(1) > 1 {
			return errors.New("refused for the test")
		}
		return guard(ctx, network, addr, rc)
	}
	began := time.Now()
	res, err := g.Attack(context.Background(), Step{Rate: 0, Duration: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("the step took %v", took)
	}
	// A stalled loop serves slot 0 once, when the step ends. Served, it
	// answers in the hundreds: the server shares the test's one CPU slot
	// and waits for the runtime's poller, which a busy loop leaves to the
	// scheduler's periodic look.
	if res.StatusCodes["200"] < 20 {
		t.Errorf("slot 0 got %d answers in a second beside a slot failing at once (codes %v)", res.StatusCodes["200"], res.StatusCodes)
	}
	if res.StatusCodes["0"] == 0 {
		t.Errorf("no refused dial recorded: the test proves nothing (codes %v)", res.StatusCodes)
	}
}

// TestFailureBeforeAnswer: a server that resets the connection instead of
// answering is reported as a reset, not as the end of the stream; and an
// answer cut off after its first bytes is never sent again, since the
// server may have acted on it.
func TestFailureBeforeAnswer(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		addr, _ := serveConns(t, func(c net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
		})
		res, err := Attack(context.Background(), Target{URL: "http://" + addr + "/"},
			Config{Connections: 1, KeepAlive: true}, Step{Rate: 20, Duration: 500 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests == 0 {
			t.Fatal("no request recorded")
		}
		checkErrors(t, res, "read: connection reset by peer")
	})
	t.Run("answer cut off", func(t *testing.T) {
		var requests atomic.Int64
		addr, _ := serveConns(t, func(c net.Conn) {
			defer c.Close()
			br := bufio.NewReader(c)
			for i := 0; ; i++ {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				requests.Add(1)
				if i == 1 {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
			}
		})
		res, err := Attack(context.Background(), Target{URL: "http://" + addr + "/"},
			Config{Connections: 1, KeepAlive: true}, Step{Rate: 20, Duration: 500 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCodes["0"] == 0 || uint64(requests.Load()) != res.Requests {
			t.Fatalf("the server read %d requests for %d recorded (codes %v, errors %v): a request was sent again after part of its answer",
				requests.Load(), res.Requests, res.StatusCodes, res.Errors)
		}
	})
}

// TestTrickledResponse: an answer that arrives a few bytes at a time, head
// and body, is read whole, each piece waited for in the loop.
func TestTrickledResponse(t *testing.T) {
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world"
	addr, _ := serveConns(t, func(c net.Conn) {
		defer c.Close()
		c.(*net.TCPConn).SetNoDelay(true)
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			for i := 0; i < len(answer); i += 3 {
				if _, err := io.WriteString(c, answer[i:min(i+3, len(answer))]); err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
	})
	var raw bytes.Buffer
	res, err := Attack(context.Background(), Target{URL: "http://" + addr + "/"},
		Config{Connections: 2, KeepAlive: true}, Step{Rate: 20, Duration: time.Second, Raw: &raw}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 15 || res.Success != 1 {
		t.Fatalf("requests %d success %v errors %v", res.Requests, res.Success, res.Errors)
	}
	checkBodyBytes(t, &raw, 11)
}

// endlessBody is a server whose answers never end, however fast they are
// read.
func endlessBody(t *testing.T) string {
	chunk := strings.Repeat("x", 64<<10)
	addr, _ := serveConns(t, func(c net.Conn) {
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n")
		for {
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
		}
	})
	return addr
}

// stalledListener is a loopback listener that never accepts, its accept
// queue filled, so that a further connect stays unanswered: the kernel
// drops its SYNs until the queue has room.
func stalledListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	sa := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: bound.(*syscall.SockaddrInet4).Port}).String()
	// Fill the queue until a connect goes unanswered.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if i == 16 {
			t.Fatal("the listener's accept queue never filled")
		}
	}
}

// TestTimedOut: a connect that is never answered, and an answer whose
// body never ends however fast it streams, each count as a request that
// timed out, and the step ends on time.
func TestTimedOut(t *testing.T) {
	for _, tc := range []struct {
		name        string
		addr        func(t *testing.T) string
		connections int
		rate        int
		within      time.Duration
	}{
		{"connect never answered", stalledListener, 2, 10, 5 * time.Second},
		{"endless body", endlessBody, 1, 2, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			began := time.Now()
			res, err := Attack(context.Background(), Target{URL: "http://" + addr + "/"},
				Config{Connections: tc.connections, KeepAlive: true, Timeout: 300 * time.Millisecond},
				Step{Rate: tc.rate, Duration: time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(began); took > tc.within {
				t.Errorf("the step took %v", took)
			}
			if res.Requests == 0 || res.StatusCodes["0"] != res.Requests {
				t.Fatalf("requests %d codes %v", res.Requests, res.StatusCodes)
			}
			checkErrors(t, res, "no complete response within 300ms (timeout)")
		})
	}
}

// TestInterruptedWhileConnecting: an interruption ends the step at once,
// also while every connection is still waiting for its connect.
func TestInterruptedWhileConnecting(t *testing.T) {
	addr := stalledListener(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	res, err := Attack(ctx, Target{URL: "http://" + addr + "/"},
		Config{Connections: 4, KeepAlive: true}, Step{Rate: 10, Duration: 10 * time.Second}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || res == nil || !res.Interrupted {
		t.Fatalf("err %v, result %+v: want an interrupted result", err, res)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the interrupted step took %v", took)
	}
}
