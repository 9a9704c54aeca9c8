package scenarios

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder fills a Scenario from a yaml.Node tree by walking the Go types, so
// the accepted keys are exactly the struct tags and every problem keeps the
// node's line and column. It goes on after a problem to report all of them.
type decoder struct {
	file string
	errs Errors
	// pos maps each decoded field path to its value node, so validation
	// errors can point into the file.
	pos map[string]*yaml.Node
	// failed holds paths whose value could not be decoded; validation skips
	// them and everything below, which would only repeat the problem.
	failed map[string]bool
	// homes maps every key of the format to the mappings it belongs in,
	// for the hint on a key written at the wrong level.
	homes map[string][]string
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: map[string]*yaml.Node{}, failed: map[string]bool{}, homes: keyHomes()}
}

func (d *decoder) errorAt(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.failed[path] = true
	d.errorAt(n, path, format, args...)
}

// value decodes n into v, which must be addressable.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = n
	if w, ok := v.Addr().Interface().(worded); ok && n.Kind != yaml.MappingNode {
		if err := w.word(n); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, path, v)
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		if def, ok := elem.Interface().(defaulter); ok {
			def.setDefaults()
		}
		d.value(n, path, elem.Elem())
		if !d.failed[path] {
			v.Set(elem)
		}
	case reflect.Slice:
		d.sequence(n, path, v)
	case reflect.String:
		if d.scalar(n, path, "a string", "!!str") {
			v.SetString(n.Value)
		}
	case reflect.Int:
		var i int64
		if d.decodeScalar(n, path, "an integer", &i, "!!int") {
			v.SetInt(i)
		}
	case reflect.Float64:
		var f float64
		if d.decodeScalar(n, path, "a number", &f, "!!float", "!!int") {
			v.SetFloat(f)
		}
	case reflect.Bool:
		var b bool
		if d.decodeScalar(n, path, "true or false", &b, "!!bool") {
			v.SetBool(b)
		}
	default:
		panic("scenarios: no YAML decoding for " + v.Type().String())
	}
}

// scalar reports whether n is a scalar with one of the given tags and
// records a type error otherwise.
func (d *decoder) scalar(n *yaml.Node, path, want string, tags ...string) bool {
	if n.Kind == yaml.ScalarNode {
		for _, t := range tags {
			if n.ShortTag() == t {
				return true
			}
		}
	}
	hint := ""
	if want == "a string" && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		// cpusets such as 1 or 0,2 read as numbers unless quoted.
		hint = fmt.Sprintf(" (quote it: %q)", n.Value)
	}
	d.fail(n, path, "expected %s, got %s%s", want, describe(n), hint)
	return false
}

// decodeScalar decodes a scalar with one of the given tags into out. The
// tag is checked first so that YAML's own conversions (a quoted "5" into an
// int) do not make the file looser than the schema.
func (d *decoder) decodeScalar(n *yaml.Node, path, want string, out any, tags ...string) bool {
	if !d.scalar(n, path, want, tags...) {
		return false
	}
	if err := n.Decode(out); err != nil {
		// Only an explicit tag on a malformed value, or an integer
		// beyond 64 bits, gets here.
		d.fail(n, path, "expected %s, got %s (malformed or out of range)", want, describe(n))
		return false
	}
	return true
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			// The keys this would have brought in are unknown, so checks
			// below this mapping would only report their absence.
			d.fail(k, path, "keys must be plain names (anchors may be reused as values, but merge keys and complex keys are not supported)")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorAt(k, path, "duplicate key %q (first set at %d:%d)", k.Value, first.Line, first.Column)
			continue
		}
		seen[k.Value] = k
		idx := -1
		for _, f := range fields {
			if f.key == k.Value {
				idx = f.index
			}
		}
		if idx < 0 {
			d.errorAt(k, path, "%s", unknownKey(k.Value, keysOf(fields), d.homes))
			continue
		}
		d.value(val, joinPath(path, k.Value), v.Field(idx))
	}
}

func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(item, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
	}
	v.Set(s)
}

// unknownKey explains an unknown key: where it belongs if it is a key of
// another mapping, else the closest allowed key, and always the allowed list.
func unknownKey(key string, allowed []string, byKey map[string][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown key %q", key)
	if homes := byKey[key]; len(homes) > 0 {
		where := make([]string, len(homes))
		for i, h := range homes {
			where[i] = "in " + h
			if h == "" {
				where[i] = "at the top level"
			}
		}
		fmt.Fprintf(&b, " (it belongs %s)", strings.Join(where, " or "))
	} else if s := closest(key, allowed); s != "" {
		fmt.Fprintf(&b, " (did you mean %q?)", s)
	}
	fmt.Fprintf(&b, "; allowed: %s", strings.Join(allowed, ", "))
	return b.String()
}

// describe names a node's type and value for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "an unsupported YAML node"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	case "!!null":
		return "an empty value"
	}
	return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
}
