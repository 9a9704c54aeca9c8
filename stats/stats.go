// Package stats holds the few statistics proxylab publishes: medians, a
// seeded percentile bootstrap for intervals, the coefficient of variation,
// and the Mann-Whitney U test for differences between proxies.
//
// The U test is benchstat's (golang.org/x/perf/benchmath), so that a
// difference proxylab calls significant is one benchstat would too. The
// intervals stay our own: benchmath has no interval for a ratio of medians,
// which is what every comparison publishes, and its distribution-free
// interval of a median needs six runs to be finite at 95%, where the
// bootstrap gives one from three and MedianCoverage says what it is worth.
//
// Everything here treats one repetition of a run as one observation: the
// millions of requests inside a run are not independent of each other (they
// share the machine's state at that moment), so run-to-run variation is the
// noise that matters.
package stats

import (
	"math"
	"math/rand/v2"
	"slices"
)

const (
	// Resamples is the number of bootstrap resamples behind every interval.
	Resamples = 10000
	// Seed fixes the bootstrap's random stream so that the same data always
	// give the same interval, to the last digit.
	Seed = 1
	// Level is the nominal coverage of the bootstrap intervals.
	Level = 0.95
	// MinN is the smallest sample that gets an interval: below three runs a
	// resampled median can only be one of two values, which says nothing
	// about where the true median lies.
	MinN = 3
)

// Median of v; NaN for an empty slice.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return sortedMedian(s)
}

func sortedMedian(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// CV is the coefficient of variation: sample standard deviation over the
// mean. It is NaN below two values or when the mean is zero, where it has no
// meaning.
func CV(v []float64) float64 {
	n := len(v)
	if n < 2 {
		return math.NaN()
	}
	mean := 0.0
	for _, x := range v {
		mean += x
	}
	mean /= float64(n)
	if mean == 0 {
		return math.NaN()
	}
	ss := 0.0
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return math.Sqrt(ss/float64(n-1)) / math.Abs(mean)
}

// Interval is a two-sided interval [Lo, Hi].
type Interval struct{ Lo, Hi float64 }

// Overlaps reports whether the two intervals share any point.
func (a Interval) Overlaps(b Interval) bool { return a.Lo <= b.Hi && b.Lo <= a.Hi }

// BootstrapMedian is the percentile bootstrap interval of the median of v at
// Level, from Resamples resamples drawn with the fixed Seed. ok is false
// below MinN values.
//
// benchmath's median interval (order statistics chosen so that their
// binomial coverage is at least Level) is the textbook distribution-free
// alternative, and it keeps its promise where this one runs short. It is not
// used because it has no finite 95% interval below six runs (both ends are
// infinite for three or four, the lower one for five), and because the ratio
// intervals, which it cannot give, are bootstrapped: a median and a ratio
// from the same runs are better built the same way. MedianCoverage reports
// the real coverage of what this one gives.
func BootstrapMedian(v []float64) (iv Interval, ok bool) {
	if len(v) < MinN {
		return Interval{}, false
	}
	rng := newRand()
	buf := make([]float64, len(v))
	meds := make([]float64, Resamples)
	for i := range meds {
		meds[i] = resampledMedian(rng, v, buf)
	}
	return percentiles(meds), true
}

// BootstrapRatio is the percentile bootstrap interval of median(a)/median(b),
// resampling a and b independently. ok is false when either has fewer than
// MinN values or b's resampled medians reach zero.
func BootstrapRatio(a, b []float64) (iv Interval, ok bool) {
	if len(a) < MinN || len(b) < MinN {
		return Interval{}, false
	}
	rng := newRand()
	ba, bb := make([]float64, len(a)), make([]float64, len(b))
	ratios := make([]float64, Resamples)
	for i := range ratios {
		ma := resampledMedian(rng, a, ba)
		mb := resampledMedian(rng, b, bb)
		if mb == 0 {
			return Interval{}, false
		}
		ratios[i] = ma / mb
	}
	return percentiles(ratios), true
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(Seed, Seed)) }

func resampledMedian(rng *rand.Rand, v, buf []float64) float64 {
	for i := range buf {
		buf[i] = v[rng.IntN(len(v))]
	}
	slices.Sort(buf)
	return sortedMedian(buf)
}

// percentiles returns the (1-Level)/2 and (1+Level)/2 quantiles of x, sorting
// it in place; the nearest-rank definition keeps every bound a value that
// was actually produced.
func percentiles(x []float64) Interval {
	slices.Sort(x)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(x)))) - 1
		return x[min(max(i, 0), len(x)-1)]
	}
	return Interval{Lo: at((1 - Level) / 2), Hi: at((1 + Level) / 2)}
}

// MedianCoverage is a distribution-free lower bound on the probability that
// iv contains the true median of the population v was drawn from: the
// exact coverage of the widest pair of order statistics x(j) <= x(k) inside
// iv, P(x(j) <= m < x(k)) = sum_{i=j}^{k-1} C(n,i)/2^n. It shows how little a
// "95%" interval from three runs can promise (0.75 at best). benchmath
// computes this sum only for the interval it chooses itself, not for a given
// one, so it is summed here.
func MedianCoverage(v []float64, iv Interval) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	j := slices.IndexFunc(s, func(x float64) bool { return x >= iv.Lo })
	k := -1
	for i := n - 1; i >= 0; i-- {
		if s[i] <= iv.Hi {
			k = i
			break
		}
	}
	if j < 0 || k < 0 || k <= j {
		return 0
	}
	// 0-based indices j, k are order statistics j+1 and k+1.
	c := 0.0
	for i := j + 1; i <= k; i++ {
		c += binom(n, i)
	}
	c *= math.Pow(0.5, float64(n))
	return math.Round(c*1e4) / 1e4
}

func binom(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}
