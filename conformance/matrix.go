package conformance

import (
	"fmt"
	"strings"
)

// Matrix renders reports as a Markdown table: one row per case, one column
// per proxy.
func Matrix(reports []*Report) string {
	var b strings.Builder
	b.WriteString("| case |")
	for _, r := range reports {
		fmt.Fprintf(&b, " %s |", r.Proxy)
	}
	b.WriteString("\n|---|")
	for range reports {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, c := range Cases() {
		fmt.Fprintf(&b, "| %s |", c.ID())
		for _, r := range reports {
			cell := "–" // not run
			for _, res := range r.Results {
				if res.Case == c.ID() {
					cell = "pass"
					if !res.Passed {
						cell = "**FAIL**"
					}
				}
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("| **all** |")
	for _, r := range reports {
		fmt.Fprintf(&b, " %d/%d |", r.Cases-len(r.Failed), r.Cases)
	}
	b.WriteString("\n")
	return b.String()
}
