package main

import (
	"io"
	"strconv"
	"testing"
)

// TestReusesUpstreamConnections sends requests one after another and checks
// on the upstream's /stats that they all shared one upstream connection,
// whatever the client side does with its own connections.
func TestReusesUpstreamConnections(t *testing.T) {
	cases := []struct {
		name       string
		request    string
		perRequest bool // a new client connection for every request
	}{
		{"keep-alive client", "GET /?size=100 HTTP/1.1\r\nHost: origin\r\n\r\n", false},
		{"client closing each time", "GET /?size=100 HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n", true},
		{"HTTP/1.0 client", "GET /?size=100 HTTP/1.0\r\n\r\n", true},
		{"bodies both ways", "POST /?size=100 HTTP/1.1\r\nHost: origin\r\nContent-Length: 5\r\n\r\nhello", false},
		{"chunked from upstream", "GET /?size=100&chunked=1 HTTP/1.1\r\nHost: origin\r\n\r\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			upstream := startUpstream(t)
			proxy := startProxy(t, upstream, nil)
			stats := dial(t, upstream)
			before := upstreamAccepted(t, stats)

			var c *client
			for i := range 50 {
				if c == nil || tc.perRequest {
					c = dial(t, proxy)
				}
				resp, body := c.do(tc.request, "GET")
				if resp.StatusCode != 200 || len(body) != 100 {
					t.Fatalf("request %d: status %d, %d bytes", i, resp.StatusCode, len(body))
				}
			}
			if got := upstreamAccepted(t, stats) - before; got != 1 {
				t.Fatalf("50 sequential requests opened %d upstream connections, want 1", got)
			}
		})
	}
}

// TestConcurrentRequestsReuse runs rounds of concurrent requests: the pool
// may grow to the concurrency, but not with the number of rounds.
func TestConcurrentRequestsReuse(t *testing.T) {
	const workers, rounds = 8, 10
	upstream := startUpstream(t)
	proxy := startProxy(t, upstream, nil)
	stats := dial(t, upstream)
	before := upstreamAccepted(t, stats)

	clients := make([]*client, workers)
	for i := range clients {
		clients[i] = dial(t, proxy)
	}
	for round := range rounds {
		errs := make(chan error, workers)
		for i, c := range clients {
			go func() {
				target := "/echo?round=" + strconv.Itoa(round) + "&worker=" + strconv.Itoa(i)
				_, err := io.WriteString(c.conn, "GET "+target+" HTTP/1.1\r\nHost: origin\r\n\r\n")
				errs <- err
			}()
		}
		for range workers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range clients {
			got := c.echo("", "GET")
			if want := "/echo?round=" + strconv.Itoa(round) + "&worker=" + strconv.Itoa(i); got.Target != want {
				t.Fatalf("client %d got the answer for %s, want %s", i, got.Target, want)
			}
		}
	}
	if got := upstreamAccepted(t, stats) - before; got > workers {
		t.Fatalf("%d rounds of %d concurrent requests opened %d upstream connections, want at most %d",
			rounds, workers, got, workers)
	}
}
