package stats

import (
	"math"
	"slices"

	"golang.org/x/perf/benchmath"
)

// Alpha is the significance level of every test proxylab reports.
const Alpha = 0.05

// The sample sizes up to which benchmath's U test (go-moremath's
// MannWhitneyExactLimit and MannWhitneyTiesExactLimit) uses the exact
// distribution of U rather than its normal approximation. benchmath does
// not say which one it used, so UTest.Exact is derived from the same rule;
// TestMannWhitneyExactLimits fails if the library's limits move.
const (
	exactLimit     = 50
	tiesExactLimit = 25
)

// UTest is the outcome of a two-sided Mann-Whitney U test.
type UTest struct {
	U     float64 // U of the first sample: pairs (a, b) with a > b, ties counting one half
	P     float64 // two-sided p-value
	Exact bool    // P comes from the exact distribution of U, not from the normal approximation
	// MinP is the smallest p-value these sample sizes can produce at all:
	// with three runs per side it is 0.1, so no difference can ever reach
	// Alpha, and the report says so rather than calling it "no difference".
	MinP float64
}

// Significant reports whether the test rejects "same distribution" at Alpha.
func (t UTest) Significant() bool { return t.P < Alpha }

// MannWhitney tests whether a and b come from the same distribution, without
// assuming any shape. ok is false when either sample is empty.
//
// The p-value is benchstat's: golang.org/x/perf/benchmath's AssumeNothing
// comparison, which is exact (ties included) for up to 50 runs per side
// without ties and 25 with, and past that the normal approximation with the
// tie and continuity corrections. The two-sided p-value is twice the tail of
// U on the side the observed U lies, capped at 1 (the convention of R's
// wilcox.test). benchmath gives neither U nor the smallest possible p-value,
// so U is counted here and MinP is benchmath's p-value of the two most
// extreme splits of the pooled values.
func MannWhitney(a, b []float64) (t UTest, ok bool) {
	if len(a) == 0 || len(b) == 0 {
		return UTest{}, false
	}
	t.U = uStatistic(a, b)
	t.P = twoSidedP(a, b, t.U)
	t.Exact = exactDistribution(a, b)
	pooled := append(slices.Clone(a), b...)
	slices.Sort(pooled)
	n1, n2 := len(a), len(b)
	low, high := pooled[:n1], pooled[n2:] // a holding the smallest, or the largest, values
	t.MinP = min(twoSidedP(low, pooled[n1:], uStatistic(low, pooled[n1:])),
		twoSidedP(high, pooled[:n2], uStatistic(high, pooled[:n2])))
	return t, true
}

// twoSidedP is benchmath's p-value for a and b, whose U statistic is u.
//
// benchmath (through go-moremath) doubles P(U1 <= min(U1, U2)) read from the
// distribution of the first sample's U1. Without ties that distribution is
// symmetric and the order of the samples does not matter, but with ties it
// is not, and when U1 > U2 the wrong tail is read: [3] against [1 1 2] gives
// p = 0 and [4] against [2 2 2 2] p = 1.6, where the exact values are 0.5
// and 0.4. Passing first the sample whose U is the smaller one makes the
// tail read the right one.
func twoSidedP(a, b []float64, u float64) float64 {
	if u > float64(len(a)*len(b))/2 {
		a, b = b, a
	}
	th := &benchmath.Thresholds{CompareAlpha: Alpha}
	// NewSample sorts its argument in place: give it copies.
	c := benchmath.AssumeNothing.Compare(benchmath.NewSample(slices.Clone(a), th), benchmath.NewSample(slices.Clone(b), th))
	// All values equal is an error there, reported as p = 1 (no evidence
	// of a difference), which is also the exact answer.
	return math.Min(c.P, 1)
}

// uStatistic counts the pairs (x in a, y in b) with x > y, ties one half.
func uStatistic(a, b []float64) float64 {
	u := 0.0
	for _, x := range a {
		for _, y := range b {
			switch {
			case x > y:
				u++
			case x == y:
				u += 0.5
			}
		}
	}
	return u
}

// exactDistribution reports whether benchmath uses the exact distribution of
// U for these samples.
func exactDistribution(a, b []float64) bool {
	pooled := append(slices.Clone(a), b...)
	slices.Sort(pooled)
	limit := exactLimit
	for i := 1; i < len(pooled); i++ {
		if pooled[i] == pooled[i-1] {
			limit = tiesExactLimit
			break
		}
	}
	return len(a) <= limit && len(b) <= limit
}
