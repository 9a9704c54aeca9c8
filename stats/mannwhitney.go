package stats

import (
	"math"
	"slices"
)

// Alpha is the significance level of every test proxylab reports.
const Alpha = 0.05

// exactLimit bounds the number of group splits MannWhitney enumerates; past
// it (about 10 runs per side) the normal approximation is accurate.
const exactLimit = 200_000

// UTest is the outcome of a two-sided Mann-Whitney U test.
type UTest struct {
	U     float64 // U of the first sample: pairs (a, b) with a > b, ties counting one half
	P     float64 // two-sided p-value
	Exact bool    // P comes from enumerating every split, not from the normal approximation
	// MinP is the smallest p-value these sample sizes can produce at all:
	// with three runs per side it is 0.1, so no difference can ever reach
	// Alpha, and the report says so rather than calling it "no difference".
	MinP float64
}

// Significant reports whether the test rejects "same distribution" at Alpha.
func (t UTest) Significant() bool { return t.P < Alpha }

// MannWhitney tests whether a and b come from the same distribution, without
// assuming any shape. For small samples the p-value is exact: every way of
// splitting the pooled values into groups of len(a) and len(b) is
// enumerated, which also handles ties exactly. ok is false when either
// sample is empty.
func MannWhitney(a, b []float64) (t UTest, ok bool) {
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return UTest{}, false
	}
	pooled := append(slices.Clone(a), b...)
	ranks := midranks(pooled)
	r1 := 0.0
	for _, r := range ranks[:n1] {
		r1 += r
	}
	u := func(rankSum float64) float64 { return rankSum - float64(n1*(n1+1))/2 }
	mean := float64(n1*n2) / 2
	t.U = u(r1)
	dev := math.Abs(t.U - mean)
	if binom(n1+n2, n1) <= exactLimit {
		t.Exact = true
		var devs []float64
		combinations(n1+n2, n1, func(idx []int) {
			s := 0.0
			for _, i := range idx {
				s += ranks[i]
			}
			devs = append(devs, math.Abs(u(s)-mean))
		})
		// A tolerance absorbs the half-ranks' rounding.
		share := func(atLeast float64) float64 {
			c := 0
			for _, d := range devs {
				if d >= atLeast-1e-9 {
					c++
				}
			}
			return float64(c) / float64(len(devs))
		}
		t.P = share(dev)
		// The largest deviation any split reaches sets the smallest p.
		t.MinP = share(slices.Max(devs))
		return t, true
	}
	// Normal approximation with the tie correction of the variance and a
	// continuity correction.
	n := float64(n1 + n2)
	ties := 0.0
	s := slices.Clone(pooled)
	slices.Sort(s)
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		c := float64(j - i)
		ties += c*c*c - c
		i = j
	}
	sigma := math.Sqrt(float64(n1*n2) / 12 * ((n + 1) - ties/(n*(n-1))))
	if sigma == 0 {
		return UTest{U: t.U, P: 1, MinP: 1}, true
	}
	z := max(dev-0.5, 0) / sigma
	t.P = math.Min(1, math.Erfc(z/math.Sqrt2))
	t.MinP = math.Erfc((mean - 0.5) / sigma / math.Sqrt2)
	return t, true
}

// midranks gives each value its 1-based rank, tied values the mean of the
// ranks they span.
func midranks(v []float64) []float64 {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case v[a] < v[b]:
			return -1
		case v[a] > v[b]:
			return 1
		}
		return 0
	})
	ranks := make([]float64, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && v[idx[j]] == v[idx[i]] {
			j++
		}
		r := float64(i+j+1) / 2 // mean of ranks i+1 .. j
		for k := i; k < j; k++ {
			ranks[idx[k]] = r
		}
		i = j
	}
	return ranks
}

// combinations calls f with every k-subset of 0..n-1 in lexicographic order.
func combinations(n, k int, f func([]int)) {
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i
	}
	for {
		f(idx)
		i := k - 1
		for i >= 0 && idx[i] == n-k+i {
			i--
		}
		if i < 0 {
			return
		}
		idx[i]++
		for j := i + 1; j < k; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}
