// Command upstream is the origin server every proxy in the lab forwards to.
// It answers any path with a deterministic body whose size, delay, status and
// framing can be chosen per request, echoes what it received at /echo, and
// reports how many connections it accepted at /stats.
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
		fmt.Fprintln(stderr, "upstream: takes no arguments; configure it with LISTEN_ADDR and RESPONSE_BYTES")
		return 2
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "upstream: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", cfg.listenAddr)
	if err != nil {
		fmt.Fprintf(stderr, "upstream: %v\n", err)
		return 1
	}
	// The bound address is printed, not the configured one, so that a
	// caller asking for port 0 learns which port it got.
	fmt.Fprintf(stderr, "proxylab-upstream %s %s listen=%s response_bytes=%d\n",
		version, runtime.Version(), ln.Addr(), cfg.responseBytes)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, ln, cfg); err != nil {
		fmt.Fprintf(stderr, "upstream: %v\n", err)
		return 1
	}
	return 0
}
