package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/conformance"
	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/scenarios"
)

func newVerify(g *globals) *cobra.Command {
	var image bool
	cmd := &cobra.Command{
		Use:   "verify [proxy...]",
		Short: "Check proxies against the proxy contract and print a Markdown matrix",
		Long: `verify builds the upstream and the named proxies (default: every proxy in this
checkout) and runs the conformance suite against each: forwarding fidelity,
hop-by-hop headers, connection handling, error answers, robustness and
shutdown, over raw TCP on 127.0.0.1. It prints a Markdown matrix of case by
proxy and exits 1 if any case fails. --image runs the proxies from their
container images instead of as host processes.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := g.repoRoot()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			proxies, err := lab.ResolveProxies(root, args)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			b := &lab.Builder{Root: root, Version: toolVersion(root), Log: func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }}
			if image {
				e, err := connect(ctx)
				if err != nil {
					return err
				}
				defer e.Close()
				b.Engine = e
				defer e.RemoveLeftovers(context.WithoutCancel(ctx), "verify")
			}
			up, err := b.Build(ctx, lab.Upstream)
			if err != nil {
				return err
			}
			var reports []*conformance.Report
			failed := 0
			for _, p := range proxies {
				a, err := b.Build(ctx, p)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "verifying %s (%d cases)\n", p.Name, len(conformance.Cases()))
				var rep *conformance.Report
				if image {
					rep, err = conformance.Run(ctx, conformance.Suite{Name: p.Name, Proxy: b.Engine.Launcher(a, "verify"), Upstream: up.BinaryPath})
				} else {
					rep, err = lab.Verify(ctx, a, up)
				}
				if err != nil {
					return err
				}
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				for _, res := range rep.Results {
					if !res.Passed {
						fmt.Fprintf(cmd.ErrOrStderr(), "FAIL %s %s: %s\n", p.Name, res.Case, res.Error)
					}
				}
				failed += len(rep.Failed)
				reports = append(reports, rep)
			}
			fmt.Fprint(cmd.OutOrStdout(), conformance.Matrix(reports))
			if failed > 0 {
				return fmt.Errorf("%d case(s) failed", failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&image, "image", false, "run each proxy from its container image")
	return cmd
}

func newValidate() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files and say what is wrong, with file:line:column",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := 0
			for _, a := range args {
				sc, err := scenarios.LoadFile(a)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					bad++
					continue
				}
				if s := sc.Load.Search; s != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%s: search from %d/s up to %d/s in %s probes, %d repetition(s), at least %s per proxy)\n",
						a, sc.Name, s.Start, s.Max, s.StepDuration, sc.Repeat, sc.TotalDuration())
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%s: %d step(s), %d repetition(s), about %s per proxy)\n",
					a, sc.Name, len(sc.Load.Steps), sc.Repeat, sc.TotalDuration())
			}
			if bad > 0 {
				return exitError{code: 2, err: fmt.Errorf("%d of %d file(s) invalid", bad, len(args))}
			}
			return nil
		},
	}
}

func newBuild(g *globals) *cobra.Command {
	var noImages bool
	cmd := &cobra.Command{
		Use:   "build [proxy...]",
		Short: "Build the upstream and every proxy in this checkout into scratch images",
		Long: `build compiles the upstream and the named proxies (default: every proxy in
this checkout) into static binaries in bin/ and packs each into a scratch
image. --no-images stops at the binaries, for running them as host
processes; it needs no Docker engine.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := g.repoRoot()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			proxies, err := lab.ResolveProxies(root, args)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			b := &lab.Builder{Root: root, Version: toolVersion(root), Log: func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }}
			// A Builder without an engine builds the binaries only.
			if !noImages {
				if b.Engine, err = connect(ctx); err != nil {
					return err
				}
				defer b.Engine.Close()
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			if noImages {
				fmt.Fprintln(tw, "component\tbinary bytes\tbinary")
			} else {
				fmt.Fprintln(tw, "component\tbinary bytes\timage bytes\timage")
			}
			for _, c := range append([]lab.Component{lab.Upstream}, proxies...) {
				a, err := b.Build(ctx, c)
				if err != nil {
					return err
				}
				if noImages {
					fmt.Fprintf(tw, "%s\t%d\t%s\n", a.Name, a.BinaryBytes, a.BinaryPath)
				} else {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", a.Name, a.BinaryBytes, a.ImageBytes, a.ImageTag)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&noImages, "no-images", false, "build the binaries into bin/ only, without a Docker engine")
	return cmd
}

func newCleanup() *cobra.Command {
	var images bool
	var sut string
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove every container a proxylab run left behind (label proxylab.run)",
		Long: `cleanup force-removes every container labelled proxylab.run, which only a
killed run (kill -9, a crash) leaves behind. With --images it also removes the
images of earlier builds, keeping proxylab/<name>:latest of each component.
With --sut it cleans that engine (a SUT host's) instead of this host's.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := connectSUT(cmd.Context(), sut)
			if err != nil {
				return err
			}
			defer e.Close()
			n, err := e.RemoveLeftovers(cmd.Context(), "")
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d container(s)\n", n)
			if err != nil || !images {
				return err
			}
			n, err = e.RemoveOldImages(cmd.Context())
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d image(s) of earlier builds\n", n)
			return err
		},
	}
	cmd.Flags().BoolVar(&images, "images", false, "also remove images of earlier builds (keeps proxylab/<name>:latest)")
	cmd.Flags().StringVar(&sut, "sut", "", "the Docker engine to clean (default: this host's)")
	return cmd
}
