package loadgen

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// server is a real HTTP server on 127.0.0.1 that counts what it sees.
type server struct {
	URL      string
	accepted atomic.Int64 // TCP connections accepted
	inFlight atomic.Int64
	peak     atomic.Int64 // most requests handled at once
}

func newServer(t *testing.T, h http.HandlerFunc, configure ...func(*http.Server)) *server {
	t.Helper()
	s := &server{}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
		}
		h(w, r)
	}))
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.accepted.Add(1)
		}
	}
	for _, f := range configure {
		f(ts.Config)
	}
	ts.Start()
	t.Cleanup(ts.Close)
	s.URL = ts.URL + "/"
	return s
}

func ok(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("hello")) }

// refusedURL names a loopback port nobody listens on. It lives on 127.0.0.2
// because Linux connects from 127.0.0.1: on 127.0.0.1 a connect could now and
// then pick the target port as its own source port and reach itself.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}

// serveConns accepts connections on a free loopback port until the test
// ends, counts them and hands each to serve in a goroutine of its own: a
// server that writes exact bytes, for what net/http would not send.
func serveConns(t *testing.T, serve func(net.Conn)) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go serve(c)
		}
	}()
	return ln.Addr().String(), accepted
}
