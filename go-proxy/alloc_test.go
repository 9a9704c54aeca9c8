package main

import (
	"bufio"
	"bytes"
	"net"
	"runtime"
	"testing"
)

// TestKeepAliveAllocations checks that a plain request on a keep-alive
// connection allocates nothing in the proxy: the client and upstream here
// allocate nothing per request either, so the process-wide count is the
// proxy's.
func TestKeepAliveAllocations(t *testing.T) {
	answer := []byte(okAnswer)
	up := scripted(t, func(_ *scriptedUpstream, _ int, c net.Conn, _ *bufio.Reader) {
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			if bytes.HasSuffix(b[:n], []byte("\r\n\r\n")) {
				c.Write(answer)
			}
		}
	})
	c := dial(t, startProxy(t, up.addr, nil))
	req := []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	buf := make([]byte, 4096)
	one := func() {
		if _, err := c.conn.Write(req); err != nil {
			t.Fatal(err)
		}
		for n := 0; !bytes.HasSuffix(buf[:n], []byte("\r\n\r\nok")); {
			k, err := c.conn.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += k
		}
	}
	for range 200 { // warms the pools
		one()
	}
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		one()
	}
	runtime.ReadMemStats(&after)
	if per := float64(after.Mallocs-before.Mallocs) / n; per > 0.2 {
		t.Fatalf("%.2f allocations per request", per)
	}
}
