package loadgen

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStepResultJSONKeys pins the JSON shape of a step, which is part of the
// results file: testdata/step_result.keys lists every key path, with the keys
// of the two count maps normalised.
func TestStepResultJSONKeys(t *testing.T) {
	golden, err := os.ReadFile("testdata/step_result.keys")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Fields(string(golden))

	cases := []struct {
		name   string
		result *StepResult
		absent []string
	}{
		{
			name: "interrupted, saturated, with errors",
			result: record(Step{Rate: 10, Duration: 2 * time.Second}, []sample{
				{seq: 0, sent: 100 * time.Millisecond, latency: time.Millisecond, code: 200},
				{seq: 1, sent: 200 * time.Millisecond, latency: time.Millisecond, code: 503, err: "503 Service Unavailable"},
			}, time.Second).result(4, true),
		},
		{
			name:   "clean step leaves out the optional keys",
			result: record(Step{Rate: 10, Duration: time.Second}, onSchedule(10, 10, time.Millisecond), 0).result(4, false),
			absent: []string{"saturation", "saturation_cause", "interrupted", "errors.{text}"},
		},
		{
			name:   "unpaced step has no intended latency",
			result: record(Step{Rate: 0, Duration: time.Second}, onSchedule(10, 10, time.Millisecond), 0).result(4, false),
			absent: append([]string{"saturation", "saturation_cause", "interrupted", "errors.{text}", "timeline[].p99_intended"},
				intendedKeys(all)...),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.result)
			if err != nil {
				t.Fatal(err)
			}
			var doc any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			got := keyPaths(doc)
			want := slices.DeleteFunc(slices.Clone(all), func(k string) bool { return slices.Contains(tc.absent, k) })
			if !slices.Equal(got, want) {
				t.Errorf("JSON keys:\n got %v\nwant %v\nfrom %s", got, want, b)
			}
		})
	}
}

// intendedKeys picks the key paths of latency_intended out of all.
func intendedKeys(all []string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(k string) bool { return !strings.HasPrefix(k, "latency_intended") })
}

// TestStepResultJSONRoundTrip checks that a decoded step equals the encoded
// one, the intended latency and the per-second intended p99 included, and
// that its histograms decode to the summary they came with.
func TestStepResultJSONRoundTrip(t *testing.T) {
	samples := append(onSchedule(100, 120, time.Millisecond),
		sample{seq: 120, sent: 1800 * time.Millisecond, slot: 1510 * time.Millisecond, latency: 2 * time.Millisecond, code: 200})
	for _, rate := range []int{100, 0} {
		t.Run(strconv.Itoa(rate)+"/s", func(t *testing.T) {
			want := record(Step{Rate: rate, Duration: 2 * time.Second}, samples, 0).result(4, false)
			b, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			var got StepResult
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("decoded %+v\nwant %+v", got, *want)
			}
			if (got.IntendedLatency != nil) != (rate > 0) {
				t.Fatalf("latency_intended %+v at %d/s", got.IntendedLatency, rate)
			}
			if rate == 0 {
				return
			}
			if l := got.IntendedLatency; l.Max != 292_000 || l.P99 != 1000 {
				t.Errorf("latency_intended %+v, want the late hit's 290 ms wait on top of its 2 ms", l)
			}
			if h := decodeHist(t, got.IntendedLatency.Histogram); h.Max() < 292_000 || h.TotalCount() != int64(got.Requests) {
				t.Errorf("intended histogram max %d count %d", h.Max(), h.TotalCount())
			}
			if s := got.Timeline[1]; s.P99Intended < 290_000 || s.P99 > 2100 {
				t.Errorf("second 1 = %+v, want the wait in p99_intended only", s)
			}
		})
	}
}

// keyPaths lists the sorted, distinct key paths of a decoded JSON document.
func keyPaths(doc any) []string {
	countMaps := map[string]string{"status_codes": "{code}", "errors": "{text}"}
	seen := map[string]bool{}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			if name, ok := countMaps[path]; ok {
				for range x {
					seen[path+"."+name] = true
				}
				return
			}
			for k, e := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				seen[p] = true
				walk(e, p)
			}
		case []any:
			for _, e := range x {
				walk(e, path+"[]")
			}
		}
	}
	walk(doc, "")
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
