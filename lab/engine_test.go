package lab

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// requireEngine skips only where the host has no Docker engine; `make test`
// starts one and sets PROXYLAB_REQUIRE_DOCKER=1 so that there a missing
// engine fails the test instead.
func requireEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := Connect(context.Background())
	if err != nil {
		if os.Getenv("PROXYLAB_REQUIRE_DOCKER") == "1" {
			t.Fatalf("PROXYLAB_REQUIRE_DOCKER=1 but: %v", err)
		}
		t.Skipf("host lacks a Docker engine (%v); run scripts/setup.sh", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// The upstream is the simplest component: building it and running it the
// way every measured container runs exercises the whole Docker side.
func TestEngineBuildsAndRunsHardenedContainer(t *testing.T) {
	e := requireEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	b := &Builder{Root: root, Engine: e, Version: "test"}
	a, err := b.Build(ctx, Upstream)
	if err != nil {
		t.Fatal(err)
	}
	if a.BinaryBytes <= 0 || a.ImageBytes <= 0 || !strings.HasPrefix(a.ImageID, "sha256:") {
		t.Fatalf("artifact %+v", a)
	}
	// Same inputs, same image: the second build must reuse it.
	again, err := b.Build(ctx, Upstream)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.ImageID != a.ImageID {
		t.Errorf("second build: reused %v, id %s vs %s", again.Reused, again.ImageID, a.ImageID)
	}

	// An earlier build of other content leaves its image behind, which
	// RemoveOldImages must take away while keeping the newest.
	old, err := (&Builder{Root: root, Engine: e, Version: "test-old"}).Build(ctx, Upstream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Build(ctx, Upstream); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RemoveOldImages(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.ImageInspect(ctx, old.ImageTag); err == nil {
		t.Errorf("image %s of an earlier build survived RemoveOldImages", old.ImageTag)
	}
	if _, err := e.cli.ImageInspect(ctx, a.ImageTag); err != nil {
		t.Errorf("the newest image %s was removed: %v", a.ImageTag, err)
	}

	runID := "enginetest" + time.Now().Format("150405")
	t.Cleanup(func() { e.RemoveLeftovers(context.Background(), runID) })
	c, err := e.Start(ctx, ContainerSpec{
		Artifact: a, RunID: runID, Name: "proxylab-" + runID + "-upstream", CPUs: "0", Memory: 64 << 20,
		Env: []string{"LISTEN_ADDR=127.0.0.1:9000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHTTP(ctx, "http://127.0.0.1:9000/", 20*time.Second); err != nil {
		t.Fatal(err)
	}

	insp, err := e.cli.ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	hc := insp.HostConfig
	if string(hc.NetworkMode) != "host" || !hc.ReadonlyRootfs || len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" ||
		insp.Config.User != "65534:65534" || hc.CpusetCpus != "0" || hc.Memory != 64<<20 || hc.MemorySwap != 64<<20 ||
		len(hc.SecurityOpt) != 1 || hc.SecurityOpt[0] != "no-new-privileges" || insp.Config.Labels[RunLabel] != runID {
		t.Errorf("container is not hardened as DESIGN.md requires: %+v user %q labels %v", hc, insp.Config.User, insp.Config.Labels)
	}

	u, err := c.Usage()
	if err != nil || u.PeakRSSBytes <= 0 {
		t.Errorf("Usage = %+v, %v", u, err)
	}
	logs := c.Logs(ctx, 5)
	if len(logs) == 0 || !strings.Contains(strings.Join(logs, "\n"), "proxylab-upstream") {
		t.Errorf("logs %q: want the start-up line", logs)
	}

	died := c.Died(ctx)
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case why := <-died:
		if !strings.Contains(why, "exited with code 0") {
			t.Errorf("died: %q, want a clean exit on SIGTERM", why)
		}
	case <-time.After(20 * time.Second):
		t.Error("Died did not report the stopped container")
	}
	if n, err := e.RemoveLeftovers(ctx, runID); err != nil || n != 1 {
		t.Errorf("RemoveLeftovers = %d, %v; want 1 removed", n, err)
	}
	if left, _ := e.Leftovers(ctx, runID); len(left) != 0 {
		t.Errorf("%d containers left", len(left))
	}
}
