#!/usr/bin/env bash
# Brings a Linux host to the state proxylab needs: a Go toolchain, a Docker
# engine that answers, and tracefs mounted. Idempotent: every step checks
# first and does nothing when its part is already there, so `make compare` and
# `make test` can call it every time.
#
# Without root and without sudo it changes nothing and prints the exact
# commands to run instead.
#
# Installers write to a log file (PROXYLAB_SETUP_LOG, default
# .cache/setup.log in the checkout); the terminal gets one line per step, and
# the log's tail only when a step fails.
#
# --remote-test also sets up a SUT host on this machine for the lab's tests
# (scripts/remote-test.sh up: a network namespace and a second Docker engine
# in it); --remote-test-down removes it and does nothing else.
set -euo pipefail

# --test: also what `make test` needs beyond running the lab.
# --nginx: also nginx, whose binary the nginx baseline row packs into an
# image (`make compare` passes it when the scenario names nginx).
# --wrk: also wrk, the reference `make bench-loadgen` measures the lab's load
# generator against.
# --remote-test: also the SUT host of scripts/remote-test.sh, once the engine
# it needs is installed; --remote-test-down: only remove that SUT host.
FOR_TEST=0
NEED_NGINX=0
NEED_WRK=0
REMOTE_TEST=
for arg in "$@"; do
	case $arg in
	--test) FOR_TEST=1 NEED_NGINX=1 ;;
	--nginx) NEED_NGINX=1 ;;
	--wrk) NEED_WRK=1 ;;
	--remote-test | --remote-test-down)
		if [ -n "$REMOTE_TEST" ] && [ "$REMOTE_TEST" != "$arg" ]; then
			printf 'setup: --remote-test and --remote-test-down exclude each other\n' >&2
			exit 2
		fi
		REMOTE_TEST=$arg
		;;
	*) printf 'setup: unknown option %s (use --test, --nginx, --wrk, --remote-test or --remote-test-down)\n' "$arg" >&2; exit 2 ;;
	esac
done
# Taking the SUT host down needs none of the steps below.
if [ "$REMOTE_TEST" = --remote-test-down ]; then
	remote_test=$(cd "$(dirname "$0")" && pwd)/remote-test.sh
	if [ "$(id -u)" -eq 0 ]; then
		exec "$remote_test" down
	elif command -v sudo >/dev/null 2>&1; then
		exec sudo "$remote_test" down
	fi
	printf 'setup: taking the SUT host down needs root: run it as root:\n    %s down\n' "$remote_test" >&2
	exit 1
fi

here=$(cd "$(dirname "$0")/.." && pwd)
DOCKERD_LOG=${PROXYLAB_DOCKERD_LOG:-/var/log/proxylab-dockerd.log}
SETUP_LOG=${PROXYLAB_SETUP_LOG:-$here/.cache/setup.log}
GO_MIN=1.26

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] || die "proxylab needs Linux (found $(uname -s))"
kmajor=$(uname -r | cut -d. -f1)
if [ "$kmajor" -lt 6 ]; then
	say "warning: kernel $(uname -r) is older than 6.x; the eBPF probes may not attach"
fi

# How privileged commands are run: directly as root, through sudo, or not at
# all (then the commands are collected and printed for the user to run).
if [ "$(id -u)" -eq 0 ]; then
	AS_ROOT=()
elif command -v sudo >/dev/null 2>&1; then
	AS_ROOT=(sudo)
else
	AS_ROOT=(none)
fi
todo=()
privileged() {
	if [ "${AS_ROOT[0]:-}" = none ]; then
		todo+=("$*")
		return 0
	fi
	"${AS_ROOT[@]}" "$@"
}

