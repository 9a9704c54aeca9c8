package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// TestAttackRaw runs `proxylab attack --raw` against a real server and reads
// the file back with vegeta's own decoder, as `vegeta report` would.
func TestAttackRaw(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	defer srv.Close()
	raw := filepath.Join(t.TempDir(), "results.bin")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := proxylab(ctx, "attack", srv.URL+"/", "--rate", "200", "--duration", "1s", "--connections", "4", "--raw", raw).CombinedOutput()
	if err != nil {
		t.Fatalf("attack: %v\n%s", err, out)
	}
	for _, want := range []string{"achieved_rate:", "success:       1.0000", "status_codes:  map[200:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.DecoderFor(f)
	if dec == nil {
		t.Fatal("vegeta does not recognise the --raw file")
	}
	var m vegeta.Metrics
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		m.Add(&r)
	}
	m.Close()
	if m.Requests < 100 || m.Success != 1 || m.BytesIn.Mean != 5 {
		t.Errorf("raw file: %d requests, success %v, %v bytes in per request", m.Requests, m.Success, m.BytesIn.Mean)
	}
}

// TestAttackRunsAsBatch looks at the threads of a running `proxylab attack`:
// every one is SCHED_BATCH, so that on a core it shares with its target it
// does not preempt the target whenever an answer wakes it.
func TestAttackRunsAsBatch(t *testing.T) {
	sending := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case sending <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := proxylab(ctx, "attack", srv.URL+"/", "--rate", "100", "--duration", "3s", "--connections", "2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { <-exited }()
	defer cmd.Process.Kill()
	select {
	case <-sending:
	case err := <-exited:
		exited <- err
		t.Fatalf("attack ended before it sent a request: %v", err)
	}
	dir := fmt.Sprintf("/proc/%d/task", cmd.Process.Pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tasks {
		stat, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			continue // the thread has exited since
		}
		// policy is field 41; the fields after the command's ")" start at 3.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if policy := fields[41-3]; policy != "3" {
			t.Errorf("thread %s has scheduling policy %s, want 3 (SCHED_BATCH)", e.Name(), policy)
		}
	}
}

func TestAttackRefuses(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"not loopback", []string{"http://10.1.2.3/"}, "outside 127.0.0.0/8"},
		{"bad header", []string{"http://127.0.0.1:1/", "--header", "NoColon"}, `--header "NoColon"`},
		{"negative body", []string{"http://127.0.0.1:1/", "--body-bytes", "-1"}, "--body-bytes must be >= 0"},
		{"negative rate", []string{"http://127.0.0.1:1/", "--rate", "-1"}, "rate must be in 0.."},
		{"raw in a missing folder", []string{"http://127.0.0.1:1/", "--raw", "/nonexistent/dir/x.bin"}, "--raw"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := proxylab(context.Background(), append([]string{"attack"}, tc.args...)...).CombinedOutput()
			var ee interface{ ExitCode() int }
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("err %v, output %q; want exit 2 and %q", err, out, tc.want)
			}
		})
	}
}
