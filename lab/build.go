package lab

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/errdefs"
)

// Artifact is a built component: its static binary and the scratch image
// around it.
type Artifact struct {
	Component
	BinaryPath  string
	BinaryBytes int64
	ImageTag    string // proxylab/<name>:<content hash>
	ImageID     string
	ImageBytes  int64
	Reused      bool // the image for this exact binary already existed
}

// Builder compiles components and packs them into images.
type Builder struct {
	Root    string
	Engine  *Engine
	Version string       // stamped into every binary
	Log     func(string) // progress lines; may be nil
	// Host is the address the images' programs will listen on, where a
	// configuration baked into an image needs it (nginx); "" is loopback.
	Host string
}

// LatestTag is proxylab/<name>:latest, the newest build of the component.
func (c Component) LatestTag() string { return "proxylab/" + c.Name + ":latest" }

type buildFunc func(ctx context.Context, out string) error

func (b *Builder) logf(format string, args ...any) {
	if b.Log != nil {
		b.Log(fmt.Sprintf(format, args...))
	}
}

// goBuild compiles a Go main package into a static, stripped linux/amd64
// binary: CGO off so the scratch image needs no libc.
func goBuild(b *Builder, c Component) buildFunc {
	return func(ctx context.Context, out string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
			"-ldflags", "-s -w -X main.version="+b.Version,
			"-o", out, "./"+c.Dir)
		cmd.Dir = b.Root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./%s: %v\n%s", c.Dir, err, o)
		}
		return nil
	}
}

// rustTarget is the only target the lab builds Rust for: static glibc
// x86-64, so the binary runs in a scratch image.
const rustTarget = "x86_64-unknown-linux-gnu"

// cargoBuild compiles a Cargo project with its committed Cargo.lock into a
// static binary. Crates are fetched once into cargo's own cache, and the
// target folder is kept under .cache/ so rebuilds are incremental.
func cargoBuild(b *Builder, c Component) buildFunc {
	return func(ctx context.Context, out string) error {
		targetDir := filepath.Join(b.Root, ".cache", "cargo-target")
		cmd := exec.CommandContext(ctx, "cargo", "build", "--release", "--locked", "--target", rustTarget, "--target-dir", targetDir)
		cmd.Dir = filepath.Join(b.Root, c.Dir)
		cmd.Env = append(os.Environ(), "RUSTFLAGS=-C target-feature=+crt-static", "PROXYLAB_VERSION="+b.Version)
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("cargo build in %s/: %v\n%s", c.Dir, err, o)
		}
		return installBinary(filepath.Join(targetDir, rustTarget, "release", c.Binary), out)
	}
}

// ZigVersion is the one Zig release the lab builds with, installed from
// PyPI's ziglang package by scripts/setup.sh; Zig's standard library changes
// between releases, so the Zig proxy is written for exactly this one.
const ZigVersion = "0.15.2"

// ZigTarget is the target triple the lab builds the Zig proxy for.
const ZigTarget = "x86_64-linux-musl"

// zigBuild runs the project's build.zig for static x86_64-linux-musl (the
// Zig proxy links no libc, so the binary is static by construction) on the
// baseline CPU, as Go and Rust build by default: no proxy may gain from
// instructions the others do not use.
func zigBuild(b *Builder, c Component) buildFunc {
	return func(ctx context.Context, out string) error {
		prefix := filepath.Join(b.Root, ".cache", "zig-out", c.Name)
		cmd := exec.CommandContext(ctx, "python3", "-m", "ziglang", "build",
			"-Doptimize=ReleaseFast", "-Dtarget="+ZigTarget, "-Dcpu=baseline", "-Dversion="+b.Version,
			"--prefix", prefix, "--cache-dir", filepath.Join(b.Root, ".cache", "zig-cache"))
		cmd.Dir = filepath.Join(b.Root, c.Dir)
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("zig build in %s/ (needs Zig %s: scripts/setup.sh installs it): %v\n%s", c.Dir, ZigVersion, err, o)
		}
		return installBinary(filepath.Join(prefix, "bin", c.Binary), out)
	}
}

// installBinary copies a built binary into bin/. Rename, not overwrite: a
// running copy of the old binary would make writing in place fail with
// "text file busy".
func installBinary(from, to string) error {
	bin, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.WriteFile(to+".tmp", bin, 0o755); err != nil {
		return err
	}
	return os.Rename(to+".tmp", to)
}

