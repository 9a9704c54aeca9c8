package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/claims"
	"github.com/proxylab/proxylab/lab"
	"github.com/proxylab/proxylab/report"
	"github.com/proxylab/proxylab/scenarios"
)

// compareFlags are compare's options.
type compareFlags struct {
	resultsDir, rawDir, capacity, claims string
	sut, sutAddress                      string
	skipVerify, writeRep                 bool
	retryDisturbed                       int
}

func newCompare(g *globals) *cobra.Command {
	var f compareFlags
	cmd := &cobra.Command{
		Use:   "compare [scenario.yaml...]",
		Short: "Build the proxies, run scenarios against them, write results and print a table",
		Long: `compare builds the upstream and every proxy the scenarios name (reusing images
whose binary did not change) and checks each proxy against the conformance
suite: a proxy that fails it is not measured, since its numbers would not be
comparable (--skip-verify measures anyway and says so in the results). Then,
for each scenario, each repetition and each row, it starts fresh containers,
warms up, runs every load step or the saturation search, and removes the
containers. When a scenario enables probes (root needed; see proxylab
probes), each step also records the proxy process's accepts and IPv4
connects counted with eBPF.

Without arguments it runs the default run, scenarios/capacity.yaml,
latency.yaml and churn.yaml in this order: the capacity of every row
(a search, three times), latency at 25, 50 and 75% of the slowest lab
proxy's capacity, and connection churn. Steps written as of_capacity take
their rate from the search run before them in the same invocation, or from
--capacity FILE.json. Each scenario writes its own results file; --report
writes one report of them all, --claims judges a claims file against them.

Before the rows, a calibration (the direct row in a closed loop of 64
connections for 3 s) records how fast this host is today, so that report
--diff can tell a slower host from a slower proxy. Each step records the
CPU of every party (proxy, upstream, load generator, probe reader) and of
each core; a step on whose cores something outside the run used more than
5% of a core is marked disturbed, and its run enters no figure or verdict
(--retry-disturbed N runs it again).

With --sut ENGINE --sut-address ADDR the upstream and the proxies run on
another host's Docker engine (unix:// or tcp://; an ssh:// engine: forward
its socket with ssh -L and name that) and the load goes from this host to
ADDR, that host's address: the only address outside 127.0.0.0/8 the lab
sends traffic to. The lab's reader runs there too (proxylab agent, in a
container with the host's PID namespace and, when the scenario enables
probes, the capabilities they need as far as that engine grants them) and
takes the proxy's and the upstream's CPU, memory and probe counts on that
host. scripts/setup.sh --remote-test makes such a host
here, in a network namespace.

A results file is written after every row's run, so Ctrl-C keeps what was
measured: the file then says "complete": false. Exit status: 0 complete,
1 a proxy failed or another error, 2 bad scenario or claims file, 3 no
Docker engine, 4 a proxy fails the conformance suite, 130 interrupted.`,
		Example: "  proxylab compare --report\n  proxylab compare scenarios/smoke.yaml --results-dir /tmp/results\n" +
			"  proxylab compare --sut tcp://sut.example:2376 --sut-address 192.0.2.10\n" +
			"  proxylab compare scenarios/replicate-article.yaml --claims claims/go-rust-zig-article.yaml",
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := g.repoRoot()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				for _, name := range scenarios.DefaultRun {
					args = append(args, filepath.Join(root, "scenarios", name))
				}
			}
			if f.resultsDir == "" {
				f.resultsDir = filepath.Join(root, "results")
			}
			if (f.sut == "") != (f.sutAddress == "") {
				return exitError{code: 2, err: errors.New("--sut and --sut-address go together: the engine of the SUT host, and the address of that host the load goes to")}
			}
			if f.sutAddress != "" {
				if _, err := lab.SUTAddress(f.sutAddress); err != nil {
					return exitError{code: 2, err: fmt.Errorf("--sut-address: %w", err)}
				}
			}
			set, err := loadCompareSet(args, f)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			e, err := connectSUT(cmd.Context(), f.sut)
			if err != nil {
				return err
			}
			defer e.Close()
			return set.run(cmd.Context(), e, root, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&f.resultsDir, "results-dir", "", "where results files go (default: <root>/results)")
	cmd.Flags().BoolVar(&f.skipVerify, "skip-verify", false, "measure proxies without checking them against the conformance suite first")
	cmd.Flags().BoolVar(&f.writeRep, "report", false, "also write one report (proxylab report) of every results file of this invocation")
	cmd.Flags().StringVar(&f.rawDir, "raw", "", "also write every step's results in vegeta's encoding to DIR/<scenario>-<run>-<proxy>-r<rep>-s<step>.gob")
	cmd.Flags().StringVar(&f.capacity, "capacity", "", "results file of a search whose capacity of_capacity steps are shares of (default: the search run before them)")
	cmd.Flags().IntVar(&f.retryDisturbed, "retry-disturbed", 0, "run a repetition again, up to N times, while something outside the run used its cores (every attempt is kept; disturbed ones enter no figure)")
	cmd.Flags().StringVar(&f.claims, "claims", "", "claims file to judge against this invocation's results; the verdicts are printed and go into the report")
	cmd.Flags().StringVar(&f.sut, "sut", "", "Docker engine of the host the upstream and proxies run on (unix:// or tcp://; default: this host's)")
	cmd.Flags().StringVar(&f.sutAddress, "sut-address", "", "that host's IPv4 address, where the load goes (with --sut)")
	return cmd
}

// compareSet is one invocation of compare: its scenarios in order, checked
// before anything runs.
type compareSet struct {
	f        compareFlags
	scs      []*scenarios.Scenario
	capacity *lab.CapacityRef // from --capacity, then from each search
	claims   *claims.File
	files    []*report.File // written so far
}

