package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestUnsolicitedBytesOnIdleConnection: a server that writes a response
// nobody asked for on an idle keep-alive connection must not have it taken
// as the answer to the next request: the connection is dropped, as net/http
// drops it, and the next request goes out on a new one.
func TestUnsolicitedBytesOnIdleConnection(t *testing.T) {
	addr, accepted := serveConns(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 299 Unsolicited\r\nContent-Length: 0\r\n\r\n")
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

// TestConnectTimeout: a connect that is never answered counts as a request
// that timed out, and the step ends on time.
func TestConnectTimeout(t *testing.T) {
	addr := stalledListener(t)
	began := time.Now()
	res, err := Attack(context.Background(), Target{URL: "http://" + addr + "/"},
		Config{Connections: 2, KeepAlive: true, Timeout: 300 * time.Millisecond}, Step{Rate: 10, Duration: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the step took %v", took)
	}
	if res.Requests == 0 || res.StatusCodes["0"] != res.Requests {
		t.Fatalf("requests %d codes %v", res.Requests, res.StatusCodes)
	}
	checkErrors(t, res, "no complete response within 300ms (timeout)")
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
