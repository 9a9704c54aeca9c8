package lab

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// compose.yaml is for people who bring their own load tool: it must run the
// same images, on the same ports and with the same hardening as the lab.
func TestComposeMatchesLab(t *testing.T) {
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("proxylab", true) })
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	byImage := map[string]types.ServiceConfig{}
	for _, s := range proj.Services {
		byImage[s.Image] = s
	}
	comps := []Component{Upstream}
	for _, p := range Proxies {
		if p.present(root) {
			comps = append(comps, p)
		}
	}
	if len(proj.Services) != len(comps) {
		t.Errorf("compose.yaml has %d services, the lab builds %d components", len(proj.Services), len(comps))
	}
	for _, c := range comps {
		s, ok := byImage[c.LatestTag()]
		if !ok {
			t.Errorf("no service runs %s", c.LatestTag())
			continue
		}
		if s.NetworkMode != "host" || !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) ||
			!slices.Contains(s.SecurityOpt, "no-new-privileges") || s.User != "65534:65534" {
			t.Errorf("%s: network %q read_only %v cap_drop %v security_opt %v user %q: want the lab's hardening",
				s.Name, s.NetworkMode, s.ReadOnly, s.CapDrop, s.SecurityOpt, s.User)
		}
		if got := s.Environment["LISTEN_ADDR"]; got == nil || *got != c.Addr() {
			t.Errorf("%s: LISTEN_ADDR %v, want %s", s.Name, got, c.Addr())
		}
		if c.Name != Upstream.Name {
			if got := s.Environment["UPSTREAM_ADDR"]; got == nil || *got != Upstream.Addr() {
				t.Errorf("%s: UPSTREAM_ADDR %v, want %s", s.Name, got, Upstream.Addr())
			}
		}
	}
}
