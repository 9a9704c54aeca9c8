package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/proxylab/proxylab/conformance"
)

// Verification is the conformance result recorded with a proxy's numbers.
type Verification struct {
	Skipped bool     `json:"skipped"`          // the suite did not run: --skip-verify, or a baseline
	Reason  string   `json:"reason,omitempty"` // why it was skipped
	Passed  bool     `json:"passed"`
	Cases   int      `json:"cases"`
	Failed  []string `json:"failed"`
	Seconds float64  `json:"seconds"`
}

// Verify runs the conformance suite against a built proxy binary, as a host
// process: the binary is byte for byte the one in the image, and a process
// needs no fixed ports, so verification cannot collide with a measurement.
func Verify(ctx context.Context, proxy, upstream *Artifact) (*conformance.Report, error) {
	return conformance.Run(ctx, conformance.Suite{
		Name:     proxy.Name,
		Proxy:    conformance.Process{Binary: proxy.BinaryPath},
		Upstream: upstream.BinaryPath,
	})
}

// Launcher starts the artifact's image as a conformance.Launcher, so the
// suite can check the container exactly as the lab runs it.
func (e *Engine) Launcher(a *Artifact, runID string) conformance.Launcher {
	return &containerLauncher{e: e, a: a, runID: runID}
}

type containerLauncher struct {
	e     *Engine
	a     *Artifact
	runID string
	seq   atomic.Int64
}

func (l *containerLauncher) Start(ctx context.Context, cfg conformance.ProxyConfig) (conformance.Instance, error) {
	name := fmt.Sprintf("proxylab-%s-verify-%s-%d", l.runID, l.a.Name, l.seq.Add(1))
	c, err := l.e.Start(ctx, ContainerSpec{Artifact: l.a, RunID: l.runID, Name: name, Env: cfg.Env()})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(conformance.StartTimeout)
	for {
		conn, err := net.DialTimeout("tcp", cfg.Listen, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return &containerInstance{c: c, addr: cfg.Listen}, nil
		}
		if done, why := c.Exited(ctx); done || time.Now().After(deadline) || ctx.Err() != nil {
			logs := strings.Join(c.Logs(ctx, 20), "\n")
			c.Remove(ctx)
			if why == "" {
				why = "not listening after " + conformance.StartTimeout.String()
			}
			return nil, fmt.Errorf("%s %s; logs:\n%s", name, why, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type containerInstance struct {
	c    *Container
	addr string
}

func (i *containerInstance) Addr() string { return i.addr }

func (i *containerInstance) Signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("signal %v cannot be sent to a container", sig)
	}
	return i.c.e.cli.ContainerKill(context.Background(), i.c.ID, unix.SignalName(s))
}

func (i *containerInstance) Wait(ctx context.Context) (int, error) {
	waitC, errC := i.c.e.cli.ContainerWait(ctx, i.c.ID, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		return int(w.StatusCode), nil
	case err := <-errC:
		return -1, err
	}
}

func (i *containerInstance) Output() string {
	return strings.Join(i.c.Logs(context.Background(), 1000), "\n")
}

func (i *containerInstance) Stop() error { return i.c.Remove(context.Background()) }
