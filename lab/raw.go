package lab

import (
	"fmt"
	"os"
	"path/filepath"
)

// RawFile names the file holding one step's raw results under Options.RawDir.
func RawFile(scenario, runID, proxy string, rep, step int) string {
	return fmt.Sprintf("%s-%s-%s-r%d-s%d.gob", scenario, runID, proxy, rep, step)
}

// rawFile creates the raw results file of a step, or returns nil when the
// run keeps no raw results.
func (r *runner) rawFile(proxy string, rep, step int) (*os.File, error) {
	if r.o.RawDir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(r.o.RawDir, 0o755); err != nil {
		return nil, fmt.Errorf("raw results: %w", err)
	}
	f, err := os.Create(filepath.Join(r.o.RawDir, RawFile(r.sc.Name, r.o.RunID, proxy, rep, step)))
	if err != nil {
		return nil, fmt.Errorf("raw results: %w", err)
	}
	return f, nil
}
