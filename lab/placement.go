package lab

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proxylab/proxylab/threads"
)

// Placement says which CPUs each party of a run may use and how much memory
// the proxy gets. It is written into the results file, because a number is
// only comparable with another measured under the same placement.
type Placement struct {
	ProxyCPUs    string `json:"proxy_cpus"`
	UpstreamCPUs string `json:"upstream_cpus"`
	LoadgenCPUs  string `json:"loadgen_cpus"`
	ProxyMemory  int64  `json:"proxy_memory"`
}

// DefaultProxyMemory is generous on purpose: the limit is there to stop a
// runaway proxy from taking the host down, not to squeeze it.
const DefaultProxyMemory = 1 << 30

// DefaultPlacement gives the proxy cores of its own, so that the proxy under
// test never shares a core with the load generator or the origin; on a host
// too small for that, sharing is unavoidable and the results say so through
// the placement they record.
func DefaultPlacement(cpus int) Placement {
	p := Placement{ProxyMemory: DefaultProxyMemory}
	switch {
	case cpus <= 1:
		p.ProxyCPUs, p.UpstreamCPUs, p.LoadgenCPUs = "0", "0", "0"
	case cpus == 2:
		p.ProxyCPUs, p.UpstreamCPUs, p.LoadgenCPUs = "1", "0", "0"
	case cpus == 3:
		p.ProxyCPUs, p.UpstreamCPUs, p.LoadgenCPUs = "2", "1", "0"
	default:
		// One core for the proxy (the scenario can give it more), one for the
		// origin, the rest for the load generator, which needs the most.
		p.ProxyCPUs = strconv.Itoa(cpus - 1)
		p.UpstreamCPUs = strconv.Itoa(cpus - 2)
		p.LoadgenCPUs = fmt.Sprintf("0-%d", cpus-3)
	}
	return p
}

// Override replaces the defaults with what a scenario sets.
func (p Placement) Override(proxyCPUs, upstreamCPUs, loadgenCPUs string, proxyMemory int64) Placement {
	if proxyCPUs != "" {
		p.ProxyCPUs = proxyCPUs
	}
	if upstreamCPUs != "" {
		p.UpstreamCPUs = upstreamCPUs
	}
	if loadgenCPUs != "" {
		p.LoadgenCPUs = loadgenCPUs
	}
	if proxyMemory > 0 {
		p.ProxyMemory = proxyMemory
	}
	return p
}

// ParseCPUSet reads the kernel's cpuset list syntax ("0", "1-3", "0,2-3").
func ParseCPUSet(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpuset %q: %q is not a CPU number", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpuset %q: bad range %q", s, part)
			}
		}
		for i := a; i <= b; i++ {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// Check refuses CPUs the host does not have, before any container starts.
func (p Placement) Check(hostCPUs int) error {
	for what, set := range map[string]string{"proxy_cpus": p.ProxyCPUs, "upstream_cpus": p.UpstreamCPUs, "loadgen_cpus": p.LoadgenCPUs} {
		cpus, err := ParseCPUSet(set)
		if err != nil {
			return fmt.Errorf("resources.%s: %w", what, err)
		}
		for _, c := range cpus {
			if c >= hostCPUs {
				return fmt.Errorf("resources.%s: CPU %d does not exist on this host (it has CPUs 0-%d)", what, c, hostCPUs-1)
			}
		}
	}
	return nil
}

// PinSelf confines this process, every thread of it, to the load
// generator's CPUs; threads the Go runtime starts later inherit the mask
// (threads.Each).
func PinSelf(cpuset string) error {
	cpus, err := ParseCPUSet(cpuset)
	if err != nil {
		return err
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	err = threads.Each(func(tid int) (bool, error) {
		var cur unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &cur); err == nil && cur == set {
			return false, nil
		}
		return true, unix.SchedSetaffinity(tid, &set)
	})
	if err != nil {
		return fmt.Errorf("pin load generator to CPUs %s: %w", cpuset, err)
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}
