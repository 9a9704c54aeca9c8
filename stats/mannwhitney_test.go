package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// enumeratedP is the exact two-sided p-value found by enumerating every way
// of splitting the pooled values into groups of len(a) and len(b): twice
// the share of splits whose U is at least as far out as the observed one on
// its side of the mean, capped at 1. It is the reference the library's
// recurrences must agree with, and minP is the smallest such p-value any
// split reaches.
func enumeratedP(a, b []float64) (p, minP float64) {
	pooled := append(slices.Clone(a), b...)
	n1, n2 := len(a), len(b)
	var us []float64
	combinations(n1+n2, n1, func(idx []int) {
		var x, y []float64
		for i, v := range pooled {
			if slices.Contains(idx, i) {
				x = append(x, v)
			} else {
				y = append(y, v)
			}
		}
		us = append(us, uStatistic(x, y))
	})
	mean := float64(n1*n2) / 2
	tail := func(u float64) float64 {
		if u == mean {
			return 1
		}
		c := 0
		for _, v := range us {
			if (u < mean && v <= u) || (u > mean && v >= u) {
				c++
			}
		}
		return min(1, 2*float64(c)/float64(len(us)))
	}
	minP = 1
	for _, u := range us {
		minP = min(minP, tail(u))
	}
	return tail(uStatistic(a, b)), minP
}

// combinations calls f with every k-subset of 0..n-1.
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

// Small seeded samples drawn from few distinct values, so that most have
// ties within and across the samples, must get exactly the enumerated
// p-value and smallest p-value, in either order of the samples, and never
// leave the inputs reordered.
func TestMannWhitneyAgainstEnumeration(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	draw := func(n, levels int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(rng.IntN(levels))
		}
		return v
	}
	for range 1500 {
		levels := 2 + rng.IntN(12)
		a, b := draw(1+rng.IntN(6), levels), draw(1+rng.IntN(6), levels)
		a0, b0 := slices.Clone(a), slices.Clone(b)
		wantP, wantMin := enumeratedP(a, b)
		got, ok := MannWhitney(a, b)
		if !ok || !got.Exact || math.Abs(got.P-wantP) > 1e-12 || math.Abs(got.MinP-wantMin) > 1e-12 {
			t.Fatalf("MannWhitney(%v, %v) = %+v, %v; want exact p %v, min p %v", a, b, got, ok, wantP, wantMin)
		}
		if rev, _ := MannWhitney(b, a); math.Abs(rev.P-got.P) > 1e-12 || rev.U != float64(len(a)*len(b))-got.U {
			t.Fatalf("MannWhitney(%v, %v) = %+v but swapped %+v", a, b, got, rev)
		}
		if !slices.Equal(a, a0) || !slices.Equal(b, b0) {
			t.Fatalf("MannWhitney reordered its inputs: %v %v, were %v %v", a, b, a0, b0)
		}
	}
}

// normalP is the two-sided normal approximation with the tie correction of
// the variance and the continuity correction, as R's
// wilcox.test(a, b, exact = FALSE, correct = TRUE) computes it.
func normalP(a, b []float64) float64 {
	n1, n2 := float64(len(a)), float64(len(b))
	n := n1 + n2
	s := append(slices.Clone(a), b...)
	slices.Sort(s)
	ties := 0.0
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		c := float64(j - i)
		ties += c*c*c - c
		i = j
	}
	sigma := math.Sqrt(n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1))))
	dev := math.Abs(uStatistic(a, b) - n1*n2/2)
	return math.Erfc(max(dev-0.5, 0) / sigma / math.Sqrt2)
}

// Exact is true exactly where the library uses the exact distribution: at
// the limits the p-value differs from the normal approximation, one run
// past them it is the normal approximation to the last digits.
func TestMannWhitneyExactLimits(t *testing.T) {
	// b is a shifted by an eighth of the span, which keeps p between
	// 0.01 and 0.2, where the approximation is close but not equal. An integer
	// shift makes a and b share values, a half-integer one keeps them apart.
	shifted := func(n int, shift float64) (a, b []float64) {
		for i := range n {
			a = append(a, float64(i))
			b = append(b, float64(i)+shift)
		}
		return a, b
	}
	cases := []struct {
		name  string
		n     int
		ties  bool
		exact bool
	}{
		{"no ties, at the limit", exactLimit, false, true},
		{"no ties, past the limit", exactLimit + 1, false, false},
		{"ties, at the limit", tiesExactLimit, true, true},
		{"ties, past the limit", tiesExactLimit + 1, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shift := float64(c.n / 8)
			if !c.ties {
				shift += 0.5
			}
			a, b := shifted(c.n, shift)
			got, _ := MannWhitney(a, b)
			approx := normalP(a, b)
			if got.Exact != c.exact {
				t.Errorf("Exact = %v, want %v", got.Exact, c.exact)
			}
			if equal := math.Abs(got.P-approx) < 1e-9*approx; equal == c.exact {
				t.Errorf("p = %v, normal approximation %v: want them %s", got.P, approx, map[bool]string{true: "to differ", false: "equal"}[c.exact])
			}
			if math.Abs(got.P-approx) > 0.1*approx {
				t.Errorf("p = %v is far from the normal approximation %v", got.P, approx)
			}
		})
	}
}

// The smallest p-value of two complete separations is 2/C(n1+n2, n1) while
// the test is exact: the run counts the report recommends rest on it.
func TestMannWhitneyMinPOfSeparatedRuns(t *testing.T) {
	for n := 1; n <= 12; n++ {
		v := make([]float64, 2*n)
		for i := range v {
			v[i] = float64(i)
		}
		got, _ := MannWhitney(v[:n], v[n:])
		want := min(1, 2/binom(2*n, n))
		if math.Abs(got.MinP-want) > 1e-12*want || math.Abs(got.P-want) > 1e-12*want {
			t.Errorf("%d against %d: p %v, min p %v; want both %v", n, n, got.P, got.MinP, want)
		}
	}
}