// Build compiles c and, when the Builder has an engine, makes sure an image
// holding exactly that binary exists.
func (b *Builder) Build(ctx context.Context, c Component) (*Artifact, error) {
	a, err := b.Binary(ctx, c)
	if err != nil || b.Engine == nil {
		return a, err
	}
	return a, b.Image(ctx, a)
}

// Binary compiles c into bin/ and names the image it belongs in. Images are
// tagged by the content hash of Dockerfile and binary, so an unchanged
// component is not rebuilt and a results file names the exact image that
// was measured.
func (b *Builder) Binary(ctx context.Context, c Component) (*Artifact, error) {
	bin := filepath.Join(b.Root, "bin", c.Binary)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return nil, err
	}
	b.logf("building %s (%s/)", c.Name, c.Dir)
	if err := c.builder(b, c)(ctx, bin); err != nil {
		return nil, err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	dockerfile, err := os.ReadFile(filepath.Join(b.Root, c.Dir, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(dockerfile)
	h.Write(binary)
	return &Artifact{
		Component:   c,
		BinaryPath:  bin,
		BinaryBytes: int64(len(binary)),
		ImageTag:    "proxylab/" + c.Name + ":" + hex.EncodeToString(h.Sum(nil))[:16],
	}, nil
}

// Image builds (or finds) the scratch image of a built binary and points
// proxylab/<name>:latest at it: the moving tag is what compose.yaml runs,
// while the lab itself always runs the content-addressed tag.
func (b *Builder) Image(ctx context.Context, a *Artifact) error {
	dockerfile, err := os.ReadFile(filepath.Join(b.Root, a.Dir, "Dockerfile"))
	if err != nil {
		return err
	}
	binary, err := os.ReadFile(a.BinaryPath)
	if err != nil {
		return err
	}
	if err := b.image(ctx, a, []contextFile{{"Dockerfile", 0o644, dockerfile}, {a.Binary, 0o755, binary}}); err != nil {
		return err
	}
	if err := b.Engine.cli.ImageTag(ctx, a.ImageTag, a.LatestTag()); err != nil {
		return fmt.Errorf("tag %s: %w", a.LatestTag(), err)
	}
	return nil
}

// contextFile is one file of an image's build context.
type contextFile struct {
	name string
	mode int64
	data []byte
}

// image builds a.ImageTag from the build context files (a Dockerfile among
// them) unless an image of that tag exists.
func (b *Builder) image(ctx context.Context, a *Artifact, files []contextFile) error {
	insp, err := b.Engine.cli.ImageInspect(ctx, a.ImageTag)
	if err == nil {
		a.ImageID, a.ImageBytes, a.Reused = insp.ID, insp.Size, true
		b.logf("image %s is up to date", a.ImageTag)
		return nil
	}
	if !errdefs.IsNotFound(err) {
		return fmt.Errorf("inspect image %s: %w", a.ImageTag, err)
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	b.logf("building image %s", a.ImageTag)
	resp, err := b.Engine.cli.ImageBuild(ctx, &ctxTar, build.ImageBuildOptions{
		Tags:        []string{a.ImageTag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		PullParent:  false,
		Labels:      map[string]string{"proxylab.component": a.Name},
		Version:     build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", a.ImageTag, err)
	}
	defer resp.Body.Close()
	if err := buildStreamError(resp.Body); err != nil {
		return fmt.Errorf("build image %s: %w", a.ImageTag, err)
	}
	insp, err = b.Engine.cli.ImageInspect(ctx, a.ImageTag)
	if err != nil {
		return fmt.Errorf("inspect built image %s: %w", a.ImageTag, err)
	}
	a.ImageID, a.ImageBytes = insp.ID, insp.Size
	return nil
}

// buildStreamError reads the engine's JSON message stream to its end: a build
// fails inside the stream, not in the HTTP status.
func buildStreamError(r io.Reader) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			tail = append(tail, s)
			if len(tail) > 10 {
				tail = tail[1:]
			}
		}
		if m.Error != "" {
			return fmt.Errorf("%s\n%s", m.Error, strings.Join(tail, "\n"))
		}
	}
}

// Toolchains reports the versions of the toolchains that build the given
// components, keyed as in the results file (go, rustc, zig).
func Toolchains(ctx context.Context, comps ...Component) map[string]string {
	out := map[string]string{}
	for _, c := range comps {
		switch c.Language {
		case "go":
			out["go"] = commandOutput(ctx, "go", "env", "GOVERSION")
		case "rust":
			out["rustc"] = commandOutput(ctx, "rustc", "-V")
		case "zig":
			out["zig"] = commandOutput(ctx, "python3", "-m", "ziglang", "version")
		}
	}
	return out
}

func commandOutput(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
