package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// TestRequestWire pins the bytes each kind of target puts on the wire
// against testdata/requests/<name>.http.
func TestRequestWire(t *testing.T) {
	cases := []struct {
		name      string
		target    Target
		keepAlive bool
	}{
		{"get", Target{URL: "http://127.0.0.1:8081/"}, true},
		{"get-no-keepalive", Target{URL: "http://127.0.0.1:8081/"}, false},
		{"query-and-default-port", Target{URL: "http://127.0.0.1/a/b?size=10&delay_ms=2"}, true},
		{"post-body-headers", Target{Method: "POST", URL: "http://127.0.0.1:8081/up", Body: []byte("xxxx"),
			Header: http.Header{"X-B": {"2", "3"}, "Content-Type": {"application/octet-stream"}, "X-A": {"1"}}}, true},
		{"post-empty", Target{Method: "POST", URL: "http://127.0.0.1:8081/"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newRequest(tc.target, tc.keepAlive)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", "requests", tc.name+".http"))
			if err != nil {
				t.Fatal(err)
			}
			// The fixtures keep plain line ends for readability.
			want = bytes.ReplaceAll(want, []byte("\n"), []byte("\r\n"))
			if !bytes.Equal(r.wire, want) {
				t.Errorf("wire:\n%q\nwant\n%q", r.wire, want)
			}
			// What a real server parses must be what the target said.
			got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(r.wire)))
			if err != nil {
				t.Fatal(err)
			}
			if got.Method != tc.target.method() || got.Close == tc.keepAlive {
				t.Errorf("parsed method %s close %v", got.Method, got.Close)
			}
		})
	}
}

func TestRequestRefusesHeaders(t *testing.T) {
	cases := []struct {
		name   string
		header http.Header
		want   string
	}{
		{"host", http.Header{"Host": {"example.com"}}, "set by the load generator"},
		{"content-length", http.Header{"Content-Length": {"3"}}, "set by the load generator"},
		{"connection", http.Header{"Connection": {"close"}}, "set by the load generator"},
		{"bad name", http.Header{"X Y": {"1"}}, "invalid"},
		{"bad value", http.Header{"X-Y": {"a\r\nInjected: 1"}}, "invalid value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Target{URL: "http://127.0.0.1:8081/", Header: tc.header}, Config{Connections: 1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestResponseFraming sends to real servers answering in every framing a
// proxy may use; every response must be read whole and the connection kept
// or dropped as the response says.
func TestResponseFraming(t *testing.T) {
	body := strings.Repeat("b", 3000)
	cases := []struct {
		name    string
		method  string
		handler http.HandlerFunc
		// connections the server may accept for the step's requests
		perRequest bool
	}{
		{name: "content-length", handler: func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }},
		{name: "chunked", handler: func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, body[:1000])
			w.(http.Flusher).Flush()
			io.WriteString(w, body[1000:])
		}},
		{name: "no body", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }},
		{name: "HEAD", method: http.MethodHead, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "3000")
		}},
		{name: "connection close", perRequest: true, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, body)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.handler)
			res, err := Attack(context.Background(), Target{Method: tc.method, URL: srv.URL}, Config{Connections: 2, KeepAlive: true},
				Step{Rate: 100, Duration: time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests == 0 || res.Success != 1 {
				t.Fatalf("requests %d success %v errors %v", res.Requests, res.Success, res.Errors)
			}
			accepted := uint64(srv.accepted.Load())
			if tc.perRequest && accepted != res.Requests {
				t.Errorf("accepted %d connections for %d requests, want one each", accepted, res.Requests)
			}
			if !tc.perRequest && accepted > 2 {
				t.Errorf("accepted %d connections, want at most the 2 slots", accepted)
			}
			checkConsistent(t, res)
		})
	}
}

// TestBodyUntilClose: a response without Content-Length or chunks ends
// where the server closes the connection, and is read whole.
func TestBodyUntilClose(t *testing.T) {
	addr, accepted := serveConns(t, func(c net.Conn) {
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"+strings.Repeat("u", 5000))
		}
	})
	var raw bytes.Buffer
	res, err := Attack(context.Background(), Target{URL: "http://" + addr + "/"}, Config{Connections: 2, KeepAlive: true},
		Step{Rate: 50, Duration: time.Second, Raw: &raw}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Success != 1 || uint64(accepted.Load()) != res.Requests {
		t.Fatalf("requests %d success %v accepted %d errors %v", res.Requests, res.Success, accepted.Load(), res.Errors)
	}
	checkBodyBytes(t, &raw, 5000)
}

// checkBodyBytes decodes a step's raw output and checks that every result
// read want body bytes.
func checkBodyBytes(t *testing.T, raw *bytes.Buffer, want uint64) {
	t.Helper()
	dec := vegeta.NewDecoder(raw)
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			return
		}
		if r.BytesIn != want {
			t.Fatalf("result %d read %d body bytes, want %d", r.Seq, r.BytesIn, want)
		}
	}
}

