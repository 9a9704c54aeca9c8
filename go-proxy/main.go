// Command go-proxy is the lab's HTTP/1.1 reverse proxy written in Go on top
// of fasthttp. It forwards every request to one upstream over pooled
// keep-alive connections and behaves as the proxy contract in DESIGN.md
// requires.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// run returns the process exit code: 2 for bad configuration, 1 for a
// failure while serving, 0 after a graceful shutdown.
func run(args []string, getenv func(string) string, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "go-proxy: takes no arguments; configure it with environment variables")
		return 2
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "go-proxy: %v\n", err)
		return 2
	}
	// Without WORKERS the runtime's own choice stands: it already follows
	// the CPU affinity mask and the cgroup CPU limit.
	if cfg.workers > 0 {
		runtime.GOMAXPROCS(cfg.workers)
	}
	ln, err := net.Listen("tcp", cfg.listenAddr)
	if err != nil {
		fmt.Fprintf(stderr, "go-proxy: %v\n", err)
		return 1
	}
	// The bound address is printed, not the configured one, so that a
	// caller asking for port 0 learns which port it got.
	fmt.Fprintf(stderr, "proxylab-go-proxy %s %s listen=%s upstream=%s workers=%d\n",
		version, runtime.Version(), ln.Addr(), cfg.upstreamAddr, runtime.GOMAXPROCS(0))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, ln, cfg); err != nil {
		fmt.Fprintf(stderr, "go-proxy: %v\n", err)
		return 1
	}
	return 0
}
