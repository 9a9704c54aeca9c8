package claims

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

func schemaDoc(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	return doc
}

func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("compiling schema.json: %v", err)
	}
	return sch
}

// lookup follows a slash-separated path through the schema document.
func lookup(t *testing.T, doc map[string]any, path string) any {
	t.Helper()
	var node any = doc
	for _, k := range strings.Split(path, "/") {
		m, ok := node.(map[string]any)
		if !ok {
			t.Fatalf("schema has no %s", path)
		}
		node = m[k]
	}
	return node
}

func stringList(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestSchemaMatchesGo compares the schema's lists, patterns and keys with
// the Go code's.
func TestSchemaMatchesGo(t *testing.T) {
	doc := schemaDoc(t)
	if got := stringList(lookup(t, doc, "$defs/claim/properties/figure/enum")); !slices.Equal(got, FigureNames()) {
		t.Errorf("schema figures %v, Go figures %v", got, FigureNames())
	}
	var noAt []string
	for _, f := range Figures {
		if !f.TakesAt {
			noAt = append(noAt, f.Name)
		}
	}
	rules, _ := lookup(t, doc, "$defs/claim/allOf").([]any)
	atRule := rules[2].(map[string]any)["if"].(map[string]any)["properties"].(map[string]any)["figure"].(map[string]any)["enum"]
	if got := stringList(atRule); !slices.Equal(got, noAt) {
		t.Errorf("schema figures without at %v, Go %v", got, noAt)
	}
	for path, want := range map[string]string{
		"$defs/claim/properties/relation/pattern": relationPattern.String(),
		"$defs/claim/properties/id/pattern":       idPattern.String(),
		"$defs/claim/properties/scenario/pattern": scenarioPattern.String(),
	} {
		if got := lookup(t, doc, path); got != want {
			t.Errorf("%s = %q, Go has %q", path, got, want)
		}
	}
	for path, typ := range map[string]reflect.Type{
		"properties":             reflect.TypeFor[File](),
		"$defs/claim/properties": reflect.TypeFor[Claim](),
		"$defs/at/properties":    reflect.TypeFor[At](),
	} {
		var goKeys, schemaKeys []string
		for i := range typ.NumField() {
			if key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ","); key != "-" && key != "" {
				goKeys = append(goKeys, key)
			}
		}
		for k := range lookup(t, doc, path).(map[string]any) {
			schemaKeys = append(schemaKeys, k)
		}
		slices.Sort(goKeys)
		slices.Sort(schemaKeys)
		if !slices.Equal(goKeys, schemaKeys) {
			t.Errorf("%s: Go keys %v, schema keys %v", path, goKeys, schemaKeys)
		}
	}
}

// TestSchemaFixtures validates every fixture and committed file with the
// schema: the good ones must pass, and the bad ones must fail unless their
// first line says "# schema: accept" (a rule only the Go code checks).
func TestSchemaFixtures(t *testing.T) {
	sch := compiledSchema(t)
	files := append(append(fixtures(t, "good-*.yaml"), committed(t)...), fixtures(t, "bad-*.yaml")...)
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := yaml.Unmarshal(data, &v); err != nil {
				if strings.Contains(file, "bad-") {
					return // not YAML at all: nothing for a schema to judge
				}
				t.Fatal(err)
			}
			verr := sch.Validate(toJSON(t, v))
			wantOK := !strings.Contains(file, "bad-") || bytes.HasPrefix(data, []byte("# schema: accept"))
			switch {
			case wantOK && verr != nil:
				t.Errorf("schema rejects it: %v", verr)
			case !wantOK && verr == nil:
				t.Errorf("schema accepts it; Go rejects it (mark it \"# schema: accept\" if the rule is Go's only)")
			}
		})
	}
}

// toJSON turns decoded YAML into the values encoding/json would give.
func toJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
