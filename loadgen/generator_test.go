package loadgen

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestGeneratorConnections(t *testing.T) {
	cases := []struct {
		name   string
		config Config
		// check gets the connections the server accepted during warm-up and
		// during the step.
		check func(t *testing.T, warm, step int64, res *StepResult)
	}{
		{
			name:   "keep-alive: the warm connection serves the step",
			config: Config{Connections: 1, KeepAlive: true},
			check: func(t *testing.T, warm, step int64, _ *StepResult) {
				if warm != 1 || step != 0 {
					t.Errorf("accepted %d connections in warm-up and %d in the step, want 1 and 0", warm, step)
				}
			},
		},
		{
			name:   "no keep-alive: one connection per request",
			config: Config{Connections: 4, KeepAlive: false},
			check: func(t *testing.T, _, step int64, res *StepResult) {
				if step != int64(res.Requests) {
					t.Errorf("accepted %d connections for %d requests", step, res.Requests)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, ok)
			g, err := New(Target{URL: srv.URL}, tc.config)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			ctx := context.Background()
			if err := g.Warmup(ctx, Step{Rate: 50, Duration: 500 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			warm := srv.accepted.Load()
			if g.Dials() != uint64(warm) {
				t.Errorf("warm-up: %d dials counted, the server accepted %d", g.Dials(), warm)
			}
			res, err := g.Attack(ctx, Step{Rate: 50, Duration: time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Success != 1 {
				t.Fatalf("success = %v, status codes %v", res.Success, res.StatusCodes)
			}
			tc.check(t, warm, srv.accepted.Load()-warm, res)
			// The count the lab checks the proxy's accepts against.
			if d, a := g.Dials(), srv.accepted.Load(); d != uint64(a) {
				t.Errorf("%d dials counted, the server accepted %d", d, a)
			}
		})
	}
}

func TestGeneratorOneStepAtATime(t *testing.T) {
	started := make(chan struct{}, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case started <- struct{}{}:
		default:
		}
		ok(w, r)
	})
	g, err := New(Target{URL: srv.URL}, Config{Connections: 2, KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Warmup(ctx, Step{Rate: 50, Duration: 10 * time.Second}) }()
	<-started

	if _, err := g.Attack(context.Background(), Step{Rate: 10, Duration: time.Second}, nil); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second concurrent step: err = %v, want already running", err)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("cancelled warm-up: err = %v, want context.Canceled", err)
	}

	g.Close()
	if _, err := g.Attack(context.Background(), Step{Rate: 10, Duration: time.Second}, nil); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("step after Close: err = %v, want closed", err)
	}
}

func TestNewRefuses(t *testing.T) {
	good := Config{Connections: 1}
	cases := []struct {
		name    string
		target  Target
		config  Config
		wantErr string
	}{
		{"private address", Target{URL: "http://10.0.0.1:8081/"}, good, "outside 127.0.0.0/8"},
		{"public address", Target{URL: "http://8.8.8.8/"}, good, "outside 127.0.0.0/8"},
		{"IPv6 loopback", Target{URL: "http://[::1]:8081/"}, good, "outside 127.0.0.0/8"},
		{"mapped non-loopback", Target{URL: "http://[::ffff:10.0.0.1]:8081/"}, good, "outside 127.0.0.0/8"},
		{"host name", Target{URL: "http://localhost:8081/"}, good, "not an IP address"},
		{"https", Target{URL: "https://127.0.0.1:8081/"}, good, "scheme must be http"},
		{"no scheme", Target{URL: "127.0.0.1:8081"}, good, "target URL"},
		{"bad method", Target{Method: "GE T", URL: "http://127.0.0.1:8081/"}, good, "method"},
		{"no connections", Target{URL: "http://127.0.0.1:8081/"}, Config{}, "connections must be > 0"},
		{"negative timeout", Target{URL: "http://127.0.0.1:8081/"}, Config{Connections: 1, Timeout: -time.Second}, "timeout must be >= 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.target, tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New: err = %v, want one containing %q", err, tc.wantErr)
			}
			if g != nil {
				t.Error("New returned a generator with its error")
			}
			// The one-shot helpers must refuse before sending anything.
			res, err := Attack(context.Background(), tc.target, tc.config, Step{Rate: 10, Duration: time.Second}, nil)
			if err == nil || res != nil {
				t.Errorf("Attack: result %v, err %v; want only an error", res, err)
			}
			if err := Warmup(context.Background(), tc.target, tc.config, Step{Rate: 10, Duration: time.Second}); err == nil {
				t.Error("Warmup: no error")
			}
		})
	}
}

func TestNewAcceptsAllOfLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8081/", "http://127.1.2.3/", "http://[::ffff:127.0.0.1]:9/"} {
		g, err := New(Target{URL: u}, Config{Connections: 1})
		if err != nil {
			t.Errorf("New(%s): %v", u, err)
			continue
		}
		g.Close()
	}
}

func TestStepRefused(t *testing.T) {
	g, err := New(Target{URL: refusedURL(t)}, Config{Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cases := []struct {
		name    string
		step    Step
		wantErr string
	}{
		{"negative rate", Step{Rate: -5, Duration: time.Second}, "rate"},
		{"rate beyond the pacer's resolution", Step{Rate: MaxRate + 1, Duration: time.Second}, "rate"},
		{"zero duration", Step{Rate: 10}, "duration"},
		{"negative duration", Step{Rate: 10, Duration: -time.Second}, "duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := g.Attack(context.Background(), tc.step, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || res != nil {
				t.Errorf("Attack: result %v, err %v; want only an error about %s", res, err, tc.wantErr)
			}
			if err := g.Warmup(context.Background(), tc.step); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Warmup: err = %v, want one about %s", err, tc.wantErr)
			}
		})
	}
}

func TestGuardDial(t *testing.T) {
	cases := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8081", true},
		{"127.255.255.254:1", true},
		{"[::ffff:127.0.0.1]:80", true},
		{"10.0.0.1:80", false},
		{"192.168.0.10:8081", false},
		{"[::1]:80", false},
		{"[2001:db8::1]:80", false},
		{"not-an-address", false},
	}
	for _, tc := range cases {
		err := guardDial(context.Background(), "tcp", tc.addr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("guardDial(%s) = %v, want allowed %v", tc.addr, err, tc.ok)
		}
	}
}
