package lab

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DescribeHost gathers what a reader needs to judge whether results from two
// machines can be compared.
func DescribeHost(dockerVersion string) Host {
	h := Host{Cores: runtime.NumCPU(), DockerVersion: dockerVersion}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	h.CPUModel = procField("/proc/cpuinfo", "model name")
	if mhz, err := strconv.ParseFloat(procField("/proc/cpuinfo", "cpu MHz"), 64); err == nil {
		h.CPUMHz = mhz
	}
	h.CPUGovernor = governors("/sys/devices/system/cpu")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		n, _ := strconv.ParseInt(strings.Fields(kb)[0], 10, 64)
		h.MemoryBytes = n * 1024
	}
	return h
}

// governors lists the distinct cpufreq scaling governors of the CPUs under
// sys ("performance", or "powersave,performance" when they differ); "" when
// the kernel exposes none, as in most virtual machines. A powersave or
// ondemand governor lets the clock move under load, which is noise.
func governors(sys string) string {
	paths, _ := filepath.Glob(filepath.Join(sys, "cpu[0-9]*", "cpufreq", "scaling_governor"))
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if g := strings.TrimSpace(string(b)); err == nil && g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// procField returns the value of the first "key: value" line for key.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// DescribeSource names the lab checkout the binaries were built from: its
// commit, and whether uncommitted changes could make the measured code
// differ from that commit. Nil outside a git checkout.
func DescribeSource(ctx context.Context, root string) *Source {
	commit, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		return nil
	}
	s := &Source{Commit: strings.TrimSpace(string(commit))}
	status, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	s.Dirty = err != nil || len(strings.TrimSpace(string(status))) > 0
	return s
}
