package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultDir is where the report of a results file goes: a folder beside
// it with the same name, results/<scenario>-<time>/.
func DefaultDir(resultsPath string) string {
	return strings.TrimSuffix(resultsPath, filepath.Ext(resultsPath))
}

// Write renders f into dir: report.md and every plot as SVG and PNG. It
// returns the path of report.md.
func Write(f *File, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	plots, err := Plots(f, dir)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "report.md")
	if err := os.WriteFile(path, []byte(Markdown(f, plots)), 0o644); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	return path, nil
}
