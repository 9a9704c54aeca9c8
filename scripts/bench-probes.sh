#!/usr/bin/env bash
# The probes' observer effect: go-proxy under connection churn (wrk with
# Connection: close, a new connection per request: the accepts and
# connects the probes count), with the probes detached and attached in
# turn, A B A B, for every attach mode this host allows and every perf
# buffer setting in EVENTS. Prints, per mode and setting, the median of the
# per-pair throughput ratio on/off with its range, and how many accepts the
# probes counted per request wrk completed.
#
# go-proxy runs alone on PROXY_CPU with WORKERS=1; the upstream, wrk and the
# probes' reader on LOADGEN_CPU, as the lab places them on a 2-core host.
# Everything listens on ephemeral ports and is stopped on exit, Ctrl-C
# included. Needs root (the probes) and wrk.
#
# Environment: PAIRS (5), DURATION (5s), CONNECTIONS (32), EVENTS
# ("none all"), MODES (default: every mode `proxylab probes` says works),
# PROXY_CPU (1), LOADGEN_CPU (0), PROXYLAB (a proxylab binary to use).
# About modes x settings x PAIRS x 2 x (DURATION + 1 s): 2 x 5 x 2 x 6 s,
# two minutes, on a host with only tracepoints.
set -euo pipefail

PAIRS=${PAIRS:-5}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
EVENTS=${EVENTS:-none all}
PROXY_CPU=${PROXY_CPU:-1}
LOADGEN_CPU=${LOADGEN_CPU:-0}

die() { printf 'bench-probes: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || die "DURATION must be whole seconds such as 5s, got '$DURATION'"
for v in PAIRS CONNECTIONS PROXY_CPU LOADGEN_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
for e in $EVENTS; do
	[[ $e =~ ^(none|all|[0-9]+)$ ]] || die "EVENTS: '$e' is not none, all or a sample rate N"
done
[ "$(id -u)" -eq 0 ] || die "needs root: the probes attach eBPF programs"
for tool in wrk taskset go awk; do
	command -v "$tool" >/dev/null || die "needs $tool (wrk: apt-get install wrk, or scripts/setup.sh --wrk)"
done

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/proxylab-bench-probes.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ours=${PROXYLAB:-}
if [ -z "$ours" ]; then
	(cd "$root" && go build -o "$tmp/proxylab" ./cmd/proxylab)
	ours=$tmp/proxylab
fi
say "building the upstream and go-proxy into $root/bin"
"$ours" --root "$root" build --no-images go >/dev/null || die "proxylab build --no-images go failed (its output is above)"

# listen_addr LOG PID: the address a process reported with listen=ADDR.
listen_addr() {
	for _ in $(seq 200); do
		a=$(sed -n 's/.* listen=\([^ ]*\).*/\1/p' "$1" | head -n 1)
		[ -n "$a" ] && { echo "$a"; return; }
		kill -0 "$2" 2>/dev/null || { cat "$1" >&2; die "$(basename "$1" .log) exited before listening"; }
		sleep 0.05
	done
	die "$(basename "$1" .log) did not report its address within 10 s"
}

LISTEN_ADDR=127.0.0.1:0 setsid taskset -c "$LOADGEN_CPU" "$root/bin/upstream" 2>"$tmp/upstream.log" &
pids+=($!)
upstream=$(listen_addr "$tmp/upstream.log" $!)
LISTEN_ADDR=127.0.0.1:0 UPSTREAM_ADDR=$upstream WORKERS=1 setsid taskset -c "$PROXY_CPU" "$root/bin/go-proxy" 2>"$tmp/proxy.log" &
proxy=$!
pids+=("$proxy")
url=http://$(listen_addr "$tmp/proxy.log" "$proxy")/

modes=${MODES:-$("$ours" probes 2>/dev/null | awk '$2 == "yes" {print $1}' | tr '\n' ' ')}
[ -n "${modes// /}" ] || die "no attach mode works on this host (proxylab probes says why)"

# churn: one wrk run with a new connection per request; prints requests/s
# and completed requests.
churn() {
	taskset -c "$LOADGEN_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H 'Connection: close' "$url" >"$tmp/wrk" 2>&1 ||
		{ cat "$tmp/wrk" >&2; die "wrk failed"; }
	awk '/^Requests\/sec:/ {r = $2} /requests in/ {n = $1} END {print r, n}' "$tmp/wrk"
}

# attached MODE EVENTS: one run with the probes watching go-proxy; prints
# requests/s, completed requests and the accepts counted.
attached() {
	local d=${DURATION%s}
	taskset -c "$LOADGEN_CPU" "$ours" probes --pid "$proxy" --mode "$1" --events "$2" --reader-cpus "$LOADGEN_CPU" \
		--for "$((d + 2))s" >"$tmp/probes" 2>"$tmp/probes.err" &
	local p=$!
	pids+=("$p")
	for _ in $(seq 100); do grep -q watching "$tmp/probes.err" && break; sleep 0.05; done
	grep -q watching "$tmp/probes.err" || { cat "$tmp/probes.err" >&2; die "probes did not attach in $1 mode"; }
	read -r rps n < <(churn)
	wait "$p" || { cat "$tmp/probes.err" >&2; die "proxylab probes failed"; }
	accepts=$(awk -F: '/"accepts"/ {gsub(/[ ,]/, "", $2); print $2}' "$tmp/probes")
	echo "$rps $n $accepts"
}

say "go-proxy on CPU $PROXY_CPU, upstream, wrk and the reader on CPU $LOADGEN_CPU; modes: $modes; events: $EVENTS; $PAIRS pairs of $DURATION"
churn >/dev/null # warm-up, not measured
printf '%-11s %-7s %12s %12s %8s %15s %16s\n' mode events "off req/s" "on req/s" "on/off" "range" "accepts/request"
for m in $modes; do
	for e in $EVENTS; do
		ratios=() offs=() ons=() per=()
		for ((i = 1; i <= PAIRS; i++)); do
			say "$m events=$e pair $i/$PAIRS"
			read -r off _ < <(churn)
			read -r on n acc < <(attached "$m" "$e")
			ratios+=("$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.4f", a / b}')")
			offs+=("$off") ons+=("$on")
			per+=("$(awk -v a="$acc" -v n="$n" 'BEGIN {printf "%.3f", a / n}')")
		done
		printf '%s\n' "${ratios[@]}" | sort -n >"$tmp/r"
		printf '%s\n' "${offs[@]}" | sort -n >"$tmp/off"
		printf '%s\n' "${ons[@]}" | sort -n >"$tmp/on"
		printf '%s\n' "${per[@]}" | sort -n >"$tmp/per"
		med() { awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}' "$1"; }
		printf '%-11s %-7s %12.0f %12.0f %8.3f %15s %16s\n' "$m" "$e" "$(med "$tmp/off")" "$(med "$tmp/on")" "$(med "$tmp/r")" \
			"$(head -n 1 "$tmp/r")-$(tail -n 1 "$tmp/r")" "$(med "$tmp/per")"
	done
done
echo "on/off: per-pair ratio of requests/s with the probes attached to detached, median and range over $PAIRS pairs"
echo "accepts/request: accepts the probes counted per request wrk completed in the window (a little above 1: the window is wider than wrk's run)"
