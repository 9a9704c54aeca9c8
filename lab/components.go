package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/proxylab/proxylab/scenarios"
)

// Component is one program the lab builds into a scratch image, or runs
// as a row of a comparison: the origin server, one of the proxies, or a
// baseline. What makes rows differ is carried here, so that the run treats
// every row alike.
type Component struct {
	Name     string // "upstream", or the proxy name used in scenarios ("go")
	Language string // what the results file calls it
	Dir      string // source folder, relative to the repository root
	Binary   string // binary file name, also its path in the image
	Port     int    // fixed loopback port (DESIGN.md: upstream 9000, go 8081, ...)
	// Baseline: not a lab proxy but a reference row (Baselines).
	Baseline bool
	// NoContainer: the row starts no container of its own and the load
	// goes straight to the upstream (direct), so it has no proxy figures.
	NoContainer bool
	// Tmpfs is what the row's container may write (see ContainerSpec).
	Tmpfs map[string]string
	// NotVerified says why the conformance suite does not apply to the
	// row; empty for the lab's proxies, which it checks.
	NotVerified string
	// env is the row container's environment given the upstream's
	// address; nil for a program whose configuration is in its image.
	env func(c Component, listen, upstream string) []string
	// available fails when the host lacks what the row needs, so that a
	// run stops before anything is built; nil when it needs nothing.
	available func() error
	// obtain is how compare gets the row's artifact.
	obtain  provider
	builder func(b *Builder, c Component) buildFunc
}

// Upstream is the origin server every proxy forwards to.
var Upstream = Component{Name: "upstream", Language: "go", Dir: "upstream", Binary: "upstream", Port: 9000, builder: goBuild}

// Proxies lists every proxy the lab knows how to build, in the order tables
// show them.
var Proxies = []Component{
	{Name: "go", Language: "go", Dir: "go-proxy", Binary: "go-proxy", Port: 8081, builder: goBuild, env: contractEnv, obtain: fromSource{}},
	{Name: "rust", Language: "rust", Dir: "rust-proxy", Binary: "rust-proxy", Port: 8082, builder: cargoBuild, env: contractEnv, obtain: fromSource{}},
	{Name: "zig", Language: "zig", Dir: "zig-proxy", Binary: "zig-proxy", Port: 8083, builder: zigBuild, env: contractEnv, obtain: fromSource{}},
}

// notLabProxy is why the baselines are not checked against the contract:
// it is the lab's, not theirs.
const notLabProxy = "not a lab proxy"

// Direct is the baseline without a proxy: the load goes straight to the
// upstream, which shows the ceiling any proxy can reach on this host with
// this load generator.
var Direct = Component{Name: "direct", Language: "none", Port: Upstream.Port, Baseline: true,
	NoContainer: true, NotVerified: notLabProxy, obtain: nothing{}}

// Nginx is the baseline a user would pick instead of the lab's proxies:
// the host's nginx, packed into a scratch image (see nginx.go). Its
// configuration is baked into the image, so its container has no
// environment, and it writes its pid and temporary files to a tmpfs.
var Nginx = Component{Name: "nginx", Language: "c", Binary: "nginx", Port: 8084, Baseline: true,
	Tmpfs: NginxTmpfs, NotVerified: notLabProxy, available: nginxInstalled, obtain: hostNginx{}}

// Baselines are the reference rows a scenario may add to its proxies.
var Baselines = []Component{Direct, Nginx}

// contractEnv configures a lab proxy the way the proxy contract says:
// where to listen and where the origin is.
func contractEnv(c Component, listen, upstream string) []string {
	return []string{"LISTEN_ADDR=" + listen, "UPSTREAM_ADDR=" + upstream}
}

// Env is the environment of the row's container, listening on host (an
// IP), for an upstream at the given address.
func (c Component) Env(host, upstream string) []string {
	if c.env == nil {
		return nil
	}
	return c.env(c, c.AddrOn(host), upstream)
}

func nginxInstalled() error {
	_, err := NginxBinary()
	return err
}

// Addr is the loopback address the component listens on.
func (c Component) Addr() string { return c.AddrOn(loopbackHost) }

// AddrOn is the address the component listens on at host (an IP).
func (c Component) AddrOn(host string) string {
	return net.JoinHostPort(host, strconv.Itoa(c.Port))
}

// loopbackHost is where everything listens when the system under test runs
// on this host.
const loopbackHost = "127.0.0.1"

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
			if c := Baselines[i]; c.available != nil {
				if err := c.available(); err != nil {
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

// provider is how compare obtains a row's artifact, in the two phases it
// builds in: binaries before the conformance suite, images after it, so
// that a proxy failing the suite never gets an image that looks ready to
// measure.
type provider interface {
	binary(ctx context.Context, b *Builder, c Component) (*Artifact, error)
	// image may replace the artifact: a baseline's is only made here.
	image(ctx context.Context, b *Builder, a *Artifact, sc *scenarios.Scenario, p Placement) (*Artifact, error)
	// toolchains are the results file's entries for what made the artifact.
	toolchains(ctx context.Context, a *Artifact) map[string]string
}

// fromSource: a lab proxy is compiled from this checkout, then verified,
// then packed into its image.
type fromSource struct{}

func (fromSource) binary(ctx context.Context, b *Builder, c Component) (*Artifact, error) {
	a, err := b.Binary(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", c.Name, err)
	}
	return a, nil
}

func (fromSource) image(ctx context.Context, b *Builder, a *Artifact, _ *scenarios.Scenario, _ Placement) (*Artifact, error) {
	if err := b.Image(ctx, a); err != nil {
		return nil, fmt.Errorf("image of %s: %w", a.Name, err)
	}
	return a, nil
}

func (fromSource) toolchains(ctx context.Context, a *Artifact) map[string]string {
	return Toolchains(ctx, a.Component)
}

// hostNginx: the host's nginx is packed with a configuration that follows
// the run (one worker per proxy CPU, pools sized by the connections), so
// its image is made only once the placement is known.
type hostNginx struct{}

func (hostNginx) binary(_ context.Context, _ *Builder, c Component) (*Artifact, error) {
	return &Artifact{Component: c}, nil
}

func (hostNginx) image(ctx context.Context, b *Builder, _ *Artifact, sc *scenarios.Scenario, p Placement) (*Artifact, error) {
	cpus, err := ParseCPUSet(p.ProxyCPUs)
	if err != nil {
		return nil, fmt.Errorf("nginx workers: %w", err)
	}
	a, err := b.Nginx(ctx, NginxSettings{Workers: len(cpus), Connections: sc.Load.Connections, Host: b.Host})
	if err != nil {
		return nil, fmt.Errorf("image of nginx: %w", err)
	}
	return a, nil
}

func (hostNginx) toolchains(ctx context.Context, a *Artifact) map[string]string {
	return map[string]string{"nginx": NginxVersion(ctx, a.BinaryPath)}
}

// nothing: the direct row has no program of its own to build.
type nothing struct{}

func (nothing) binary(_ context.Context, _ *Builder, c Component) (*Artifact, error) {
	return &Artifact{Component: c}, nil
}

func (nothing) image(_ context.Context, _ *Builder, a *Artifact, _ *scenarios.Scenario, _ Placement) (*Artifact, error) {
	return a, nil
}

func (nothing) toolchains(context.Context, *Artifact) map[string]string { return nil }
