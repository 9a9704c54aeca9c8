package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/bpf"
	"github.com/proxylab/proxylab/lab"
)

func newProbes() *cobra.Command {
	var (
		pid    int
		dur    time.Duration
		mode   string
		pages  int
		events string
		cpus   string
	)
	cmd := &cobra.Command{
		Use:   "probes",
		Short: "Show which eBPF attach modes work on this host, or count a process's connections",
		Long: `Without --pid, probes tries every attach mode (kprobe, fentry, tracepoint) and
says which work on this host and why the others do not: the first check to
make when results carry no probe counts.

With --pid, it attaches in --mode (auto: the first that works), watches that
process for --for (or until Ctrl-C), and prints as JSON its accepts and IPv4
connects (exact in-kernel counts), the perf buffer's delivery of the events
--events sends (all, none, or N: one in N per CPU), the kernel's miss counts
and the reader thread's CPU time. --reader-cpus pins the reader thread.
Needs root.`,
		Example: "  proxylab probes\n  proxylab probes --pid 1234 --for 10s\n  proxylab probes --pid 1234 --events 64 --reader-cpus 0",
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if pid == 0 {
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "mode\tworks\twhy not")
				works := 0
				for _, m := range []string{bpf.ModeKprobe, bpf.ModeFentry, bpf.ModeTracepoint} {
					p, err := bpf.Attach(bpf.Options{Mode: m})
					if err != nil {
						fmt.Fprintf(tw, "%s\tno\t%v\n", m, err)
						continue
					}
					p.Close()
					works++
					fmt.Fprintf(tw, "%s\tyes\t\n", m)
				}
				tw.Flush()
				if works == 0 {
					return fmt.Errorf("no attach mode works on this host: scenarios need probes.enabled: false")
				}
				return nil
			}
			ev, err := bpf.ParseEvents(events)
			if err != nil {
				return err
			}
			var readerCPUs []int
			if cpus != "" {
				if readerCPUs, err = lab.ParseCPUSet(cpus); err != nil {
					return fmt.Errorf("--reader-cpus: %w", err)
				}
			}
			p, err := bpf.Attach(bpf.Options{Mode: mode, PerfBufferPages: pages, Events: ev, ReaderCPUs: readerCPUs})
			if err != nil {
				return err
			}
			defer p.Close()
			if _, err := p.ReaderPin(); err != nil {
				return err
			}
			if err := p.Watch(uint32(pid)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "watching process %d in %s mode for %s (perf buffer events: %s)\n", pid, p.Mode(), dur, p.Events())
			select {
			case <-time.After(dur):
			case <-cmd.Context().Done():
			}
			c, err := p.Snapshot()
			if err != nil {
				return err
			}
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(c)
		},
	}
	cmd.Flags().IntVar(&pid, "pid", 0, "process id to watch (host PID namespace)")
	cmd.Flags().DurationVar(&dur, "for", 10*time.Second, "how long to watch")
	cmd.Flags().StringVar(&mode, "mode", bpf.ModeAuto, "attach mode: auto, kprobe, fentry or tracepoint")
	cmd.Flags().IntVar(&pages, "perf-buffer-pages", bpf.DefaultPerfBufferPages, "perf buffer pages per CPU")
	// All by default: the command is a check of the whole path, delivery
	// included, not a measurement whose observer effect matters.
	cmd.Flags().StringVar(&events, "events", "all", "events sent through the perf buffer: all, none, or N (one in N per CPU)")
	cmd.Flags().StringVar(&cpus, "reader-cpus", "", "cpuset to pin the perf buffer's reader thread to (default: not pinned)")
	return cmd
}
