package scenarios

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadFile reads the scenario file at path and parses it with Parse. (The
// name Load belongs to the load section's type.)
func LoadFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes one scenario strictly, applies defaults and validates it.
// filename labels errors and is kept in Scenario.File. On failure the
// scenario is nil and the error is an Errors value listing every problem in
// file order.
func Parse(filename string, data []byte) (*Scenario, error) {
	root, err := readDocument(filename, data)
	if err != nil {
		return nil, err
	}
	s := &Scenario{File: filename}
	s.setDefaults()
	d := newDecoder(filename)
	d.value(root, "", reflect.ValueOf(s).Elem())
	v := &validator{file: filename, pos: d.pos, failed: d.failed}
	v.scenario(s)
	errs := append(d.errs, v.errs...)
	if len(errs) > 0 {
		errs.sortByPosition()
		return nil, errs
	}
	return s, nil
}

// readDocument returns the root node of the only YAML document in data.
func readDocument(filename string, data []byte) (*yaml.Node, error) {
	root, err := readOne(filename, data, "scenario file", "at least name and load")
	if err != nil {
		return nil, Errors{err}
	}
	return root, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// syntaxError turns a yaml.v3 parser error, which carries a line but no
// column, into an Error.
func syntaxError(filename string, err error) *Error {
	msg := err.Error()
	e := &Error{File: filename}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	e.Msg = "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
	return e
}
