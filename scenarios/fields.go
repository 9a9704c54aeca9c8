package scenarios

import (
	"reflect"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// field is one YAML key of a struct type.
type field struct {
	key   string
	index int
}

// fieldsOf lists the YAML keys of struct type t in declaration order; the
// order is also the order error messages list allowed keys in.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		out = append(out, field{key, i})
	}
	return out
}

func keysOf(fs []field) []string {
	keys := make([]string, len(fs))
	for i, f := range fs {
		keys[i] = f.key
	}
	return keys
}

// keyHomes maps every key of the scenario format to the mappings it may
// appear in ("" for the top level, "load.steps" for each step), so a key
// written at the wrong level can be pointed to where it belongs.
var keyHomes = sync.OnceValue(func() map[string][]string { return homesOf(reflect.TypeFor[Scenario]()) })

// homesOf maps every key of the format rooted at type t to the mappings it
// may appear in. A type that decodes itself (yaml.Unmarshaler) has no keys
// of its own.
func homesOf(t reflect.Type) map[string][]string {
	homes := map[string][]string{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for _, f := range fieldsOf(t) {
			homes[f.key] = append(homes[f.key], path)
			ft := t.Field(f.index).Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshalerType) {
				walk(ft, joinPath(path, f.key))
			}
		}
	}
	walk(t, "")
	return homes
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// parentPath strips the last key or index from path; ok is false for the
// top level, which has no parent.
func parentPath(path string) (parent string, ok bool) {
	if path == "" {
		return "", false
	}
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return "", true
	}
	return path[:i], true
}
