package report

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// A Reporter renders one view of results to w and returns the first error
// writing it: the table, report.md, a diff.
type Reporter func(w io.Writer) error

// writer writes formatted text; renderers write freely and learn of the
// first failure once, from newWriter's done.
type writer func(format string, a ...any)

func newWriter(out io.Writer) (w writer, done func() error) {
	var err error
	w = func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(out, format, a...)
		}
	}
	return w, func() error { return err }
}

// DefaultDir is where the report of a results file goes: a folder beside
// it with the same name, results/<scenario>-<time>/.
func DefaultDir(resultsPath string) string {
	return strings.TrimSuffix(resultsPath, filepath.Ext(resultsPath))
}

// Write renders f alone into dir: report.md and every plot as SVG and
// PNG, as WriteSet does for several files. It returns the path of
// report.md.
func Write(f *File, dir string) (string, error) { return WriteSet([]*File{f}, nil, dir) }

// WriteFile renders r into the file at path.
func WriteFile(path string, r Reporter) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(r(out), out.Close())
}