// TestIdleConnectionClosedByPeer: a keep-alive connection the server drops
// while idle is replaced without the request failing, as net/http does.
func TestIdleConnectionClosedByPeer(t *testing.T) {
	srv := newServer(t, ok, func(s *http.Server) { s.IdleTimeout = 20 * time.Millisecond })
	res, err := Attack(context.Background(), Target{URL: srv.URL}, Config{Connections: 1, KeepAlive: true}, Step{Rate: 10, Duration: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Success != 1 || res.Requests < 5 {
		t.Fatalf("requests %d success %v errors %v", res.Requests, res.Success, res.Errors)
	}
	if srv.accepted.Load() < 2 {
		t.Errorf("accepted %d connection(s): the server never closed one, the test proves nothing", srv.accepted.Load())
	}
}

func TestTimeout(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	res, err := Attack(context.Background(), Target{URL: srv.URL}, Config{Connections: 2, KeepAlive: true, Timeout: 300 * time.Millisecond},
		Step{Rate: 4, Duration: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Success != 0 || res.StatusCodes["0"] != res.Requests {
		t.Fatalf("requests %d success %v codes %v", res.Requests, res.Success, res.StatusCodes)
	}
	checkErrors(t, res, "no complete response within 300ms (timeout)")
	if res.Latency.Min < 300_000 {
		t.Errorf("latency min %d µs: a request was cut before its timeout", res.Latency.Min)
	}
	checkConsistent(t, res)
}

func TestUnpacedStep(t *testing.T) {
	srv := newServer(t, ok)
	res, err := Attack(context.Background(), Target{URL: srv.URL}, Config{Connections: 4, KeepAlive: true}, Step{Rate: 0, Duration: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.TargetRate != 0 || res.LoadgenSaturated || res.Saturation != "" {
		t.Errorf("target_rate %v saturated %v %q, want 0 and no saturation verdict", res.TargetRate, res.LoadgenSaturated, res.Saturation)
	}
	if res.IntendedLatency != nil {
		t.Errorf("latency_intended %+v, want none: unpaced requests go out when they are meant to", *res.IntendedLatency)
	}
	// Even a slow machine answers a loopback request well within 10 ms.
	if res.Requests < 100 || res.Success != 1 {
		t.Errorf("requests %d success %v", res.Requests, res.Success)
	}
	if p := srv.peak.Load(); p > 4 {
		t.Errorf("server saw %d requests at once, want at most the 4 connections", p)
	}
	checkConsistent(t, res)
}

// TestRawIsVegetaEncoding decodes the raw output with vegeta's own decoder,
// as `vegeta report` does, and checks it holds exactly what the step counted.
func TestRawIsVegetaEncoding(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%4 == 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "hello")
	})
	var raw bytes.Buffer
	step := Step{Rate: 200, Duration: time.Second, Raw: &raw}
	res, err := Attack(context.Background(), Target{Method: "POST", URL: srv.URL, Body: []byte("abc")}, Config{Connections: 4, KeepAlive: true}, step, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec := vegeta.DecoderFor(bytes.NewReader(raw.Bytes()))
	if dec == nil {
		t.Fatal("vegeta does not recognise the raw encoding")
	}
	var m vegeta.Metrics
	// vegeta plot needs sequence numbers from 0 up whose timestamps never
	// go back.
	p := plot.New(plot.Title("raw"))
	seen := map[uint64]bool{}
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding result %d: %v", len(seen), err)
		}
		if seen[r.Seq] {
			t.Errorf("seq %d twice", r.Seq)
		}
		seen[r.Seq] = true
		if r.Method != "POST" || r.URL != srv.URL || r.BytesOut != 3 || r.Latency <= 0 || r.Timestamp.IsZero() {
			t.Errorf("result %+v", r)
		}
		if (r.Code == 200) != (r.Error == "") || (r.Code == 200 && r.BytesIn != 5) {
			t.Errorf("result code %d error %q bytes in %d", r.Code, r.Error, r.BytesIn)
		}
		m.Add(&r)
		if err := p.Add(&r); err != nil {
			t.Fatalf("vegeta plot refuses result %d: %v", r.Seq, err)
		}
	}
	m.Close()
	p.Close()
	if _, err := p.WriteTo(io.Discard); err != nil {
		t.Errorf("vegeta plot: %v", err)
	}
	for seq := range uint64(len(seen)) {
		if !seen[seq] {
			t.Errorf("seq %d missing", seq)
		}
	}
	if m.Requests != res.Requests || len(seen) != int(res.Requests) {
		t.Fatalf("raw holds %d results, the step counted %d", m.Requests, res.Requests)
	}
	for code, n := range res.StatusCodes {
		if uint64(m.StatusCodes[code]) != n {
			t.Errorf("status %s: raw %d, step %d", code, m.StatusCodes[code], n)
		}
	}
	if m.Success != res.Success || res.StatusCodes["503"] == 0 {
		t.Errorf("success raw %v step %v (codes %v)", m.Success, res.Success, res.StatusCodes)
	}
	if m.Latencies.Max.Microseconds() != res.Latency.Max {
		t.Errorf("max latency raw %v, step %d µs", m.Latencies.Max, res.Latency.Max)
	}
}

// TestRawWriteError: a raw output that fails loses nothing the step measured.
func TestRawWriteError(t *testing.T) {
	srv := newServer(t, ok)
	step := Step{Rate: 100, Duration: 500 * time.Millisecond, Raw: failingWriter{}}
	res, err := Attack(context.Background(), Target{URL: srv.URL}, Config{Connections: 2, KeepAlive: true}, step, nil)
	if err == nil || !strings.Contains(err.Error(), "raw results") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the raw write error", err)
	}
	if res == nil || res.Requests == 0 || res.Success != 1 {
		t.Fatalf("result %+v, want the measured step", res)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
