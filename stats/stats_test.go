package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/perf/benchmath"
)

func TestMedianAndCV(t *testing.T) {
	cases := []struct {
		name   string
		in     []float64
		median float64
		cv     float64 // NaN: undefined
	}{
		{"odd count", []float64{3, 1, 2}, 2, 0.5},
		{"even count averages the middle pair", []float64{4, 1, 3, 2}, 2.5, math.Sqrt(5.0/3) / 2.5},
		{"one value has no spread", []float64{7}, 7, math.NaN()},
		{"zero mean has no relative spread", []float64{-1, 1}, 0, math.NaN()},
		{"constant values", []float64{5, 5, 5}, 5, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Median(c.in); got != c.median {
				t.Errorf("Median(%v) = %v, want %v", c.in, got, c.median)
			}
			got := CV(c.in)
			if math.IsNaN(c.cv) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-c.cv) > 1e-12) {
				t.Errorf("CV(%v) = %v, want %v", c.in, got, c.cv)
			}
		})
	}
}

func TestBootstrapMedianNeedsThreeValues(t *testing.T) {
	for _, v := range [][]float64{nil, {1}, {1, 2}} {
		if _, ok := BootstrapMedian(v); ok {
			t.Errorf("BootstrapMedian(%v) gave an interval; below %d values none can be given", v, MinN)
		}
	}
}

// With three values a resampled median is the smallest value with
// probability 7/27, so the 2.5% and 97.5% points are the extremes: the
// interval is the whole range, and its real coverage is only 75%.
func TestBootstrapMedianOfThreeIsTheRange(t *testing.T) {
	v := []float64{10, 30, 20}
	iv, ok := BootstrapMedian(v)
	if !ok || iv != (Interval{10, 30}) {
		t.Fatalf("BootstrapMedian(%v) = %v, %v; want [10, 30]", v, iv, ok)
	}
	if c := MedianCoverage(v, iv); c != 0.75 {
		t.Errorf("coverage %v, want 0.75", c)
	}
}

func TestBootstrapIsReproducible(t *testing.T) {
	v := []float64{5, 9, 2, 7, 4, 8, 1, 6, 3}
	a, _ := BootstrapMedian(v)
	b, _ := BootstrapMedian(v)
	if a != b {
		t.Errorf("two bootstraps of the same data differ: %v and %v", a, b)
	}
}

// The interval must cover the true median about as often as it claims. For
// each of 400 seeded samples of 15 draws from a skewed distribution
// (exponential, median ln 2) the interval either holds ln 2 or not; the
// share that do must be near 95%. The percentile bootstrap of a median runs
// a little short at small n, so the bounds allow 0.90..0.99.
func TestBootstrapMedianCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 42))
	const trials, n = 400, 15
	truth := math.Ln2
	hit := 0
	for range trials {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.ExpFloat64()
		}
		iv, ok := BootstrapMedian(v)
		if !ok {
			t.Fatal("no interval for 15 values")
		}
		if iv.Lo <= truth && truth <= iv.Hi {
			hit++
		}
	}
	share := float64(hit) / trials
	if share < 0.90 || share > 0.99 {
		t.Errorf("interval covered the true median in %.1f%% of samples, want about 95%%", 100*share)
	}
}

func TestBootstrapRatio(t *testing.T) {
	a := []float64{200, 210, 190, 205, 195}
	b := []float64{100, 105, 95, 102, 98}
	iv, ok := BootstrapRatio(a, b)
	if !ok {
		t.Fatal("no interval")
	}
	if iv.Lo <= 1 || iv.Lo > 2 || iv.Hi < 2 || iv.Hi > 2.3 {
		t.Errorf("ratio interval %v, want it around 2 and clear of 1", iv)
	}
	same, _ := BootstrapRatio(a, a)
	if same.Lo > 1 || same.Hi < 1 {
		t.Errorf("ratio of a sample to itself %v excludes 1", same)
	}
	if _, ok := BootstrapRatio(a, []float64{0, 0, 0}); ok {
		t.Error("a ratio to zero got an interval")
	}
}

