package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The generated files are committed so that building needs no clang; this
// catches a probes.c (or vmlinux.h) edited without `make bpf`, by running
// gen.go's own go:generate line into a temporary directory.
func TestGeneratedNotStale(t *testing.T) {
	args := generateArgs(t)
	cc := envOr("BPF2GO_CC", "clang")
	// bpf2go's own default: llvm-strip with clang's version suffix.
	strip := envOr("BPF2GO_STRIP", "llvm-strip"+strings.TrimPrefix(cc, "clang"))
	for _, bin := range []string{cc, strip} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: %s is not installed, so the committed bpf2go output cannot be regenerated to compare (%v)", bin, err)
		}
	}

	dir := t.TempDir()
	cmd := exec.Command("go", append([]string{"tool", "bpf2go", "-output-dir", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf", "GOFILE=gen.go")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}

	fresh, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) == 0 {
		t.Fatalf("%s wrote nothing", cmd)
	}
	for _, e := range fresh {
		want, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(e.Name())
		if err != nil {
			t.Errorf("%s is generated but not committed: run `make bpf`", e.Name())
			continue
		}
		if !bytes.Equal(got, want) {
			version, _ := exec.Command(cc, "--version").Output()
			first, _, _ := strings.Cut(string(version), "\n")
			t.Errorf("%s is stale: regenerating it gives different bytes; run `make bpf` (output also depends on the compiler, here %s)", e.Name(), first)
		}
	}
}

// generateArgs returns the bpf2go arguments of gen.go's go:generate line.
func generateArgs(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "//go:generate go tool bpf2go "
	for line := range strings.Lines(string(src)) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("gen.go has no %q line", strings.TrimSpace(prefix))
	return nil
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}