// loadCompareSet reads every scenario, the claims file and the capacity
// file, so that a typo in the third scenario, or a latency scenario with no
// search before it, is reported before an hour of measuring.
func loadCompareSet(args []string, f compareFlags) (*compareSet, error) {
	set := &compareSet{f: f}
	searched := false
	for _, a := range args {
		sc, err := scenarios.LoadFile(a)
		if err != nil {
			return nil, err
		}
		needs := slices.ContainsFunc(sc.Load.Steps, func(s scenarios.Step) bool { return s.OfCapacity > 0 })
		if needs && !searched && f.capacity == "" {
			return nil, fmt.Errorf("%s: its steps are shares of a capacity (of_capacity), and no scenario before it searches for one: "+
				"put a search scenario first (proxylab compare scenarios/capacity.yaml %s) or pass --capacity RESULTS.json", a, a)
		}
		searched = searched || sc.Load.Search != nil
		set.scs = append(set.scs, sc)
	}
	if f.capacity != "" {
		res, err := lab.ReadResults(f.capacity)
		if err != nil {
			return nil, err
		}
		if set.capacity, err = lab.CapacityOf(res, f.capacity); err != nil {
			return nil, err
		}
	}
	if f.claims != "" {
		c, err := claims.LoadFile(f.claims)
		if err != nil {
			return nil, err
		}
		set.claims = c
	}
	return set, nil
}

// sut is the SUT host the flags name; nil: this one.
func (set *compareSet) sut() *lab.SUT {
	if set.f.sut == "" {
		return nil
	}
	return &lab.SUT{Engine: set.f.sut, Address: set.f.sutAddress}
}

// run measures each scenario in turn, prints its table, and ends with the
// claims and the one report of the whole set.
func (set *compareSet) run(ctx context.Context, e *lab.Engine, root string, out, errOut io.Writer) error {
	verified := map[string]*lab.Verification{}
	var failed error
	for _, sc := range set.scs {
		disp := newDisplay(out)
		res, path, err := lab.Compare(ctx, e, sc, lab.Options{
			Root: root, ResultsDir: set.f.resultsDir, RawDir: set.f.rawDir, Version: toolVersion(root), Observer: disp.observe,
			SkipVerify: set.f.skipVerify, Capacity: set.capacity, Verified: verified, RetryDisturbed: set.f.retryDisturbed,
			SUT: set.sut(),
		})
		disp.done()
		if res != nil && path != "" {
			if err := set.written(out, path, res); err != nil {
				return err
			}
		}
		if errors.Is(err, lab.ErrNotConformant) {
			return exitError{code: 4, err: err}
		}
		if err != nil {
			if !errors.Is(err, lab.ErrIncomplete) || ctx.Err() != nil {
				set.finish(out, errOut)
				return err
			}
			failed = err
		}
	}
	set.finish(out, errOut)
	return failed
}

// written prints one scenario's table and keeps its results; a search
// also sets the capacity that later of_capacity steps are shares of.
func (set *compareSet) written(out io.Writer, path string, res *lab.Results) error {
	f := &report.File{Path: path, Results: res}
	set.files = append(set.files, f)
	fmt.Fprintf(out, "\n== %s ==\n", res.Scenario.Name)
	if err := report.NewTable(f)(out); err != nil {
		return err
	}
	fmt.Fprintf(out, "results: %s\n", path)
	if res.Scenario.Load.Search != nil {
		if c, err := lab.CapacityOf(res, path); err == nil {
			set.capacity = c
			how := ""
			if c.Disturbed {
				how = ", every one disturbed"
			}
			fmt.Fprintf(out, "capacity for the scenarios after it: %d/s (%s, the slowest lab proxy, median of %d runs%s)\n", c.Rate, c.Proxy, c.Runs, how)
		} else {
			fmt.Fprintf(out, "no capacity for the scenarios after it: %v\n", err)
		}
	}
	return nil
}

// finish judges the claims and writes the report of what was measured,
// also after a failure or an interruption: an incomplete file says so,
// and what it holds is still worth reading.
func (set *compareSet) finish(out, errOut io.Writer) {
	if len(set.files) == 0 {
		return
	}
	var verdicts []claims.Verdict
	if set.claims != nil {
		verdicts = judge(set.claims, set.files)
		fmt.Fprintf(out, "\n== claims: %s ==\n", set.claims.Path)
		if err := report.NewClaims(verdicts)(out); err != nil {
			fmt.Fprintf(errOut, "proxylab: claims: %v\n", err)
		}
	}
	if !set.f.writeRep {
		return
	}
	dir := setDir(set.files)
	if p, err := report.WriteSet(set.files, verdicts, dir); err != nil {
		fmt.Fprintf(errOut, "proxylab: report: %v\n", err)
	} else {
		fmt.Fprintf(out, "report: %s\n", p)
	}
}

// judge judges c against the results of files.
func judge(c *claims.File, files []*report.File) []claims.Verdict {
	var rs []*lab.Results
	for _, f := range files {
		rs = append(rs, f.Results)
	}
	return claims.Judge(c, rs)
}

// setDir is where the report of several results files goes: beside the
// first, named after every scenario and the first one's start, such as
// results/capacity+latency+churn-20261201T130000Z; one file's report goes
// beside it as always.
func setDir(files []*report.File) string {
	if len(files) == 1 {
		return report.DefaultDir(files[0].Path)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Scenario.Name)
	}
	stamp := files[0].StartedAt.UTC().Format("20060102T150405Z")
	return filepath.Join(filepath.Dir(files[0].Path), strings.Join(names, "+")+"-"+stamp)
}
