package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Zig proxy is written for one Zig release: the lab's build, the setup
// script that installs Zig and the proxy's README must name the same one.
func TestZigVersionPinnedEverywhere(t *testing.T) {
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ path, want string }{
		{"scripts/setup.sh", "ZIG_VERSION=" + ZigVersion + " "},
		{"zig-proxy/README.md", "Zig version: " + ZigVersion},
		{"zig-proxy/build.zig.zon", `minimum_zig_version = "` + ZigVersion + `"`},
	} {
		b, err := os.ReadFile(filepath.Join(root, f.path))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), f.want) {
			t.Errorf("%s does not contain %q: the Zig pin disagrees with lab.ZigVersion", f.path, f.want)
		}
	}
}