func TestOverlaps(t *testing.T) {
	cases := []struct {
		a, b Interval
		want bool
	}{
		{Interval{1, 2}, Interval{3, 4}, false},
		{Interval{1, 3}, Interval{2, 4}, true},
		{Interval{1, 2}, Interval{2, 3}, true},
		{Interval{3, 4}, Interval{1, 2}, false},
	}
	for _, c := range cases {
		if got := c.a.Overlaps(c.b); got != c.want {
			t.Errorf("%v overlaps %v = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// Reference p-values are R's wilcox.test(a, b, exact = TRUE) where R can
// compute them, and hand counts of the splits where it falls back.
func TestMannWhitney(t *testing.T) {
	cases := []struct {
		name        string
		a, b        []float64
		u, p, minP  float64
		significant bool
	}{
		{"identical samples", []float64{1, 2, 3, 4, 5}, []float64{1, 2, 3, 4, 5}, 12.5, 1, 4.0 / 252, false},
		{"shifted apart, five each", []float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 0, 2.0 / 252, 2.0 / 252, true},
		{"shifted apart, three each: the best p is 0.1", []float64{1, 2, 3}, []float64{4, 5, 6}, 0, 0.1, 0.1, false},
		{"shifted the other way", []float64{6, 7, 8, 9}, []float64{1, 2, 3, 4}, 16, 2.0 / 70, 2.0 / 70, true},
		{"interleaved", []float64{1, 3, 5, 7}, []float64{2, 4, 6, 8}, 6, 0.6857142857142857, 2.0 / 70, false},
		{"ties count one half", []float64{1, 2, 2}, []float64{2, 3, 4}, 1, 0.3, 0.3, false},
		// With ties the distribution of U is not symmetric: the p-value
		// doubles the tail the observed U lies in, whichever sample is first.
		{"ties, larger sample first", []float64{3}, []float64{1, 1, 2}, 3, 0.5, 0.5, false},
		{"ties, larger sample second", []float64{1, 1, 2}, []float64{3}, 0, 0.5, 0.5, false},
		{"ties on one side", []float64{4}, []float64{2, 2, 2, 2}, 4, 0.4, 0.4, false},
		{"ties inside one sample only", []float64{2, 2, 3}, []float64{9, 10, 14, 9}, 0, 2.0 / 35, 2.0 / 35, false},
		{"all values equal", []float64{5, 5, 5}, []float64{5, 5, 5}, 4.5, 1, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := MannWhitney(c.a, c.b)
			if !ok || !got.Exact {
				t.Fatalf("MannWhitney = %+v, %v; want an exact test", got, ok)
			}
			if got.U != c.u || math.Abs(got.P-c.p) > 1e-12 || math.Abs(got.MinP-c.minP) > 1e-12 {
				t.Errorf("U = %v, p = %v, min p = %v; want %v, %v, %v", got.U, got.P, got.MinP, c.u, c.p, c.minP)
			}
			if got.Significant() != c.significant {
				t.Errorf("significant = %v, want %v", got.Significant(), c.significant)
			}
		})
	}
}

func TestMannWhitneyEmpty(t *testing.T) {
	if _, ok := MannWhitney(nil, []float64{1}); ok {
		t.Error("a test on an empty sample gave a result")
	}
}

// For benchmath's own distribution-free median interval, MedianCoverage must
// give the coverage benchmath states for it: both are the binomial sum over
// the same order statistics. Below six runs benchmath's interval has an
// infinite end at 95%, so the comparison starts there.
func TestMedianCoverageAgreesWithBenchmath(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	th := &benchmath.Thresholds{CompareAlpha: Alpha}
	for n := 3; n <= 30; n++ {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		s := benchmath.AssumeNothing.Summary(benchmath.NewSample(slices.Clone(v), th), Level)
		finite := !math.IsInf(s.Lo, 0) && !math.IsInf(s.Hi, 0)
		if finite != (n >= 6) {
			t.Fatalf("n = %d: benchmath's interval [%v, %v]; want it finite from 6 runs on", n, s.Lo, s.Hi)
		}
		if !finite {
			continue
		}
		if got := MedianCoverage(v, Interval{s.Lo, s.Hi}); math.Abs(got-s.Confidence) > 5e-5 {
			t.Errorf("n = %d: MedianCoverage of [%v, %v] = %v, benchmath says %v", n, s.Lo, s.Hi, got, s.Confidence)
		}
	}
}
