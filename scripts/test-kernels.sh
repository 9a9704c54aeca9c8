#!/usr/bin/env bash
# Runs the eBPF probes on real kernels other than the host's: Debian's 6.1
# and 6.12 cloud kernels, each booted in qemu with an initramfs that holds
# busybox, the bpf package's test binary, proxylab, go-proxy and the
# upstream. Inside, every attach mode (kprobe, fentry, tracepoint) must
# attach and count exactly, in the bpf tests and end to end against
# go-proxy. Prints a kernel x mode table and exits non-zero if any mode on
# any kernel does not attach or count exactly, or a kernel cannot be fetched
# or booted.
#
# Kernel packages are downloaded with apt-get download into .cache/kernels/
# and unpacked there, never installed; a second run downloads nothing.
# Installers' output goes to the setup log (PROXYLAB_SETUP_LOG, default
# .cache/setup.log), each VM's console to .cache/kernels/run/<kernel>/.
#
# Environment:
#   KERNELS        package names to boot (default: the newest 6.1.0-N and
#                  6.12 cloud-amd64-unsigned packages apt knows)
#   KT_TEST_RUN    -test.run of the bpf tests (default: all of them)
#   KT_TEST_SKIP   -test.skip (default: TestGeneratedNotStale, which needs
#                  clang, and the two perf-buffer load tests, slow under
#                  TCG; KT_TEST_SKIP='^TestGeneratedNotStale$' runs them too)
#   KT_REQUIRE     tests that must pass, not skip (default: those showing
#                  each mode attach and count, the auto chain, fexit's BTF
#                  variant); other tests may skip and are listed with why
#   KT_RATE        requests per second of the end-to-end load (100)
#   KT_DURATION    its duration per mode (2s)
#   KT_TIMEOUT     seconds each VM may run before it counts as hung (170)
#   KT_PARALLEL    1 boots the kernels at the same time, 0 one after another (1)
#   GO             the go command (go)
#   KT_ACCEL       kvm or tcg to skip the KVM check (default: KVM only when
#                  /dev/kvm exists and a quick KVM boot works)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$here/.cache/kernels
RUN=$CACHE/run
SETUP_LOG=${PROXYLAB_SETUP_LOG:-$here/.cache/setup.log}
GO=${GO:-go}
KT_TEST_RUN=${KT_TEST_RUN:-.}
# TestGeneratedNotStale needs clang. TestSmallBufferBurst and TestForcedLoss
# (6,400 and 20,000 connections) take about 80 s of a VM's 120 under TCG;
# they exercise perf-buffer accounting, which is the same in every mode, and
# `go test ./bpf` runs them on the host.
KT_TEST_SKIP=${KT_TEST_SKIP:-^(TestGeneratedNotStale|TestSmallBufferBurst|TestForcedLoss)\$}
KT_RATE=${KT_RATE:-100}
KT_DURATION=${KT_DURATION:-2s}
KT_TIMEOUT=${KT_TIMEOUT:-170}
KT_PARALLEL=${KT_PARALLEL:-1}
# Tests that must pass on every kernel booted here: each attach mode's
# exact counts, the auto chain and the fexit variant chosen from BTF.
KT_REQUIRE=${KT_REQUIRE:-TestAutoModeChain TestFentryMatchesKernelBTF TestCounts/kprobe TestCounts/fentry TestCounts/tracepoint}
# Package name patterns (grep -E) of the kernels tested by default: the
# oldest and newest Linux series Debian 12 ships. 6.10 changed
# inet_csk_accept's parameters, so the two need different fexit programs.
SERIES=('^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$')

