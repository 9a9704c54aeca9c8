# proxylab — the two commands a newcomer needs are `make compare` and
# `make test`; both run scripts/setup.sh first, which installs and starts
# only what is missing.

SHELL := /bin/bash
GO ?= go
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
PROXYLAB := bin/proxylab
# The default run: capacity, latency at shares of it, churn (scenarios.DefaultRun).
SCENARIO ?= scenarios/capacity.yaml scenarios/latency.yaml scenarios/churn.yaml
CLAIMS ?= claims/go-rust-zig-article.yaml
# A repetition something outside the run disturbed is run once more.
RETRY_DISTURBED ?= 1

.PHONY: all setup setup-test proxylab compare report smoke build conformance test test-kernels vet fmt-check rust-check zig-check bpf bench bench-loadgen bench-proxies bench-probes cleanup clean

all: proxylab

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test --remote-test

proxylab:
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o $(PROXYLAB) ./cmd/proxylab

## compare: build everything, run $(SCENARIO) (default: the default run, about 15 minutes),
## judge $(CLAIMS) against it, then write one report (report.md and plots) and print its path
compare: proxylab
	@# nginx only when a scenario measures the nginx baseline.
	@scripts/setup.sh $$(grep -qsw nginx $(SCENARIO) && echo --nginx)
	$(PROXYLAB) compare --report --retry-disturbed $(RETRY_DISTURBED) $(if $(CLAIMS),--claims $(CLAIMS)) $(SCENARIO)

## report: write report.md and plots for FILE (default: the newest results/*.json)
report: proxylab
	@file='$(FILE)'; [ -n "$$file" ] || file=$$(ls -t results/*.json 2>/dev/null | head -n 1); \
	if [ -z "$$file" ]; then echo "no results/*.json yet: run make compare, or pass FILE=path"; exit 1; fi; \
	$(PROXYLAB) report "$$file"

## smoke: the short scenario the tests use
smoke: setup proxylab
	$(PROXYLAB) compare scenarios/smoke.yaml

## build: build binaries and scratch images (also tags proxylab/<name>:latest for compose.yaml)
build: setup proxylab
	$(PROXYLAB) build

## conformance: check every proxy against the proxy contract; prints a Markdown matrix
conformance: proxylab
	$(PROXYLAB) verify

## test: static checks, unit tests and the integration tests against a real Docker engine, and
## against a second one in a network namespace as a SUT host (scripts/setup.sh --remote-test,
## removed afterwards); -p 1: the integration tests share the fixed ports of DESIGN.md
test: setup-test vet fmt-check rust-check zig-check test-kernels
	@# Containers a killed earlier run left behind would make compare refuse to start.
	@$(GO) run ./cmd/proxylab cleanup
	@. /run/proxylab-sut/sut.env && $(GO) run ./cmd/proxylab cleanup --sut "$$PROXYLAB_SUT_ENGINE"
	PROXYLAB_REQUIRE_DOCKER=1 PROXYLAB_REQUIRE_SUT=1 $(GO) test -p 1 -count=1 -timeout 25m ./...; \
		rc=$$?; scripts/setup.sh --remote-test-down; exit $$rc

## test-kernels: the eBPF probes on Debian's 6.1 and 6.12 kernels booted in qemu: every attach
## mode must attach and count exactly, in the bpf tests and end to end through go-proxy
## (about a minute; the kernels are downloaded once into .cache/kernels/)
test-kernels:
	@scripts/test-kernels.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## rust-check: rustfmt, clippy (warnings are errors) and unit tests of the Rust proxy
rust-check:
	@if [ -d rust-proxy ]; then \
		cd rust-proxy && cargo fmt --check && \
		cargo clippy --locked --all-targets --target-dir ../.cache/cargo-lint -- -D warnings && \
		cargo test --locked --target-dir ../.cache/cargo-lint; \
	fi

## zig-check: zig fmt and the Zig proxy's unit tests, with the pinned Zig
zig-check:
	@if [ -d zig-proxy ]; then \
		cd zig-proxy && python3 -m ziglang fmt --check src build.zig && \
		python3 -m ziglang build test --cache-dir ../.cache/zig-cache --prefix ../.cache/zig-out/test; \
	fi

## bpf: regenerate the committed bpf2go output (needs clang and llvm; go build does not)
bpf:
	$(GO) generate ./bpf

## bench: Go benchmarks of the lab's own hot paths (proxy comparisons are `make compare`)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-loadgen: our load generator vs wrk at maximum rate, same upstream, A B A B, with the upstream
## on a CPU of its own and on the load generator's (the lab's 2-core placement); prints ours/wrk per
## pair and the median of each, then the CPU per request (µs) of ours paced at RATE and of ours and
## wrk at maximum rate, then both interleaved on the shared CPU in half-second turns, ours/wrk with a
## 95% interval (PAIRS, DURATION, CONNECTIONS, RATE, PLACEMENTS override the defaults)
bench-loadgen:
	@scripts/setup.sh --wrk
	@scripts/bench-loadgen.sh

## bench-proxies: the proxies themselves (go, rust, zig, nginx) as host processes pinned as on a
## 2-core host: throughput, CPU per request, a connection per request, 400 connections, in
## rotated rounds; about 10 minutes (ROUNDS, DURATION, RATE, CLOSE_RATE, PROXIES, ...: see
## scripts/bench-proxies.sh)
bench-proxies:
	@scripts/setup.sh --wrk
	@scripts/bench-proxies.sh

## bench-probes: the probes' observer effect on go-proxy under connection churn, probes
## detached and attached A B A B, per attach mode and perf-buffer setting (EVENTS="none all";
## PAIRS, DURATION: see scripts/bench-probes.sh); needs root
bench-probes:
	@scripts/setup.sh --wrk
	@scripts/bench-probes.sh

## cleanup: remove containers a crashed run left behind and images of earlier builds
cleanup: proxylab
	$(PROXYLAB) cleanup --images

clean:
	rm -rf bin
