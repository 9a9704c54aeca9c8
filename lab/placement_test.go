package lab

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCPUSet(t *testing.T) {
	cases := []struct {
		in      string
		want    []int
		wantErr string
	}{
		{"0", []int{0}, ""},
		{"1-3", []int{1, 2, 3}, ""},
		{"0,2-3", []int{0, 2, 3}, ""},
		{"a", nil, `"a" is not a CPU number`},
		{"3-1", nil, "bad range"},
		{"", nil, "not a CPU number"},
	}
	for _, c := range cases {
		got, err := ParseCPUSet(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseCPUSet(%q) error %v, want %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseCPUSet(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestDefaultPlacementKeepsProxyAlone(t *testing.T) {
	for cpus := 2; cpus <= 16; cpus++ {
		p := DefaultPlacement(cpus)
		if err := p.Check(cpus); err != nil {
			t.Fatalf("%d CPUs: %v", cpus, err)
		}
		proxy, _ := ParseCPUSet(p.ProxyCPUs)
		others, _ := ParseCPUSet(p.UpstreamCPUs + "," + p.LoadgenCPUs)
		for _, c := range proxy {
			if slices.Contains(others, c) {
				t.Errorf("%d CPUs: proxy CPU %d shared with upstream or load generator (%+v)", cpus, c, p)
			}
		}
	}
}

func TestPlacementCheckNamesTheField(t *testing.T) {
	p := DefaultPlacement(2).Override("5", "", "", 0)
	err := p.Check(2)
	if err == nil || !strings.Contains(err.Error(), "resources.proxy_cpus: CPU 5 does not exist") {
		t.Errorf("Check = %v", err)
	}
}