say() { printf 'test-kernels: %s\n' "$*"; }
die() { printf 'test-kernels: error: %s\n' "$*" >&2; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "needs an x86-64 host to boot Debian's amd64 kernels (found $(uname -m))"
[[ $KT_DURATION =~ ^[1-9][0-9]*s$ ]] || die "KT_DURATION must be whole seconds such as 2s, got $KT_DURATION"
[[ $KT_RATE =~ ^[1-9][0-9]*$ ]] || die "KT_RATE must be a positive number, got $KT_RATE"
[[ $KT_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "KT_TIMEOUT must be seconds, got $KT_TIMEOUT"

if [ "$(id -u)" -eq 0 ]; then
	AS_ROOT=()
elif command -v sudo >/dev/null 2>&1; then
	AS_ROOT=(sudo)
else
	AS_ROOT=(none)
fi

# step WHAT COMMAND...: as in setup.sh, one line on the terminal, the
# command's output in the setup log, the log's tail when it fails.
step() {
	local what=$1
	shift
	mkdir -p "$(dirname "$SETUP_LOG")"
	printf '\n== %s %s\n' "$(date -u +%FT%TZ)" "$what" >>"$SETUP_LOG"
	printf 'test-kernels: %s... ' "$what"
	if ! "$@" >>"$SETUP_LOG" 2>&1; then
		printf 'failed, log: %s\n' "$SETUP_LOG"
		tail -n 20 "$SETUP_LOG" | sed 's/^/    /' >&2
		die "$what failed"
	fi
	printf 'done\n'
}

apt_root() {
	[ "${AS_ROOT[0]:-}" != none ] || { echo "needs root or sudo: apt-get $*"; return 1; }
	"${AS_ROOT[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q "$@"
}

# --- tools --------------------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
# busybox-static: the initramfs has no libc for a dynamically linked one.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
install_tools() { apt_root update && apt_root install -y --no-install-recommends "${need[@]}"; }
if [ ${#need[@]} -gt 0 ]; then
	command -v apt-get >/dev/null 2>&1 || die "needs ${need[*]} (Debian package names): install them with your package manager"
	step "installing ${need[*]} (Debian; to boot test kernels)" install_tools
fi

# --- kernels ------------------------------------------------------------------
mkdir -p "$CACHE"
apt_updated=0
# newest PATTERN: the newest package apt knows whose name matches PATTERN.
newest() {
	apt-cache search --names-only "$1" 2>/dev/null | awk '{print $1}' | grep -E "$1" | sort -V | tail -n 1
}
# resolve PATTERN: the package to test for one series, refreshing apt's
# lists once when they know none (a fresh container has no lists at all).
resolve() {
	local pkg
	pkg=$(newest "$1")
	if [ -z "$pkg" ] && [ "$apt_updated" = 0 ]; then
		step "refreshing apt's package lists (they name no kernel package yet)" apt_root update
		apt_updated=1
		pkg=$(newest "$1")
	fi
	[ -n "$pkg" ] || die "apt knows no package matching $1: is this Debian 12 with bookworm and bookworm-security in its sources?"
	resolved=$pkg
}

# prune PATTERN KEEP: removes cached kernels of the series other than KEEP,
# left behind when apt learnt of a newer one.
prune() {
	local f base
	for f in "$CACHE"/linux-image-*; do
		[ -e "$f" ] || continue
		base=$(basename "$f")
		base=${base%%_*}
		if grep -Eq "$1" <<<"$base" && [ "$base" != "$2" ]; then
			rm -rf "$f"
		fi
	done
}

# cached_deb PKG: the newest downloaded .deb of PKG, or nothing.
cached_deb() {
	local f
	for f in "$CACHE/$1"_*.deb; do
		[ -e "$f" ] && printf '%s\n' "$f"
	done | sort -V | tail -n 1
}

# fetch PKG: .cache/kernels/PKG/vmlinuz, downloading the .deb only when no
# version of PKG is cached yet.
fetch() {
	local pkg=$1 dir=$CACHE/$1 deb
	[ -s "$dir/vmlinuz" ] && return 0
	deb=$(cached_deb "$pkg")
	if [ -z "$deb" ]; then
		(cd "$CACHE" && apt-get download "$pkg") || { echo "apt-get download $pkg failed"; return 1; }
		deb=$(cached_deb "$pkg")
		[ -n "$deb" ] || { echo "apt-get download $pkg left no .deb in $CACHE"; return 1; }
	fi
	# Only the kernel image is needed: these kernels have built in
	# everything a loopback-only test uses (bpf, kprobes, tracefs, BTF).
	rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.tmp" --wildcards './boot/vmlinuz-*' ||
		{ echo "unpacking $deb failed"; return 1; }
	mkdir -p "$dir"
	mv "$dir.tmp"/boot/vmlinuz-* "$dir/vmlinuz"
	rm -rf "$dir.tmp"
}

if [ -n "${KERNELS:-}" ]; then
	read -r -a kernels <<<"$KERNELS"
else
	kernels=()
	for pattern in "${SERIES[@]}"; do
		resolve "$pattern"
		kernels+=("$resolved")
		prune "$pattern" "$resolved"
	done
fi
for k in "${kernels[@]}"; do
	if [ -s "$CACHE/$k/vmlinuz" ]; then
		say "kernel $k: cached"
	else
		what="fetching kernel $k (apt-get download into $CACHE)"
		[ -n "$(cached_deb "$k")" ] && what="unpacking kernel $k (downloaded earlier)"
		step "$what" fetch "$k"
	fi
done

# --- initramfs ----------------------------------------------------------------
rm -rf "$RUN" && mkdir -p "$RUN/root/bin"
root=$RUN/root
build_binaries() {
	cd "$here" &&
		CGO_ENABLED=0 "$GO" test -c -trimpath -ldflags='-s -w' -o "$root/bin/bpf.test" ./bpf &&
		for p in cmd/proxylab go-proxy upstream; do
			CGO_ENABLED=0 "$GO" build -trimpath -ldflags='-s -w' -o "$root/bin/$(basename "$p")" "./$p" || return 1
		done
}
t0=$(date +%s.%N)
if ! out=$(build_binaries 2>&1); then
	printf '%s\n' "$out" >&2
	die "building the static binaries for the test kernels failed (above)"
fi
cp /bin/busybox "$root/bin/busybox"
mkdir -p "$root"/{proc,sys,dev,tmp,etc}

# The guest's /init: mounts, lo, the bpf tests, then the end-to-end check
# per mode. Results go to the second serial port (/dev/ttyS1) as "KT ..."
# lines, so that kernel messages on the console cannot break them.
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
ip link set lo up
. /etc/kt.env

report() { echo "KT $*" >/dev/ttyS1; echo "KT $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
finish() {
	report "done"
	sync
	poweroff -f
	echo o >/proc/sysrq-trigger
}

report "boot kernel=$(uname -r) cpus=$(nproc) uptime=$(now) btf=$([ -e /sys/kernel/btf/vmlinux ] && echo yes || echo no)"

# The bpf tests, verbose; each result line is reported on its own.
t=$(now)
{ bpf.test -test.v -test.count=1 -test.timeout=100s -test.run "$KT_TEST_RUN" -test.skip "$KT_TEST_SKIP" 2>&1; echo $? >/tmp/tests.rc; } | tee /tmp/tests.out
sed -n 's/^ *--- \(PASS\|FAIL\|SKIP\): \([^ ]*\) (\([0-9.]*\)s)$/test name=\2 result=\1 secs=\3/p' /tmp/tests.out |
	while read -r line; do report "$line"; done
awk '/^ *[^ ]+\.go:[0-9]+: skipping: / { sub(/^ *[^ ]+ skipping: /, ""); why = $0 }
	/^ *--- SKIP: / { print "skip name=" $3 " err=" why; why = "" }' /tmp/tests.out |
	while read -r line; do report "$line"; done
auto=$(sed -n 's/.*auto attached \([a-z]*\) .*/\1/p' /tmp/tests.out | head -n 1)
fexit=$(sed -n 's/.*inet_csk_accept has [0-9]* parameters here: \([a-z0-9_]*\).*/\1/p' /tmp/tests.out | head -n 1)
report "tests rc=$(cat /tmp/tests.rc) secs=$(elapsed "$t") auto=${auto:-?} fexit_accept=${fexit:-?}"

# End to end: go-proxy in front of the upstream, churn load with a new
# connection per request. Two probes run at once in the same mode, one
# watching the proxy and one the load generator, both attached before the
# first request and read after the last: the proxy's accepts and the load
# generator's connects must each equal the requests sent.
LISTEN_ADDR=127.0.0.1:9000 upstream 2>/tmp/upstream.log &
LISTEN_ADDR=127.0.0.1:8081 UPSTREAM_ADDR=127.0.0.1:9000 go-proxy 2>/tmp/proxy.log &
proxy=$!
i=0
until wget -q -O /dev/null http://127.0.0.1:8081/ 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		report "e2e mode=all attach=fail err=go-proxy did not answer on 127.0.0.1:8081: $(tail -n 1 /tmp/proxy.log)"
		finish
	fi
	sleep 0.2
done

# json FILE FIELD: a number from proxylab probes' JSON output.
json() { sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$1" | head -n 1; }
# attached ERRFILE PID: waits until the probes process says it watches, or died.
attached() {
	i=0
	while ! grep -q 'watching process' "$1" 2>/dev/null; do
		kill -0 "$2" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -lt 600 ] || return 1
		sleep 0.1
	done
}

for mode in $KT_MODES; do
	t=$(now)
	d=/tmp/e2e-$mode
	mkdir -p "$d"
	mkfifo "$d/go"
	# The subshell keeps its pid when it execs the load generator, so it
	# can be watched before the load generator exists.
	(read -r _ <"$d/go" && exec proxylab attack http://127.0.0.1:8081/ --rate "$KT_RATE" \
		--duration "$KT_DURATION" --connections 4 --no-keepalive >"$d/attack" 2>&1) &
	loader=$!
	proxylab probes --pid $proxy --mode "$mode" --for 10m >"$d/proxy.json" 2>"$d/proxy.err" &
	pp=$!
	proxylab probes --pid $loader --mode "$mode" --for 10m >"$d/loader.json" 2>"$d/loader.err" &
	pl=$!
	if ! attached "$d/proxy.err" $pp || ! attached "$d/loader.err" $pl; then
		kill $pp $pl $loader 2>/dev/null
		err=$(grep -h -v '^$' "$d/proxy.err" "$d/loader.err" | grep -v 'received: stopping' | head -n 1)
		report "e2e mode=$mode attach=fail secs=$(elapsed "$t") err=${err:-probes did not attach within 60 s}"
		continue
	fi
	attach_secs=$(elapsed "$t")
	t2=$(now)
	echo go >"$d/go"
	wait $loader
	arc=$?
	kill -INT $pp $pl
	wait $pp
	prc=$?
	wait $pl
	lrc=$?
	load_secs=$(elapsed "$t2")
	requests=$(sed -n 's/^requests: *\([0-9]*\) in.*/\1/p' "$d/attack")
	success=$(sed -n 's/^success: *//p' "$d/attack")
	report "e2e mode=$mode attach=ok attack_rc=$arc probes_rc=$prc,$lrc requests=${requests:-?} success=${success:-?}" \
		"proxy_accepts=$(json "$d/proxy.json" accepts) proxy_connects=$(json "$d/proxy.json" connects)" \
		"loader_accepts=$(json "$d/loader.json" accepts) loader_connects=$(json "$d/loader.json" connects)" \
		"attach_secs=$attach_secs load_secs=$load_secs secs=$(elapsed "$t")"
	for f in attack proxy.err proxy.json loader.err loader.json; do
		sed "s|^|$mode $f: |" "$d/$f"
	done
done
finish
INIT
chmod +x "$root/init"
{
	printf 'KT_TEST_RUN=%q\nKT_TEST_SKIP=%q\n' "$KT_TEST_RUN" "$KT_TEST_SKIP"
	printf 'KT_RATE=%q\nKT_DURATION=%q\nKT_MODES="kprobe fentry tracepoint"\n' "$KT_RATE" "$KT_DURATION"
} >"$root/etc/kt.env"
(cd "$root" && find . -print0 | cpio -o -0 -H newc --quiet >"$RUN/initramfs.cpio") ||
	die "packing the initramfs failed"
say "initramfs: $(du -m "$RUN/initramfs.cpio" | cut -f1) MB, built in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s"

# --- accelerator --------------------------------------------------------------
qemu_base=(-m 1024 -smp 2 -display none -monitor none -no-reboot -nic none)
# kvm_works: boots the first kernel under KVM with an init that only
# powers off. Some hosts offer /dev/kvm yet cannot run a guest on it.
kvm_works() {
	local d=$RUN/kvm-check
	mkdir -p "$d/root/bin"
	cp /bin/busybox "$d/root/bin/busybox"
	printf '#!/bin/busybox sh\n/bin/busybox mount -t devtmpfs d /dev\n/bin/busybox echo KVM-OK >/dev/ttyS1\n/bin/busybox poweroff -f\n' >"$d/root/init"
	chmod +x "$d/root/init"
	(cd "$d/root" && find . | cpio -o -H newc --quiet >"$d/initramfs.cpio")
	# In a subshell, so that the shell's own "Aborted" for a crashing qemu
	# goes to the log too.
	(timeout 20 qemu-system-x86_64 -accel kvm -cpu max "${qemu_base[@]}" -serial "file:$d/console" -serial "file:$d/result" \
		-kernel "$CACHE/${kernels[0]}/vmlinuz" -initrd "$d/initramfs.cpio" -append "console=ttyS0 panic=-1 quiet" || :) \
		>"$d/qemu.log" 2>&1
	grep -q KVM-OK "$d/result" 2>/dev/null
}
accel=${KT_ACCEL:-}
if [ -z "$accel" ]; then
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		if kvm_works; then
			accel=kvm
		else
			say "/dev/kvm exists but a KVM guest does not boot here ($(grep -m1 -i 'error\|fail' "$RUN/kvm-check/qemu.log" 2>/dev/null || echo 'no answer within 20 s')): using TCG"
		fi
	fi
fi
case $accel in
kvm) accel_args=(-accel kvm -cpu max) ;;
# One host thread per VM: with several vCPU threads, a guest's code
# patching (static keys flipped as tracepoints attach) raced under TCG and
# oopsed 6.12 on an int3; it also keeps two VMs to one core each.
tcg) accel_args=(-accel "tcg,thread=single" -cpu max) ;;
*) die "KT_ACCEL must be kvm or tcg, got $accel" ;;
esac

# --- boot ---------------------------------------------------------------------
# boot KERNEL: runs one VM to its end; its console and results land in
# $RUN/KERNEL/, its wall time and exit status in files beside them.
boot() {
	local k=$1 d=$RUN/$1 start rc=0
	mkdir -p "$d"
	start=$(date +%s.%N)
	# In the background with its pid noted, so that an interrupted run can
	# stop it (timeout passes the signal on to qemu).
	timeout "$KT_TIMEOUT" qemu-system-x86_64 "${accel_args[@]}" "${qemu_base[@]}" \
		-serial "file:$d/console" -serial "file:$d/results" \
		-kernel "$CACHE/$k/vmlinuz" -initrd "$RUN/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 quiet" >"$d/qemu.log" 2>&1 &
	echo $! >"$d/pid"
	wait $! || rc=$?
	rm -f "$d/pid"
	echo "$rc" >"$d/rc"
	awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f\n", b - a }' >"$d/wall"
	# Serial output ends lines with CR LF.
	tr -d '\r' <"$d/results" >"$d/results.txt" 2>/dev/null || : >"$d/results.txt"
}

say "booting ${kernels[*]} under $accel (timeout ${KT_TIMEOUT} s each; consoles in $RUN/<kernel>/console)"
t0=$(date +%s.%N)
pids=()
stop_vms() {
	local f
	for f in "$RUN"/*/pid; do
		if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
	done
}
trap stop_vms EXIT
trap 'exit 130' INT TERM
for k in "${kernels[@]}"; do
	if [ "$KT_PARALLEL" = 1 ]; then
		boot "$k" &
		pids+=($!)
	else
		boot "$k"
	fi
done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
boot_wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

# --- verdict ------------------------------------------------------------------
# field LINE KEY: the value of KEY=... in a KT line (err= takes the rest).
field() {
	if [ "$2" = err ]; then
		sed -n 's/.* err=//p' <<<"$1"
	else
		tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n 1
	fi
}

# last_words CONSOLE: what the console says about a VM that did not finish:
# a kernel panic or oops, the test that was running, the last lines.
last_words() {
	local c
	c=$(tr -d '\r' <"$1" 2>/dev/null || true)
	printf '(console: %s)' "$1"
	grep -m2 -E 'Kernel panic|Oops|BUG:' <<<"$c" | sed 's/^\[ *[0-9.]*\] //' | tr '\n' ';' | sed 's/^/ kernel: /'
	grep -E '^=== RUN|^KT e2e' <<<"$c" | tail -n 1 | tr -d '\n' | sed 's/^/ last started: /'
	tail -n 2 <<<"$c" | tr '\n' ' ' | sed 's/^/ ends: /'
}

failures=()
notes=()
fail() { failures+=("$1: $2"); }
matrix="| kernel | mode | attaches | counts exact | bpf test | end to end: proxy accepts / loader connects / requests | time |
|---|---|---|---|---|---|---|"
summary="| kernel | accel | boot | bpf tests | auto picks | fexit accept variant | VM wall time |
|---|---|---|---|---|---|---|"

for k in "${kernels[@]}"; do
	d=$RUN/$k
	r=$d/results.txt
	rc=$(cat "$d/rc")
	name=$(sed -n 's/^KT boot kernel=\([^ ]*\).*/\1/p' "$r" | head -n 1)
	name=${name:-$k}
	if ! grep -q '^KT boot ' "$r"; then
		why="qemu exit status $rc"
		[ "$rc" = 124 ] && why="no boot within $KT_TIMEOUT s"
		fail "$k" "did not boot ($why); qemu: $(tail -n 1 "$d/qemu.log" 2>/dev/null) $(last_words "$d/console")"
		for mode in kprobe fentry tracepoint; do
			matrix+="
| $k | $mode | no (did not boot) | no | - | - | - |"
		done
		summary+="
| $k | $accel | did not boot | - | - | - | $(cat "$d/wall") s |"
		continue
	fi
	if ! grep -q '^KT done' "$r"; then
		why="qemu exit status $rc"
		[ "$rc" = 124 ] && why="killed after $KT_TIMEOUT s"
		fail "$name" "did not finish ($why) $(last_words "$d/console")"
	fi
	boot_at=$(field "$(grep -m1 '^KT boot ' "$r")" uptime)
	tests=$(grep -m1 '^KT tests ' "$r" || true)
	ntests=$(grep -c '^KT test ' "$r" || true)
	npass=$(grep -c '^KT test .* result=PASS' "$r" || true)
	nskip=$(grep -c '^KT test .* result=SKIP' "$r" || true)
	if [ -z "$tests" ]; then
		fail "$name" "the bpf tests did not finish"
	elif [ "$(field "$tests" rc)" != 0 ]; then
		fail "$name" "bpf tests failed (exit $(field "$tests" rc)): $(grep '^KT test .* result=FAIL' "$r" | sed 's/.*name=\([^ ]*\).*/\1/' | tr '\n' ' ')(see $d/console)"
	elif [ "$ntests" = 0 ]; then
		fail "$name" "no bpf test matched -test.run $KT_TEST_RUN"
	fi
	# Inside these kernels every mode is there, so the tests that show a mode
	# attaching and counting must pass; others may skip where the kernel
	# lacks what they check, and say why.
	for t in $KT_REQUIRE; do
		res=$(field "$(grep -m1 "^KT test name=$t " "$r" || true)" result)
		[ "$res" = PASS ] || fail "$name" "$t ${res:-did not run}, and it must pass on this kernel"
	done
	skipped=$(grep '^KT skip ' "$r" | sed 's/^KT skip name=\([^ ]*\).*/\1/' | tr '\n' ' ' | sed 's/ $//' || true)
	while read -r line; do
		[ -n "$line" ] && notes+=("$name: $(field "$line" name) skipped: $(field "$line" err)")
	done < <(grep '^KT skip ' "$r" || true)
	summary+="
| $name | $accel | ${boot_at:-?} s | $npass of $ntests passed, $nskip skipped${skipped:+ ($skipped)}, in $(field "$tests" secs) s | $(field "$tests" auto) | $(field "$tests" fexit_accept) | $(cat "$d/wall") s |"

	for mode in kprobe fentry tracepoint; do
		unit=$(grep -m1 "^KT test name=TestCounts/$mode " "$r" || true)
		e2e=$(grep -m1 "^KT e2e mode=$mode " "$r" || grep -m1 '^KT e2e mode=all ' "$r" || true)
		ures=$(field "$unit" result)
		attach=no exact=no counts=-
		[ "$ures" = PASS ] || fail "$name" "$mode: TestCounts/$mode ${ures:-did not run}"
		if [ -z "$e2e" ]; then
			fail "$name" "$mode: no end-to-end result"
		elif [ "$(field "$e2e" attach)" != ok ]; then
			fail "$name" "$mode: end to end did not attach: $(field "$e2e" err)"
		else
			attach=yes
			req=$(field "$e2e" requests) pa=$(field "$e2e" proxy_accepts) lc=$(field "$e2e" loader_connects)
			counts="$pa / $lc / $req"
			if [ "$(field "$e2e" attack_rc)" != 0 ] || [ "$(field "$e2e" success)" != 1.0000 ] || [ "$(field "$e2e" probes_rc)" != 0,0 ]; then
				fail "$name" "$mode: end to end: load or probes failed ($e2e)"
			elif [ -n "$req" ] && [ "$req" -gt 0 ] && [ "$pa" = "$req" ] && [ "$lc" = "$req" ] && [ "$(field "$e2e" loader_accepts)" = 0 ]; then
				[ "$ures" = PASS ] && exact=yes
			else
				fail "$name" "$mode: end to end counts not exact: proxy accepts $pa, loader connects $lc, loader accepts $(field "$e2e" loader_accepts), requests $req"
			fi
		fi
		[ "$ures" = PASS ] || attach=no
		secs=$(awk -v a="$(field "$unit" secs)" -v b="$(field "$e2e" secs)" 'BEGIN { printf "%.1f", a + b }')
		matrix+="
| $name | $mode | $attach | $exact | ${ures:-none} $(field "$unit" secs) s | $counts | $secs s |"
	done
done

printf '\n%s\n\n%s\n\n' "$matrix" "$summary"
for n in "${notes[@]}"; do say "$n"; done
say "VMs ran for $boot_wall s (KT_PARALLEL=$KT_PARALLEL); consoles in $RUN/<kernel>/console"
if [ ${#failures[@]} -gt 0 ]; then
	for f in "${failures[@]}"; do printf 'test-kernels: FAIL %s\n' "$f" >&2; done
	exit 1
fi
say "every mode attaches and counts exactly on ${kernels[*]}"
