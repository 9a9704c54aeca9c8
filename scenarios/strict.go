package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Strict decoding for the project's other YAML formats (claims files): the
// same rules as a scenario's, so that every input file of the lab is as
// strict as the next and its errors read alike.

// Decoded is what DecodeStrict learnt about a file besides its values,
// for the caller's own validation to point into the file.
type Decoded struct {
	File string
	// Nodes maps each decoded field path ("claims[2].relation") to its
	// value node.
	Nodes map[string]*yaml.Node
	// Failed holds the paths whose value could not be decoded; their
	// problem is already reported.
	Failed map[string]bool
}

// DecodeStrict decodes the one YAML document in data into out, a pointer
// to a struct, as strictly as Parse decodes a scenario: only the keys of
// the struct tags, no duplicate keys or merge keys, YAML types as the Go
// types say (a quoted "5" is no integer), yaml.Unmarshaler for the rest.
// kind names the file in messages ("claims file") and need what an empty
// one lacks ("claims"). The errors are every decoding problem, unsorted;
// validation adds its own and sorts them with SortByPosition.
func DecodeStrict(filename string, data []byte, out any, kind, need string) (*Decoded, Errors) {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic("scenarios: DecodeStrict needs a pointer to a struct, not " + v.Type().String())
	}
	root, err := readOne(filename, data, kind, need)
	if err != nil {
		return nil, Errors{err}
	}
	d := newDecoder(filename)
	d.homes = homesOf(v.Elem().Type())
	d.value(root, "", v.Elem())
	return &Decoded{File: filename, Nodes: d.pos, Failed: d.failed}, d.errs
}

// Errorf is a problem at path, placed at the nearest decoded node at or
// above it; nil when path or a parent of it failed to decode, which would
// only repeat a problem already reported.
func (d *Decoded) Errorf(path, format string, args ...any) *Error {
	e := &Error{File: d.File, Path: path, Msg: fmt.Sprintf(format, args...)}
	located := false
	for p, ok := path, true; ok; p, ok = parentPath(p) {
		if d.Failed[p] {
			return nil
		}
		if n := d.Nodes[p]; n != nil && !located {
			e.Line, e.Column, located = n.Line, n.Column, true
		}
	}
	return e
}

// Absent reports whether the file lacks the key at path.
func (d *Decoded) Absent(path string) bool { return d.Nodes[path] == nil }

// SortByPosition orders errors as they appear in the file; errors without
// a position keep their relative order and go last.
func (es Errors) SortByPosition() { es.sortByPosition() }

// Closest returns the candidate a mistyped word was most likely meant to
// be, or "" when none is near enough to be a useful hint.
func Closest(word string, candidates []string) string { return closest(word, candidates) }

// Describe names a node's type and value for "expected X, got Y" messages
// ("string \"fast\"", "a list").
func Describe(n *yaml.Node) string { return describe(n) }

// readOne returns the root node of the only YAML document in data.
func readOne(filename string, data []byte, kind, need string) (*yaml.Node, *Error) {
	empty := &Error{File: filename, Msg: fmt.Sprintf("empty file; a %s needs %s", kind, need)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, empty
		}
		return nil, syntaxError(filename, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(filename, err)
	default:
		return nil, &Error{File: filename, Line: next.Line, Column: next.Column,
			Msg: fmt.Sprintf("a second YAML document starts here; a %s holds exactly one", kind)}
	}
	if len(doc.Content) == 0 {
		return nil, empty
	}
	return doc.Content[0], nil
}
