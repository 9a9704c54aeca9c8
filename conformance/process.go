package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Process launches a proxy binary as a host process: the fast way, and the
// one the lab uses to verify the exact binary it packs into an image.
type Process struct {
	Binary string
}

// Start runs the binary with cfg as its environment.
func (p Process) Start(ctx context.Context, cfg ProxyConfig) (Instance, error) {
	return startProcess(ctx, p.Binary, cfg.Listen, cfg.Env())
}

// StartTimeout bounds how long a proxy may take to listen.
const StartTimeout = 15 * time.Second

type process struct {
	cmd  *exec.Cmd
	addr string
	out  *syncBuffer
	done chan struct{}
	err  error // of cmd.Wait, valid after done
}

func startProcess(ctx context.Context, binary, addr string, env []string) (*process, error) {
	cmd := exec.Command(binary)
	// Only the contract's variables: nothing from the test's own
	// environment may change the proxy's behaviour.
	cmd.Env = env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	p := &process{cmd: cmd, addr: addr, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := waitListening(ctx, addr, p.done); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s: %w; output:\n%s", binary, err, out.String())
	}
	return p, nil
}

// waitListening polls addr until it accepts a connection, the process exits
// (done closes) or StartTimeout passes.
func waitListening(ctx context.Context, addr string, done <-chan struct{}) error {
	deadline := time.Now().Add(StartTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return errors.New("exited before listening")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %s", addr, StartTimeout)
		}
	}
}

func (p *process) Addr() string               { return p.addr }
func (p *process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }
func (p *process) Output() string             { return p.out.String() }

func (p *process) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		return -1, p.err
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

func (p *process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
	return nil
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
