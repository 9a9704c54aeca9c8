package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/report"
)

func newReport() *cobra.Command {
	var out string
	var diff bool
	cmd := &cobra.Command{
		Use:   "report FILE.json | report --diff A.json B.json",
		Short: "Write report.md and plots (SVG, PNG) for a results file, or compare two files",
		Long: `report reads a results file and writes a folder beside it (results/<name>/,
or --out) holding report.md and its plots as SVG and PNG:

  report.md         findings, throughput, latency percentiles, comparisons,
                    resources, image and binary sizes, eBPF counts and loss,
                    warnings, the environment and the exact scenario
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
			if len(args) != 1 {
				return exitError{code: 2, err: fmt.Errorf("report takes one results file, got %d (two files: --diff)", len(args))}
			}
			path, err := writeReport(args[0], out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "folder for the report (default: beside the file, same name without .json); with --diff, a file for the Markdown instead of stdout")
	cmd.Flags().BoolVar(&diff, "diff", false, "compare two results files, B against A")
	return cmd
}

// writeReport renders the report of a results file into dir (default:
// beside the file) and returns the path of report.md.
func writeReport(results, dir string) (string, error) {
	f, err := report.Load(results)
	if err != nil {
		return "", exitError{code: 2, err: err}
	}
	if dir == "" {
		dir = report.DefaultDir(results)
	}
	return report.Write(f, dir)
}
