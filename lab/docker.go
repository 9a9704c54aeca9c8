package lab

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/client"
)

// Engine is the lab's handle on the Docker daemon. It is the only place in
// proxylab that talks to Docker.
type Engine struct {
	cli     *client.Client
	Version string // server version, e.g. 20.10.24
	API     string // negotiated API version
	// Endpoint is where the engine answers (unix:///var/run/docker.sock,
	// tcp://host:2376).
	Endpoint string
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
	return answer(ctx, cli, "start one with: sudo scripts/setup.sh   (or: make setup)")
}

// ConnectTo connects to the engine at endpoint, a system under test's own
// host: unix:// or tcp:// (TLS from DOCKER_CERT_PATH and DOCKER_TLS_VERIFY,
// as the docker CLI reads them).
func ConnectTo(ctx context.Context, endpoint string) (*Engine, error) {
	if strings.HasPrefix(endpoint, "ssh://") {
		return nil, fmt.Errorf("engine %s: ssh:// endpoints are not supported; forward the engine's socket and name that instead:\n  ssh -nNT -L /tmp/sut-docker.sock:/var/run/docker.sock %s &\n  proxylab compare --sut unix:///tmp/sut-docker.sock --sut-address ADDR",
			endpoint, strings.TrimPrefix(endpoint, "ssh://"))
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHost(endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("engine %s: %w", endpoint, err)
	}
	return answer(ctx, cli, "check that the engine runs there and that this host may reach it (scripts/setup.sh --remote-test starts the lab's own test host)")
}

// answer asks the engine for its version, because Debian's engine can be
// several releases older than the client library and the API version has to
// be negotiated; hint says what to do when it does not answer.
func answer(ctx context.Context, cli *client.Client, hint string) (*Engine, error) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(pctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w at %s (%v)\n  %s", ErrNoDocker, cli.DaemonHost(), err, hint)
	}
	return &Engine{cli: cli, Version: v.Version, API: cli.ClientVersion(), Endpoint: cli.DaemonHost()}, nil
}

// EngineHost is what an engine says about the machine it runs on.
type EngineHost struct {
	Name         string // the engine host's name
	Architecture string // x86_64, aarch64, ...
	OS           string
	Kernel       string
	CPUs         int
	MemoryBytes  int64
}

// Host asks the engine about its machine.
func (e *Engine) Host(ctx context.Context) (EngineHost, error) {
	info, err := e.cli.Info(ctx)
	if err != nil {
		return EngineHost{}, fmt.Errorf("engine %s: info: %w", e.Endpoint, err)
	}
	return EngineHost{Name: info.Name, Architecture: info.Architecture, OS: info.OperatingSystem,
		Kernel: info.KernelVersion, CPUs: info.NCPU, MemoryBytes: info.MemTotal}, nil
}

// Close releases the client's connections.
func (e *Engine) Close() error { return e.cli.Close() }
