package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/claims"
	"github.com/proxylab/proxylab/report"
)

func newClaims() *cobra.Command {
	return &cobra.Command{
		Use:   "claims CLAIMS.yaml RESULTS.json...",
		Short: "Judge published claims against results files: supported, refuted or inconclusive",
		Long: `claims reads a claims file (claims/*.yaml: published sentences, each
translated into a figure, its subjects and a relation) and judges every claim
against the results files given, printing a table of claim, quoted value,
measured value with its 95% interval, verdict and why.

A claim is supported when the interval of the measured quantity lies wholly
on the claim's side of the relation, refuted when it lies wholly on the
other side, and inconclusive otherwise: also with fewer than 3 runs, or when
the rows it needs were saturated, failed or not measured, with the reason.
Image and binary sizes have no run-to-run noise and are judged directly.
The results files are only read.

Exit status: 0 whatever the verdicts, 2 a bad claims or results file.`,
		Example: "  proxylab claims claims/go-rust-zig-article.yaml results/capacity-*.json results/replicate-article-*.json",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := claims.LoadFile(args[0])
			if err != nil {
				return exitError{code: 2, err: err}
			}
			var files []*report.File
			for _, a := range args[1:] {
				f, err := report.Load(a)
				if err != nil {
					return exitError{code: 2, err: err}
				}
				files = append(files, f)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "claims: %s, against %d results file(s)\n", args[0], len(files))
			return report.NewClaims(judge(c, files))(cmd.OutOrStdout())
		},
	}
}
