package scenarios

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// schemaDoc is schema.json as plain JSON values, for walking by hand.
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

// compiledSchema is schema.json compiled for validation.
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

// resolve follows a local "$ref" such as "#/$defs/step".
func resolve(t *testing.T, doc, node map[string]any) map[string]any {
	t.Helper()
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		t.Fatalf("unsupported $ref %q", ref)
	}
	defs, _ := doc["$defs"].(map[string]any)
	def, ok := defs[name].(map[string]any)
	if !ok {
		t.Fatalf("$ref %q points nowhere", ref)
	}
	return def
}

// TestSchemaMatchesTypes walks the Go types with reflect and the schema by
// hand side by side: at every level the keys must agree both ways, every
// mapping must forbid other keys, and each leaf must have the matching type.
func TestSchemaMatchesTypes(t *testing.T) {
	doc := schemaDoc(t)
	var walk func(typ reflect.Type, node map[string]any, path string)
	walk = func(typ reflect.Type, node map[string]any, path string) {
		node = resolve(t, doc, node)
		if node["type"] != "object" || node["additionalProperties"] != false {
			t.Errorf("%s: schema must be an object with additionalProperties false", orTop(path))
		}
		props, _ := node["properties"].(map[string]any)
		var goKeys, schemaKeys []string
		for i := range typ.NumField() {
			key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			if key == "-" {
				continue
			}
			goKeys = append(goKeys, key)
			prop, ok := props[key].(map[string]any)
			if !ok {
				continue // reported by the key comparison below
			}
			leaf(t, doc, typ.Field(i).Type, prop, joinPath(path, key), walk)
		}
		for k := range props {
			schemaKeys = append(schemaKeys, k)
		}
		sort.Strings(goKeys)
		sort.Strings(schemaKeys)
		if !slices.Equal(goKeys, schemaKeys) {
			t.Errorf("%s: Go keys %v, schema keys %v", orTop(path), goKeys, schemaKeys)
		}
	}
	walk(reflect.TypeFor[Scenario](), doc, "")
}

