package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/claims"
	"github.com/proxylab/proxylab/report"
)

func newReport() *cobra.Command {
	var out, claimsFile string
	var diff bool
	cmd := &cobra.Command{
		Use:   "report FILE.json... | report --diff A.json B.json",
		Short: "Write report.md and plots (SVG, PNG) for results files, or compare two files",
		Long: `report reads results files and writes a folder holding report.md and its
plots as SVG and PNG: beside the file for one (results/<name>/), for several
beside the first, named after every scenario
(results/capacity+latency+churn-<time>/), or --out. Several files make one
report: the findings lead with capacity, then latency at the shares of it,
CPU per request, memory, sizes, churn and probes, then the claims
(--claims FILE) judged against all of them.

  report.md         findings (capacity first), claims, throughput, latency percentiles, comparisons,
                    resources, image and binary sizes, eBPF counts and loss,
                    warnings, the environment and the exact scenario
  latency-throughput p50 and p99 against the achieved rate, every step of every run
  latency-stepN     latency by percentile (HdrHistogram style), per step
  throughput        throughput against the offered rate (search probes included)
  p99-timeline      each second's p99 across the whole run
  peak-rss          peak resident memory per proxy
  image-size        static binary and image size per proxy
  perf-loss         eBPF perf-buffer loss ratio per step (when probes ran)

Every figure is the median across repetitions with a 95% percentile-bootstrap
interval (seeded: the same file always gives the same report); differences
between proxies are tested with the exact Mann-Whitney U test, and a proxy is
called better only when the test is significant and the intervals are apart.

With --diff it prints, in Markdown, how B differs from A: the environment
side by side with every change flagged, then each figure of each proxy and
step with the ratio B/A and whether the change is significant.`,
		Example: "  proxylab report results/keepalive-1k-20261125T170000Z.json\n  proxylab report --diff results/old.json results/new.json",
		RunE: func(cmd *cobra.Command, args []string) error {
			if diff {
				if len(args) != 2 {
					return exitError{code: 2, err: fmt.Errorf("--diff takes two results files, got %d", len(args))}
				}
				a, err := report.Load(args[0])
				if err != nil {
					return exitError{code: 2, err: err}
				}
				b, err := report.Load(args[1])
				if err != nil {
					return exitError{code: 2, err: err}
				}
				if out != "" {
					return report.WriteFile(out, report.NewDiff(a, b))
				}
				return report.NewDiff(a, b)(cmd.OutOrStdout())
			}
			if len(args) == 0 {
				return exitError{code: 2, err: fmt.Errorf("report takes one or more results files (two to compare: --diff)")}
			}
			path, err := writeReport(args, claimsFile, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "folder for the report (default: beside the file, same name without .json); with --diff, a file for the Markdown instead of stdout")
	cmd.Flags().BoolVar(&diff, "diff", false, "compare two results files, B against A")
	cmd.Flags().StringVar(&claimsFile, "claims", "", "claims file to judge against the results; its verdicts become the report's Claims section")
	return cmd
}

// writeReport renders one report of the results files into dir (default:
// setDir's) and returns the path of report.md.
func writeReport(paths []string, claimsFile, dir string) (string, error) {
	var files []*report.File
	for i, p := range paths {
		if slices.Contains(paths[:i], p) {
			// One run counted twice would look like a run of twice as
			// many scenarios; two files compared is --diff.
			return "", exitError{code: 2, err: fmt.Errorf("%s is given twice (to compare two files: --diff)", p)}
		}
		f, err := report.Load(p)
		if err != nil {
			return "", exitError{code: 2, err: err}
		}
		files = append(files, f)
	}
	var verdicts []claims.Verdict
	if claimsFile != "" {
		c, err := claims.LoadFile(claimsFile)
		if err != nil {
			return "", exitError{code: 2, err: err}
		}
		verdicts = judge(c, files)
	}
	if dir == "" {
		dir = setDir(files)
	}
	return report.WriteSet(files, verdicts, dir)
}
