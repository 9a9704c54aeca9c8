// Command proxylab builds the lab's proxies, drives them with the load a
// scenario file describes, and writes what it measured as a results file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/lab"
)

// version is set at link time by the Makefile.
var version = "dev"

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\nproxylab: %s received: stopping; a run removes its containers and keeps what it measured (again to force quit)\n", s)
		cancel(fmt.Errorf("interrupted by %s", signalName(s)))
		<-sigs
		fmt.Fprintln(os.Stderr, "proxylab: forced quit; run `proxylab cleanup` to remove leftover containers")
		os.Exit(130)
	}()

	err := newRoot().ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "proxylab:", err)
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case context.Cause(ctx) != nil:
		os.Exit(130)
	default:
		os.Exit(1)
	}
}

type globals struct {
	root string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "proxylab",
		Short: "Compare equivalent HTTP reverse proxies in Go, Rust and Zig on one Linux host",
		Long: `proxylab builds equivalent HTTP reverse proxies, packs each into a FROM scratch
container, drives them with the load YAML scenario files describe, and
writes what it measured to results/<scenario>-<UTC time>.json.

Start with:
  proxylab compare --report             the default run: capacity, latency at shares of it, churn
  proxylab compare scenarios/smoke.yaml a short run (under a minute per proxy)
  proxylab validate scenarios/*.yaml    check scenario files without running them
  proxylab verify                       check every proxy against the proxy contract
  proxylab probes                       which eBPF attach modes work on this host
  proxylab report results/FILE.json...  report.md and plots for results files
  proxylab claims CLAIMS.yaml FILE.json... published claims judged against results

It needs a Docker engine on this host (scripts/setup.sh starts one) and sends
traffic only to 127.0.0.1.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.root, "root", "", "proxylab checkout to build from (default: found from the current folder)")
	root.AddCommand(newCompare(g), newValidate(), newVerify(g), newBuild(g), newProbes(), newCleanup(), newReport(), newClaims(), newAttack(), newNginxConfig(), newAgent())
	return root
}

func (g *globals) repoRoot() (string, error) {
	if g.root != "" {
		return lab.FindRoot(g.root)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return lab.FindRoot(wd)
}

// toolVersion is the version stamped into binaries and results: the link-
// time version, or for a development build the checkout's commit.
func toolVersion(root string) string {
	if version != "dev" {
		return version
	}
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return version
	}
	return "dev-" + strings.TrimSpace(string(out))
}

func connect(ctx context.Context) (*lab.Engine, error) { return connectSUT(ctx, "") }

// connectSUT connects to the engine at endpoint, or to this host's (from
// DOCKER_HOST and friends) when it is "".
func connectSUT(ctx context.Context, endpoint string) (*lab.Engine, error) {
	connect := lab.Connect
	if endpoint != "" {
		connect = func(ctx context.Context) (*lab.Engine, error) { return lab.ConnectTo(ctx, endpoint) }
	}
	e, err := connect(ctx)
	if err != nil {
		return nil, exitError{code: 3, err: err}
	}
	return e, nil
}

// signalName gives the name users know from kill(1).
func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}
