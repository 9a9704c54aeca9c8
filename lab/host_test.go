package lab

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestGovernors(t *testing.T) {
	cases := []struct {
		name string
		cpus map[string]string // cpu dir -> governor ("" = no cpufreq)
		want string
	}{
		{"no cpufreq, as in most VMs", map[string]string{"cpu0": "", "cpu1": ""}, ""},
		{"all the same", map[string]string{"cpu0": "performance", "cpu1": "performance"}, "performance"},
		{"mixed, each named once", map[string]string{"cpu0": "powersave", "cpu1": "performance", "cpu2": "powersave"}, "performance,powersave"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sys := t.TempDir()
			for cpu, g := range c.cpus {
				dir := filepath.Join(sys, cpu)
				if g != "" {
					dir = filepath.Join(dir, "cpufreq")
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if g != "" {
					if err := os.WriteFile(filepath.Join(dir, "scaling_governor"), []byte(g+"\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got := governors(sys); got != c.want {
				t.Errorf("governors = %q, want %q", got, c.want)
			}
		})
	}
}

func TestDescribeSource(t *testing.T) {
	s := DescribeSource(context.Background(), "..")
	if s == nil || len(s.Commit) != 40 {
		t.Fatalf("DescribeSource(checkout) = %+v, want a 40-digit commit", s)
	}
	if DescribeSource(context.Background(), t.TempDir()) != nil {
		t.Error("a folder outside any checkout has a commit")
	}
}
