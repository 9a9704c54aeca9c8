package report

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/proxylab/proxylab/claims"
)

// NewClaims is the terminal table `proxylab claims` prints: per claim the
// quoted side, what was measured with its interval, the verdict and why,
// and on a second line the rows and runs the verdict rests on. report.md's
// Claims section shows the same fields.
func NewClaims(vs []claims.Verdict) Reporter {
	return func(out io.Writer) error {
		w, done := newWriter(out)
		if len(vs) == 0 {
			w("no claims judged\n")
			return done()
		}
		rows := [][]string{{"claim", "quoted", "measured (95% interval)", "verdict", "why"}}
		for _, v := range vs {
			rows = append(rows, []string{claimID(v), dash(v.Quoted), measured(v), strings.ToUpper(dash(v.Outcome)), dash(v.Why)})
		}
		// Columns are aligned on the rows alone: the rests-on line under
		// each is as long as it needs to be without widening them.
		width := make([]int, len(rows[0]))
		for _, r := range rows {
			for i, c := range r {
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
		for i, r := range rows {
			line := ""
			for j, c := range r[:len(r)-1] {
				line += c + strings.Repeat(" ", width[j]-utf8.RuneCountInString(c)+2)
			}
			w("%s%s\n", line, r[len(r)-1])
			if i > 0 && vs[i-1].Rests != "" {
				w("%srests on %s\n", strings.Repeat(" ", width[0]+2), vs[i-1].Rests)
			}
		}
		w("\n%s\n", tally(vs))
		return done()
	}
}

func claimID(v claims.Verdict) string {
	if v.Claim == nil || v.Claim.ID == "" {
		return "-"
	}
	return v.Claim.ID
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// measured is the verdict's measured value with its interval as the
// judge wrote it, or built from Value, Lo and Hi when it wrote none.
func measured(v claims.Verdict) string {
	if v.Measured != "" {
		return v.Measured
	}
	if v.Lo == v.Hi {
		return fmt.Sprintf("%.4g", v.Value)
	}
	return fmt.Sprintf("%.4g [%.4g, %.4g]", v.Value, v.Lo, v.Hi)
}

// tally counts the outcomes: "2 supported, 1 refuted, 0 inconclusive".
func tally(vs []claims.Verdict) string {
	n := map[string]int{}
	for _, v := range vs {
		n[v.Outcome]++
	}
	return fmt.Sprintf("%d claims: %d supported, %d refuted, %d inconclusive",
		len(vs), n[claims.Supported], n[claims.Refuted], n[claims.Inconclusive])
}

// writeClaims is report.md's Claims section: each published sentence,
// what it says in the lab's figures, what was measured and the verdict.
func writeClaims(w writer, vs []claims.Verdict) {
	if len(vs) == 0 {
		return
	}
	w("## Claims\n\n")
	w("Published statements about these proxies, each translated into a figure the lab measures. A claim is supported when the %s interval of the measured figure lies wholly on the claim's side, refuted when it lies wholly on the other, and inconclusive otherwise or when the runs it needs are missing. %s.\n\n",
		"95%", tally(vs))
	w("| claim | as published | quoted | measured (95%% interval) | verdict | why | rests on |\n|---|---|---|--:|---|---|---|\n")
	for _, v := range vs {
		quote := "-"
		if c := v.Claim; c != nil && c.Quote != "" {
			quote = fmt.Sprintf("“%s”", oneLine(strings.TrimSpace(c.Quote)))
			if c.Source != "" {
				quote += " (" + oneLine(c.Source) + ")"
			}
		}
		w("| %s | %s | %s | %s | **%s** | %s | %s |\n", mdEscape(claimID(v)), quote, oneLine(dash(v.Quoted)), oneLine(measured(v)),
			dash(v.Outcome), oneLine(dash(v.Why)), oneLine(dash(v.Rests)))
	}
	w("\n")
	for _, v := range vs {
		if c := v.Claim; c != nil && c.Note != "" {
			w("- %s: %s\n", mdEscape(claimID(v)), oneLine(c.Note))
		}
	}
	w("\n")
}
