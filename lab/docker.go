package lab

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/client"
)

// Engine is the lab's handle on the Docker daemon. It is the only place in
// proxylab that talks to Docker.
type Engine struct {
	cli     *client.Client
	Version string // server version, e.g. 20.10.24
	API     string // negotiated API version
}

// ErrNoDocker is wrapped by Connect's error when no engine answers, so the
// CLI can tell the user how to start one.
var ErrNoDocker = errors.New("no Docker engine answers")

// Connect reads DOCKER_HOST and friends from the environment and negotiates
// the API version, because Debian's engine can be several releases older
// than the client library.
func Connect(ctx context.Context) (*Engine, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(pctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w at %s (%v)\n  start one with: sudo scripts/setup.sh   (or: make setup)", ErrNoDocker, cli.DaemonHost(), err)
	}
	return &Engine{cli: cli, Version: v.Version, API: cli.ClientVersion()}, nil
}

// Close releases the client's connections.
func (e *Engine) Close() error { return e.cli.Close() }
