package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/bpf"
	"github.com/proxylab/proxylab/lab"
)

func newAgent() *cobra.Command {
	var (
		listen string
		probes bool
		mode   string
		pages  int
		events string
		cpus   string
		idle   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agent --listen ADDR:PORT",
		Short: "Serve a SUT host's CPU readings and eBPF probes to the lab (started by compare --sut)",
		Long: `agent is the lab's reader on a SUT host, the Docker engine the upstream and the
proxies run on when it is not this host's. ` + "`proxylab compare --sut ...`" + ` starts it there,
as this binary in a scratch image with the host's PID namespace and network
(and, when the scenario enables probes, the capabilities they need, as far
as that engine grants them), and removes it at the end of the run:
a user does not normally run it by hand.

It serves over HTTP on --listen what a single-host run reads itself: the host's
description and boot id, /proc/stat, the CPU time of chosen process trees and
of every other process on chosen CPUs, and, with --probes, the eBPF probes'
counts of the processes the lab asks it to watch (--mode, --perf-buffer-pages,
--events and --reader-cpus as in scenario files' probes section). Probes that
cannot attach do not stop it: the lab is told why.

Every request must carry the token from the ` + lab.AgentTokenEnv + `
environment variable, which is required. The agent stops on SIGTERM or SIGINT,
and by itself after --idle-exit without a request (0: never), so that it does
not stay on the host when the lab that started it is gone.`,
		Example: "  " + lab.AgentTokenEnv + "=... proxylab agent --listen 10.0.0.2:9190 --probes --reader-cpus 0",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			token := os.Getenv(lab.AgentTokenEnv)
			if token == "" {
				return exitError{code: 2, err: fmt.Errorf("agent: %s is not set: the agent serves only requests that carry that token", lab.AgentTokenEnv)}
			}
			cfg := lab.AgentConfig{Listen: listen, Token: token, IdleExit: idle}
			if probes {
				opts, err := agentProbeOptions(mode, pages, events, cpus)
				if err != nil {
					return exitError{code: 2, err: err}
				}
				cfg.Probes = opts
			} else if err := probeFlagsUnused(cmd); err != nil {
				return exitError{code: 2, err: err}
			}
			stderr := cmd.ErrOrStderr()
			return lab.ServeAgent(cmd.Context(), cfg, func(s string) { fmt.Fprintln(stderr, "proxylab "+s) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "address and port to serve on (the SUT address, port "+fmt.Sprint(lab.AgentPort)+")")
	cmd.MarkFlagRequired("listen")
	f.BoolVar(&probes, "probes", false, "attach the eBPF probes (needs CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON)")
	f.StringVar(&mode, "mode", bpf.ModeAuto, "probe attach mode: auto, kprobe, fentry or tracepoint")
	f.IntVar(&pages, "perf-buffer-pages", bpf.DefaultPerfBufferPages, "perf buffer pages per CPU")
	f.StringVar(&events, "events", "none", "events sent through the perf buffer: all, none, or N (one in N per CPU)")
	f.StringVar(&cpus, "reader-cpus", "", "cpuset to pin the perf buffer's reader thread to (default: not pinned)")
	f.DurationVar(&idle, "idle-exit", 10*time.Minute, "stop after this long without a request (0: never)")
	return cmd
}

// agentProbeOptions turns the probe flags into attach options.
func agentProbeOptions(mode string, pages int, events, cpus string) (*bpf.Options, error) {
	switch mode {
	case bpf.ModeAuto, bpf.ModeKprobe, bpf.ModeFentry, bpf.ModeTracepoint:
	default:
		return nil, fmt.Errorf("--mode: %q is none of auto, kprobe, fentry and tracepoint", mode)
	}
	if pages <= 0 || pages&(pages-1) != 0 {
		return nil, fmt.Errorf("--perf-buffer-pages: %d is not a power of two", pages)
	}
	ev, err := bpf.ParseEvents(events)
	if err != nil {
		return nil, fmt.Errorf("--events: %w", err)
	}
	opts := &bpf.Options{Mode: mode, PerfBufferPages: pages, Events: ev}
	if cpus != "" {
		if opts.ReaderCPUs, err = lab.ParseCPUSet(cpus); err != nil {
			return nil, fmt.Errorf("--reader-cpus: %w", err)
		}
	}
	return opts, nil
}

// probeFlagsUnused refuses probe settings without --probes: they would be
// ignored, and the run would carry no counts its caller expected.
func probeFlagsUnused(cmd *cobra.Command) error {
	for _, name := range []string{"mode", "perf-buffer-pages", "events", "reader-cpus"} {
		if cmd.Flags().Changed(name) {
			return errors.New("agent: --" + name + " needs --probes")
		}
	}
	return nil
}
