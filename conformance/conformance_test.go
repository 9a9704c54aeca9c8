package conformance_test

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/proxylab/proxylab/conformance"
	"github.com/proxylab/proxylab/lab"
)

var (
	proxyFlag = flag.String("proxy", "all", "proxy to check: go, rust, zig, or all (every proxy this checkout contains)")
	imageFlag = flag.Bool("image", false, "run the proxy from its container image instead of as a host process")
)

// TestConformance runs every case against each selected proxy, built from
// this checkout. A proxy whose sources exist must pass; one named on the
// command line whose sources are missing fails rather than being skipped.
func TestConformance(t *testing.T) {
	root, err := lab.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if *proxyFlag != "all" {
		names = strings.Split(*proxyFlag, ",")
	}
	proxies, err := lab.ResolveProxies(root, names)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lab.Proxies {
		if !strings.Contains(*proxyFlag, p.Name) && *proxyFlag != "all" {
			continue
		}
		found := false
		for _, q := range proxies {
			found = found || q.Name == p.Name
		}
		if !found {
			t.Logf("%s: not in this checkout (%s/ is missing), so not checked", p.Name, p.Dir)
		}
	}
	ctx := context.Background()
	b := &lab.Builder{Root: root, Version: "conformance"}
	if *imageFlag {
		e, err := lab.Connect(ctx)
		if err != nil {
			t.Fatalf("-image needs a Docker engine: %v", err)
		}
		defer e.Close()
		b.Engine = e
	}
	up, err := b.Build(ctx, lab.Upstream)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range proxies {
		t.Run(p.Name, func(t *testing.T) {
			a, err := b.Build(ctx, p)
			if err != nil {
				t.Fatalf("%s is missing: build failed: %v", p.Name, err)
			}
			var launcher conformance.Launcher = conformance.Process{Binary: a.BinaryPath}
			if *imageFlag {
				launcher = b.Engine.Launcher(a, "conformance")
			}
			sh, err := conformance.Start(ctx, conformance.Suite{Name: p.Name, Proxy: launcher, Upstream: up.BinaryPath})
			if err != nil {
				t.Fatal(err)
			}
			defer sh.Close()
			for _, c := range conformance.Cases() {
				t.Run(c.ID(), func(t *testing.T) {
					if res := conformance.RunCase(ctx, sh, c); !res.Passed {
						t.Fatal(res.Error)
					}
				})
			}
		})
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(m.Run())
}
