package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shortWriteProgress stands in for the contract's 30 s, so that a stall
// is seen within a second.
const shortWriteProgress = 300 * time.Millisecond

func shortenWriteProgress(cfg *config) { cfg.clientWriteProgress = shortWriteProgress }

// endlessAnswer reads one request (its chunked body too) and answers a
// chunked body that never ends; it reports when a write of it fails, which
// happens once the proxy has given up the exchange and closed the
// connection. Its own write deadline only ends a test whose proxy never
// gives up.
func endlessAnswer(failed chan<- time.Time) upstreamConnScript {
	return func(s *scriptedUpstream, _ int, c net.Conn, br *bufio.Reader) {
		head, ok := s.readHead(br)
		if !ok {
			return
		}
		if strings.Contains(head, "Transfer-Encoding: chunked") {
			if _, ok := readReframed(br); !ok {
				return
			}
		}
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := []byte(fmt.Sprintf("%x\r\n%s\r\n", 1<<16, strings.Repeat("z", 1<<16)))
		for {
			if _, err := c.Write(chunk); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					failed <- time.Time{}
				} else {
					failed <- time.Now()
				}
				return
			}
		}
	}
}

// TestClientWriteStall: a client that reads nothing of its response has
// its connection closed once a write to it has made no progress for the
// limit, on each path a response takes to the client.
func TestClientWriteStall(t *testing.T) {
	cases := []struct{ name, request string }{
		{"streamed by fasthttp", "GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"taken connection", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
		{"close-delimited to HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			failed := make(chan time.Time, 1)
			up := scripted(t, endlessAnswer(failed))
			c := dial(t, startProxy(t, up.addr, shortenWriteProgress))
			sent := time.Now()
			c.send(tc.request)
			at := <-failed
			if at.IsZero() {
				t.Fatal("the proxy kept the exchange of a client that reads nothing for 20 s")
			}
			// The stall starts once the socket buffers are full, a moment
			// after the request; it is cut at most a window and a quarter
			// after the limit.
			if d := at.Sub(sent); d < shortWriteProgress || d > shortWriteProgress+2*time.Second {
				t.Fatalf("the exchange ended %v after the request, want about %v", d, shortWriteProgress)
			}
			c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, c.conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the client connection was not closed: %v", err)
			}
		})
	}
}

// TestClientWriteSlowReader: a client that keeps reading, slowly or with
// pauses longer than a deadline window but shorter than the limit, gets
// the whole body, though the transfer lasts several times the limit. The
// proxy's send buffer and the client's receive buffer are kept small, so
// that the proxy's writes do wait for the client's reads (on loopback the
// kernel would otherwise buffer megabytes).
func TestClientWriteSlowReader(t *testing.T) {
	cases := []struct {
		name      string
		bodyBytes int
		step      int // bytes read between pauses
		pause     time.Duration
	}{
		{"pauses", 256 << 10, 32 << 10, 150 * time.Millisecond},
		{"steady", 512 << 10, 4 << 10, 10 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := strings.Repeat("abcdefghijklmnopqrstuvwxyz", tc.bodyBytes/26+1)[:tc.bodyBytes]
			up := scripted(t, answerEach(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)))
			conn := dialSmallReceiveBuffer(t, startProxySmallSendBuffer(t, up.addr))
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			br := bufio.NewReaderSize(&throttled{r: conn, step: tc.step, pause: tc.pause}, tc.step)
			resp, err := readHTTP(br)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil || string(got) != body {
				t.Fatalf("read %d of %d body bytes: %v", len(got), len(body), err)
			}
			if d := time.Since(start); d < 2*shortWriteProgress {
				t.Fatalf("the transfer took %v, too short to show anything against a limit of %v", d, shortWriteProgress)
			}
		})
	}
}

// startProxySmallSendBuffer runs the proxy with the short write progress
// limit and a send buffer of 16 KiB on every client connection.
func startProxySmallSendBuffer(t *testing.T, upstream string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	cfg.upstreamAddr = upstream
	shortenWriteProgress(&cfg)
	return serveOn(t, smallSendBuffers{ln}, cfg)
}

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := c.(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// dialSmallReceiveBuffer connects with a receive buffer of 16 KiB, set
// before the handshake so that the window stays small: the proxy's writes
// block on this client within a few tens of KiB.
func dialSmallReceiveBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Only turns a hang into a failure.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// throttled reads at most step bytes at a time and pauses after each read.
type throttled struct {
	r     io.Reader
	step  int
	pause time.Duration
}

func (t *throttled) Read(p []byte) (int, error) {
	if len(p) > t.step {
		p = p[:t.step]
	}
	n, err := t.r.Read(p)
	time.Sleep(t.pause)
	return n, err
}

// TestProgressConnWrite: one write the client takes a little at a time
// goes on for as long as it makes progress, even far past the limit, and
// fails once nothing has moved for the limit.
func TestProgressConnWrite(t *testing.T) {
	const size = 32 << 10
	cases := []struct {
		name    string
		readFor int // bytes the client reads, 512 at a time, 10 ms apart
		wantErr bool
	}{
		{"trickle", size, false},
		{"stop", 8 << 10, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			server, client := net.Pipe()
			t.Cleanup(func() { server.Close(); client.Close() })
			c := &progressConn{Conn: server, window: shortWriteProgress / writeWindows, limit: shortWriteProgress}
			lastRead := make(chan time.Time, 1)
			go func() {
				buf := make([]byte, 512)
				for n := 0; n < tc.readFor; {
					time.Sleep(10 * time.Millisecond)
					k, err := client.Read(buf)
					if err != nil {
						break
					}
					n += k
				}
				lastRead <- time.Now()
			}()
			start := time.Now()
			n, err := c.Write(make([]byte, size))
			returned := time.Now()
			server.Close() // ends the reader, should the write have failed early
			last := <-lastRead
			if tc.wantErr {
				stall := returned.Sub(last)
				if !errors.Is(err, os.ErrDeadlineExceeded) || n != tc.readFor {
					t.Fatalf("wrote %d bytes, err %v; want %d and a deadline error", n, err, tc.readFor)
				}
				// A window and a quarter late at most, plus scheduling
				// delays on a busy machine.
				if stall < shortWriteProgress || stall > shortWriteProgress+time.Second {
					t.Fatalf("the write failed %v after the last read, want about %v", stall, shortWriteProgress)
				}
				return
			}
			if err != nil || n != size {
				t.Fatalf("wrote %d of %d bytes: %v", n, size, err)
			}
			if d := returned.Sub(start); d < 2*shortWriteProgress {
				t.Fatalf("the write took %v, too short to show anything against a limit of %v", d, shortWriteProgress)
			}
		})
	}
}
