package loadgen

import (
	"encoding/json"
	"os"
	"slices"
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