func orTop(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// leaf checks the schema of one field against its Go type, descending into
// structs through walk.
func leaf(t *testing.T, doc map[string]any, typ reflect.Type, prop map[string]any, path string, walk func(reflect.Type, map[string]any, string)) {
	t.Helper()
	switch typ {
	case reflect.TypeFor[Duration]():
		if prop["$ref"] != "#/$defs/duration" {
			t.Errorf("%s: a Duration must use #/$defs/duration, schema has %v", path, prop)
		}
		return
	case reflect.TypeFor[ByteSize]():
		if prop["$ref"] != "#/$defs/size" {
			t.Errorf("%s: a ByteSize must use #/$defs/size, schema has %v", path, prop)
		}
		return
	case reflect.TypeFor[Share]():
		if prop["$ref"] != "#/$defs/share" {
			t.Errorf("%s: a Share must use #/$defs/share, schema has %v", path, prop)
		}
		return
	case reflect.TypeFor[Events]():
		// A word or a mapping of its fields: the mapping is the second form.
		if prop["$ref"] != "#/$defs/events" {
			t.Errorf("%s: Events must use #/$defs/events, schema has %v", path, prop)
			return
		}
		forms, _ := lookup(t, doc, "$defs/events/oneOf").([]any)
		if len(forms) != 2 {
			t.Fatalf("$defs/events/oneOf has %d forms, want a word and a mapping", len(forms))
		}
		mapping, _ := forms[1].(map[string]any)
		walk(typ, mapping, path)
		return
	}
	prop = resolve(t, doc, prop)
	want := map[reflect.Kind]string{
		reflect.String: "string", reflect.Int: "integer", reflect.Float64: "number",
		reflect.Bool: "boolean", reflect.Slice: "array",
	}
	switch typ.Kind() {
	case reflect.Pointer:
		walk(typ.Elem(), prop, path)
	case reflect.Struct:
		walk(typ, prop, path)
	case reflect.String:
		// A closed set of strings is an enum without a type.
		if _, isEnum := prop["enum"]; !isEnum && prop["type"] != "string" {
			t.Errorf("%s: want type string or an enum, schema has %v", path, prop)
		}
	default:
		if prop["type"] != want[typ.Kind()] {
			t.Errorf("%s: Go %s wants schema type %q, schema has %v", path, typ, want[typ.Kind()], prop["type"])
		}
		if typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.Struct {
			items, _ := prop["items"].(map[string]any)
			walk(typ.Elem(), items, path+"[]")
		}
	}
}

// lookup follows a slash-separated path of object keys (and array
// indexes) through the schema.
func lookup(t *testing.T, doc map[string]any, path string) any {
	t.Helper()
	var cur any = doc
	for part := range strings.SplitSeq(path, "/") {
		if list, ok := cur.([]any); ok {
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(list) {
				t.Fatalf("schema path %s: no item %q", path, part)
			}
			cur = list[i]
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("schema path %s: %q is not an object", path, part)
		}
		cur, ok = m[part]
		if !ok {
			t.Fatalf("schema path %s: no %q", path, part)
		}
	}
	return cur
}

// TestSchemaConstantsMatchGo compares the patterns, enums and bounds the
// schema repeats with the ones Parse uses.
func TestSchemaConstantsMatchGo(t *testing.T) {
	doc := schemaDoc(t)
	strs := func(ss []string) []any {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	tests := []struct {
		path string
		want any
	}{
		{"properties/name/pattern", namePattern.String()},
		{"properties/name/maxLength", float64(maxNameLen)},
		{"properties/proxies/items/enum", strs(ProxyNames())},
		{"properties/load/properties/method/enum", strs(Methods)},
		{"properties/load/allOf/0/then/properties/method/enum", strs(BodyMethods)},
		{"properties/load/properties/model/enum", strs(LoadModels)},
		{"$defs/share/anyOf/0/maximum", float64(maxShare)},
		{"$defs/share/anyOf/1/pattern", sharePattern.String()},
		{"properties/load/properties/path/pattern", pathPattern.String()},
		{"properties/load/properties/connections/maximum", float64(maxConnections)},
		{"properties/probes/properties/mode/enum", strs(ProbeModes)},
		{"$defs/duration/pattern", durationPattern.String()},
		{"$defs/size/anyOf", []any{
			map[string]any{"type": "integer", "minimum": float64(0)},
			map[string]any{"type": "string", "pattern": sizePattern.String()},
		}},
		{"$defs/cpuset/pattern", "^$|" + cpusetPattern.String()},
		{"$defs/events/oneOf/0/enum", strs(EventWords)},
		{"$defs/events/oneOf/1/properties/sample/maximum", float64(MaxSample)},
		{"$defs/events/oneOf/1/properties/sample/minimum", float64(2)},
	}
	for _, tt := range tests {
		if got := lookup(t, doc, tt.path); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("schema %s = %v, Go has %v", tt.path, got, tt.want)
		}
	}
}

// yamlToJSON converts a YAML file into the value the schema validates, as an
// editor plugin would.
func yamlToJSON(file string) (any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(j))
}

func TestSchemaAcceptsGoodFiles(t *testing.T) {
	sch := compiledSchema(t)
	committed, _ := filepath.Glob("*.yaml")
	for _, file := range append(committed, fixtures(t, "good-*.yaml")...) {
		v, err := yamlToJSON(file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s: schema rejects a file Parse accepts: %v", file, err)
		}
	}
}

// TestSchemaRejectsBadFiles requires the schema to reject every bad fixture
// unless the rule is one JSON Schema cannot state or the file is not JSON
// data at all. Both lists are checked, so they shrink when the schema grows.
func TestSchemaRejectsBadFiles(t *testing.T) {
	schemaAccepts := map[string]string{
		"bad-multi-doc.yaml":     "a YAML-to-JSON converter reads only the first document",
		"bad-perf-pages.yaml":    "power of two",
		"bad-step-duration.yaml": "a minimum on a duration string",
		"bad-overhead.yaml":      "a rule across probes and load",
	}
	notJSON := map[string]string{
		"bad-syntax.yaml":        "not YAML",
		"bad-duplicate-key.yaml": "a JSON object cannot hold a key twice",
		"bad-explicit-tag.yaml":  "the tagged values have no JSON form",
	}
	sch := compiledSchema(t)
	for _, file := range fixtures(t, "bad-*.yaml") {
		base := filepath.Base(file)
		if _, err := Parse(file, mustRead(t, file)); err == nil {
			t.Errorf("%s: Parse accepts it", base)
		}
		v, err := yamlToJSON(file)
		if _, ok := notJSON[base]; ok {
			if err == nil {
				t.Errorf("%s: listed as not JSON data but converts; check it against the schema instead", base)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", base, err)
			continue
		}
		err = sch.Validate(v)
		if _, ok := schemaAccepts[base]; ok {
			if err != nil {
				t.Errorf("%s: listed as beyond the schema but the schema rejects it; drop it from the list", base)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: schema accepts a file Parse rejects", base)
		}
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
