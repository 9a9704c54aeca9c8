package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Component is one program the lab builds into a scratch image: the origin
// server or one of the proxies.
type Component struct {
	Name     string // "upstream", or the proxy name used in scenarios ("go")
	Language string // what the results file calls it
	Dir      string // source folder, relative to the repository root
	Binary   string // binary file name, also its path in the image
	Port     int    // fixed loopback port (DESIGN.md: upstream 9000, go 8081, ...)
	// Baseline: not a lab proxy but a reference row (Baselines).
	Baseline bool
	builder  func(b *Builder, c Component) buildFunc
}

// Upstream is the origin server every proxy forwards to.
var Upstream = Component{Name: "upstream", Language: "go", Dir: "upstream", Binary: "upstream", Port: 9000, builder: goBuild}

// Proxies lists every proxy the lab knows how to build, in the order tables
// show them.
var Proxies = []Component{
	{Name: "go", Language: "go", Dir: "go-proxy", Binary: "go-proxy", Port: 8081, builder: goBuild},
	{Name: "rust", Language: "rust", Dir: "rust-proxy", Binary: "rust-proxy", Port: 8082, builder: cargoBuild},
	{Name: "zig", Language: "zig", Dir: "zig-proxy", Binary: "zig-proxy", Port: 8083, builder: zigBuild},
}

// Direct is the baseline without a proxy: the load goes straight to the
// upstream, which shows the ceiling any proxy can reach on this host with
// this load generator.
var Direct = Component{Name: "direct", Language: "none", Port: Upstream.Port, Baseline: true}

// Nginx is the baseline a user would pick instead of the lab's proxies:
// the host's nginx, packed into a scratch image (see nginx.go).
var Nginx = Component{Name: "nginx", Language: "c", Binary: "nginx", Port: 8084, Baseline: true}

// Baselines are the reference rows a scenario may add to its proxies.
var Baselines = []Component{Direct, Nginx}

// Addr is the loopback address the component listens on.
func (c Component) Addr() string { return fmt.Sprintf("127.0.0.1:%d", c.Port) }

// present reports whether the component's sources are in this checkout; a
// later proxy may be named in a scenario before its folder exists.
func (c Component) present(root string) bool {
	_, err := os.Stat(filepath.Join(root, c.Dir, "Dockerfile"))
	return err == nil
}

// ResolveProxies turns a scenario's proxy list into components. An empty list
// means every proxy this checkout contains; naming one whose sources are
// missing is an error rather than a silently shorter table.
func ResolveProxies(root string, names []string) ([]Component, error) {
	if len(names) == 0 {
		var all []Component
		for _, c := range Proxies {
			if c.present(root) {
				all = append(all, c)
			}
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("no proxy sources found under %s", root)
		}
		return all, nil
	}
	var out []Component
	for _, n := range names {
		i := slices.IndexFunc(Proxies, func(c Component) bool { return c.Name == n })
		if slices.ContainsFunc(Baselines, func(c Component) bool { return c.Name == n }) {
			return nil, fmt.Errorf("%q is a baseline, not a lab proxy: compare measures it when a scenario lists it, but it is not built or verified", n)
		}
		if i < 0 {
			var known []string
			for _, c := range Proxies {
				known = append(known, c.Name)
			}
			return nil, fmt.Errorf("proxy %q cannot be built by this version of proxylab (it builds: %s)", n, strings.Join(known, ", "))
		}
		if !Proxies[i].present(root) {
			return nil, fmt.Errorf("proxy %q: %s/ is missing from %s", n, Proxies[i].Dir, root)
		}
		out = append(out, Proxies[i])
	}
	return out, nil
}

// ResolveRows is ResolveProxies for compare, which also measures the
// baselines a scenario names, in the scenario's order. An empty list means
// the lab proxies only. A missing nginx is reported here, before anything
// is built.
func ResolveRows(root string, names []string) ([]Component, error) {
	if len(names) == 0 {
		return ResolveProxies(root, nil)
	}
	var rows []Component
	for _, n := range names {
		if i := slices.IndexFunc(Baselines, func(c Component) bool { return c.Name == n }); i >= 0 {
			if n == Nginx.Name {
				if _, err := NginxBinary(); err != nil {
					return nil, err
				}
			}
			rows = append(rows, Baselines[i])
			continue
		}
		p, err := ResolveProxies(root, []string{n})
		if err != nil {
			return nil, err
		}
		rows = append(rows, p...)
	}
	return rows, nil
}

// FindRoot walks up from dir to the proxylab repository root, so the CLI works
// from any folder inside the checkout.
func FindRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/proxylab/proxylab\n") {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%s is not inside a proxylab checkout (no go.mod of github.com/proxylab/proxylab above it); use --root", dir)
		}
		d = parent
	}
}