# step WHAT COMMAND...: runs COMMAND with its output appended to the log and
# prints one line for it; when it fails, the log's last lines and an error.
# A step whose commands need root that this user lacks only queues them.
step() {
	local what=$1 queued=${#todo[@]}
	shift
	mkdir -p "$(dirname "$SETUP_LOG")"
	printf '\n== %s %s\n' "$(date -u +%FT%TZ)" "$what" >>"$SETUP_LOG"
	printf 'setup: %s... ' "$what"
	if ! "$@" >>"$SETUP_LOG" 2>&1; then
		printf 'failed, log: %s\n' "$SETUP_LOG"
		tail -n 20 "$SETUP_LOG" | sed 's/^/    /' >&2
		die "$what failed"
	fi
	if [ ${#todo[@]} -gt "$queued" ]; then
		printf 'needs root (see below)\n'
	else
		printf 'done, log: %s\n' "$SETUP_LOG"
	fi
}

# apt_install PACKAGE...: Debian's packages, without questions.
apt_install() {
	privileged env DEBIAN_FRONTEND=noninteractive apt-get update &&
		privileged env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# --- Go ---------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
	die "no Go toolchain on PATH: install Go $GO_MIN or newer (the lab builds its proxies and itself with it)"
fi
gov=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$GO_MIN" "$gov" | sort -V | head -n1)" != "$GO_MIN" ]; then
	die "Go $gov is too old: proxylab needs Go $GO_MIN or newer"
fi

# --- Rust (for rust-proxy/) -------------------------------------------------
if [ -d "$here/rust-proxy" ] && ! command -v cargo >/dev/null 2>&1; then
	die "rust-proxy/ needs cargo: install Rust with rustup, then try again"
fi

# --- Zig (for zig-proxy/), pinned: its standard library changes between releases
ZIG_VERSION=0.15.2 # keep equal to lab.ZigVersion and zig-proxy/README.md
if [ -d "$here/zig-proxy" ] && [ "$(python3 -m ziglang version 2>/dev/null)" != "$ZIG_VERSION" ]; then
	command -v python3 >/dev/null 2>&1 || die "zig-proxy/ needs Zig $ZIG_VERSION, installed with python3 -m pip: no python3 found"
	step "installing Zig $ZIG_VERSION (PyPI package ziglang)" python3 -m pip install "ziglang==$ZIG_VERSION"
fi

# --- clang, llvm and libbpf headers, for `make test` only (--test): it checks
# that the committed bpf2go output is what this source compiles to.
if [ "$FOR_TEST" = 1 ] && { ! command -v clang >/dev/null 2>&1 || ! command -v llvm-strip >/dev/null 2>&1 || [ ! -e /usr/include/bpf/bpf_helpers.h ]; }; then
	command -v apt-get >/dev/null 2>&1 ||
		die "the eBPF build check needs clang, llvm and libbpf headers: install them with your package manager"
	step "installing clang, llvm and libbpf-dev (Debian; to check the committed eBPF objects)" apt_install clang llvm libbpf-dev
fi

# --- nginx (--nginx, --test): the baseline packs the host's binary ----------
if [ "$NEED_NGINX" = 1 ] && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	command -v apt-get >/dev/null 2>&1 ||
		die "the nginx baseline needs nginx: install it with your package manager, or take nginx out of the scenario's proxies"
	step "installing nginx (Debian; the nginx baseline runs its binary in a scratch image)" apt_install nginx
	say "  Debian also starts its own nginx on port 80, which the lab does not use: systemctl disable --now nginx stops it"
fi

# --- wrk (--wrk): the reference of make bench-loadgen ------------------------
if [ "$NEED_WRK" = 1 ] && ! command -v wrk >/dev/null 2>&1; then
	command -v apt-get >/dev/null 2>&1 ||
		die "the benchmarks need wrk: install it with your package manager"
	step "installing wrk (Debian; the reference the benchmarks compare with)" apt_install wrk
fi

# --- Docker engine ------------------------------------------------------------
docker_answers() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

if docker_answers; then
	say "docker engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
elif [ "$(id -u)" -ne 0 ] && [ -S /var/run/docker.sock ] && pgrep -x dockerd >/dev/null 2>&1; then
	# The engine runs, but this user may not use its socket.
	todo+=("usermod -aG docker $(id -un)   # then log in again")
else
	if ! command -v dockerd >/dev/null 2>&1; then
		command -v apt-get >/dev/null 2>&1 ||
			die "no Docker engine and no apt-get: install Docker with your distribution's package manager"
		step "installing Docker engine (Debian docker.io)" apt_install docker.io
	fi
	# No bridge and no iptables rules: the lab only uses host networking, and a
	# daemon that rewrites the host's firewall would change what is measured.
	start_dockerd="nohup setsid dockerd --bridge=none --iptables=false >>$DOCKERD_LOG 2>&1 </dev/null &"
	if [ "${AS_ROOT[0]:-}" = none ]; then
		todo+=("$start_dockerd")
	else
		# A daemon killed without its own shutdown (a machine or session
		# ending) leaves its pid files behind, and a new dockerd refuses to
		# start while they name a pid; remove them when no such daemon runs.
		for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
			[ -f "$pidfile" ] || continue
			pid=$(cat "$pidfile" 2>/dev/null || true)
			comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
			# A killed daemon may linger as a zombie under an init that does
			# not reap: that is stale too.
			state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
			if { [ "$comm" != dockerd ] && [ "$comm" != containerd ]; } || [ "$state" = Z ]; then
				say "removing stale $pidfile"
				privileged rm -f "$pidfile"
			fi
		done
		say "starting dockerd --bridge=none --iptables=false (log: $DOCKERD_LOG)"
		privileged sh -c "$start_dockerd"
		for i in $(seq 1 60); do
			docker_answers && break
			# Give up early once the daemon has exited, rather than waiting
			# the whole 30 s for one that will never answer.
			[ "$i" -gt 4 ] && ! pgrep -x dockerd >/dev/null 2>&1 && break
			sleep 0.5
		done
		docker_answers || die "dockerd did not start; its log ($DOCKERD_LOG) ends with:
$(tail -n 5 "$DOCKERD_LOG" 2>/dev/null)"
		say "docker engine answers"
	fi
fi

# --- tracefs (the eBPF tracepoint fallback needs it) ---------------------------
# /proc/mounts rather than the folder's contents: tracefs is not readable by
# ordinary users even when it is mounted.
if grep -qs ' /sys/kernel/tracing tracefs ' /proc/mounts; then
	:
elif [ -d /sys/kernel/tracing ]; then
	if [ "${AS_ROOT[0]:-}" != none ]; then
		say "mounting tracefs on /sys/kernel/tracing"
	fi
	privileged mount -t tracefs nodev /sys/kernel/tracing ||
		say "warning: could not mount tracefs; tracepoint probes will not attach"
else
	say "warning: /sys/kernel/tracing does not exist; tracepoint probes will not attach"
fi

# --- SUT host on this machine (--remote-test), last: it needs the engine ------
if [ "$REMOTE_TEST" = --remote-test ]; then
	if [ "${AS_ROOT[0]:-}" = none ]; then
		todo+=("$here/scripts/remote-test.sh up")
	else
		privileged "$here/scripts/remote-test.sh" up || die "the SUT host is not up (see above)"
	fi
fi

if [ ${#todo[@]} -gt 0 ]; then
	echo "setup: these steps need root (or a new login): run them, then try again:" >&2
	for c in "${todo[@]}"; do echo "    $c" >&2; done
	exit 1
fi
say "ready"
