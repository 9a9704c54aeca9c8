package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Launcher starts the containers a run measures. *Engine is the one a
// comparison uses; the run logic needs no more than this, so that it can be
// exercised with stand-ins that are not containers. (conformance.Launcher
// is the suite's own, narrower notion: a proxy process and its signals.)
type Launcher interface {
	Launch(ctx context.Context, s ContainerSpec) (Running, error)
}

// Running is what a run uses of a started container.
type Running interface {
	// WaitHTTP returns once url answers 200, and fails when the container
	// exits first or timeout passes.
	WaitHTTP(ctx context.Context, url string, timeout time.Duration) error
	// Died yields a description of the exit when the process ends before
	// ctx does.
	Died(ctx context.Context) <-chan string
	// Usage is the CPU time and peak resident set of its processes so far.
	Usage() (Usage, error)
	// Pids lists its processes, the main one first.
	Pids() []int
	// Logs are the last n lines it wrote.
	Logs(ctx context.Context, n int) []string
	// Remove kills and deletes it, also when ctx is already cancelled.
	Remove(ctx context.Context) error
}

var (
	_ Launcher = (*Engine)(nil)
	_ Running  = (*Container)(nil)
)

// Launch is Start as a Launcher.
func (e *Engine) Launch(ctx context.Context, s ContainerSpec) (Running, error) {
	c, err := e.Start(ctx, s)
	if err != nil {
		return nil, err // a nil *Container would make a non-nil Running
	}
	return c, nil
}

// readyTimeout bounds how long a started component may take to answer its
// first request.
const readyTimeout = 20 * time.Second

// waitHTTP polls url until it answers 200, exited reports that the process
// has ended, or timeout passes. Readiness is judged through the real
// request path, not by an open port, because a proxy can listen before it
// can forward.
func waitHTTP(ctx context.Context, name, url string, timeout time.Duration, exited func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	// The poll's idle connection would otherwise stay open in the
	// component for the whole measurement.
	defer client.CloseIdleConnections()
	var last string
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if done, why := exited(); done {
			return fmt.Errorf("%s %s before it became ready", name, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s: GET %s: %s", name, timeout, url, last)
}
