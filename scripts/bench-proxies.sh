#!/usr/bin/env bash
# Benchmarks the proxies themselves: go, rust, zig and the nginx baseline
# (the host's nginx with the configuration `proxylab compare` generates for
# it), each as a host process pinned as the lab pins it on a 2-core host:
# the proxy alone on PROXY_CPU with one worker (WORKERS=1, one nginx
# worker), the lab's upstream and the load generators together on the other
# CPU. The upstream listens on an ephemeral port, the lab's proxies too, and
# nginx on NGINX_PORT, so the bench never collides with the lab's fixed
# ports (8081-8084, 9000).
#
# After one unmeasured warm-up round (every run WARMUP long), ROUNDS rounds
# measure every proxy in an order that rotates (round r starts with proxy
# r mod the number of proxies), so that drift of a shared machine hits all
# alike. Per round and proxy:
#   (a) closed loop, keep-alive, CONNECTIONS connections: requests/s with
#       the lab's load generator (proxylab attack --rate 0) and with wrk -t1;
#   (b) the proxy's CPU time per request at RATE/s (open model, keep-alive):
#       utime+stime from /proc/PID/stat (master and workers for nginx)
#       before and after, over the successful requests;
#   (c) as (b) with a new connection per request (attack --no-keepalive,
#       which sends Connection: close) at CLOSE_RATE/s: CPU per request and
#       requests/s;
#   (d) closed loop, WIDE_CONNECTIONS connections, wrk -t1 --latency, on a
#       freshly started proxy: requests/s, p99, and the proxy's peak RSS
#       (VmHWM from /proc/PID/status, summed over nginx's processes).
# CPU time comes in clock ticks (getconf CLK_TCK, 100 a second): at the
# defaults a run's proxy CPU is a few hundred ticks, so a tick is under 1%.
# Each proxy process gets WARMUP of unmeasured load first. RATE and
# CLOSE_RATE must be rates every proxy holds: a run where the load generator
# fell short of its rate is flagged "short" in the tables, one with failed
# requests "errors".
#
# Prints one table per measure: per proxy the median and range across
# rounds, and the median and range of the per-round ratio to nginx (each
# round's proxy against the same round's nginx; for p99, against the
# round's best proxy). The raw per-round numbers go to a TSV file in
# RESULTS_DIR, whose path is printed: columns round, proxy, metric (a_attack_rps,
# a_wrk_rps, b_rps, b_cpu_us, c_rps, c_cpu_us, d_rps, d_p99_us, d_rss_kib),
# value, flag (short, errors or -), after # lines naming host and settings.
# Progress goes to stderr.
#
# It takes about ROUNDS x proxies x (5 x DURATION + 2 x WARMUP + 1 s) plus
# proxies x (7 x WARMUP + 1 s) for the warm-up round: with the defaults
# 5 x 4 x 28 s + 32 s, about 10 minutes, plus building binaries that changed.
#
# Environment (defaults in brackets):
#   ROUNDS [5]            measured rounds
#   DURATION [5s]         each measured run, whole seconds
#   WARMUP [1s]           each unmeasured run: per proxy process, and the warm-up round
#   RATE [20000]          requests/s of (b)
#   CLOSE_RATE [5000]     requests/s of (c)
#   CONNECTIONS [64]      connections of (a), (b) and (c)
#   WIDE_CONNECTIONS [400] connections of (d)
#   RESPONSE_BYTES [1024] the upstream's response body size
#   PROXIES [go rust zig nginx]  which to measure, in this order
#   VARIANTS []           more rows, each LABEL:BINARY[:NAME=VALUE...]: a proxy
#                         binary that takes the contract's environment, run with
#                         the extra variables, e.g. to measure a measurement-only
#                         switch or an older build beside the current ones:
#                         VARIANTS="rust-nogate:bin/rust-proxy:PROXYLAB_MEASURE_NO_GATE=1"
#   PROXY_CPU [1]         the proxy's CPU
#   UPSTREAM_CPU [0]      the upstream's CPU
#   LOADGEN_CPU [0]       the load generators' CPU
#   NGINX_PORT [18084]    nginx's port on 127.0.0.1
#   RESULTS_DIR [results/ of this checkout]  where the TSV file goes
#   PROXYLAB              a proxylab binary to use instead of building one
# Everything it starts is stopped on exit, Ctrl-C included.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
RATE=${RATE:-20000}
CLOSE_RATE=${CLOSE_RATE:-5000}
CONNECTIONS=${CONNECTIONS:-64}
WIDE_CONNECTIONS=${WIDE_CONNECTIONS:-400}
RESPONSE_BYTES=${RESPONSE_BYTES:-1024}
PROXIES=${PROXIES:-go rust zig nginx}
PROXY_CPU=${PROXY_CPU:-1}
UPSTREAM_CPU=${UPSTREAM_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-0}
NGINX_PORT=${NGINX_PORT:-18084}

die() { printf 'bench-proxies: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

# --- settings -----------------------------------------------------------------
for v in DURATION WARMUP; do
	[[ ${!v} =~ ^[1-9][0-9]*s$ ]] || die "$v must be whole seconds such as 5s, got '${!v}'"
done
for v in ROUNDS RATE CLOSE_RATE CONNECTIONS WIDE_CONNECTIONS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number, got '${!v}'"
done
[[ $RESPONSE_BYTES =~ ^[0-9]+$ ]] || die "RESPONSE_BYTES must be a whole number of bytes, got '$RESPONSE_BYTES'"
for v in PROXY_CPU UPSTREAM_CPU LOADGEN_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be one CPU number such as 1, got '${!v}'"
done
if ! [[ $NGINX_PORT =~ ^[0-9]+$ ]] || [ "$NGINX_PORT" -lt 1024 ] || [ "$NGINX_PORT" -gt 65535 ]; then
	die "NGINX_PORT must be a port from 1024 to 65535, got '$NGINX_PORT'"
fi
case $NGINX_PORT in
8081 | 8082 | 8083 | 8084 | 9000) die "NGINX_PORT=$NGINX_PORT is one of the lab's fixed ports (8081-8084, 9000): pick another" ;;
esac
read -r -a proxies <<<"$PROXIES"
[ "${#proxies[@]}" -gt 0 ] || die "PROXIES is empty: name some of go rust zig nginx"
for p in "${proxies[@]}"; do
	case $p in
	go | rust | zig | nginx) ;;
	*) die "PROXIES: unknown proxy '$p' (known: go rust zig nginx; other binaries go in VARIANTS)" ;;
	esac
done
# A variant is a row of its own: a binary and the variables it runs with.
declare -A variant_bin=() variant_env=()
read -r -a variants <<<"${VARIANTS:-}"
for v in "${variants[@]}"; do
	IFS=: read -r -a parts <<<"$v"
	label=${parts[0]} bin=${parts[1]:-}
	[[ $label =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "VARIANTS: '$v' must start with a label of a-z, 0-9, - and _, then :BINARY"
	[ -n "$bin" ] || die "VARIANTS: '$v' names no binary (LABEL:BINARY[:NAME=VALUE...])"
	[ -x "$bin" ] || die "VARIANTS: $label: $bin is not an executable file"
	for e in "${parts[@]:2}"; do
		[[ $e =~ ^[A-Z_][A-Z0-9_]*=.*$ ]] || die "VARIANTS: $label: '$e' is not NAME=VALUE"
	done
	variant_bin[$label]=$(realpath "$bin")
	variant_env[$label]="${parts[*]:2}"
	proxies+=("$label")
done
for i in "${!proxies[@]}"; do
	for ((j = 0; j < i; j++)); do
		[ "${proxies[$j]}" != "${proxies[$i]}" ] || die "PROXIES and VARIANTS name ${proxies[$i]} twice"
	done
done

need() { command -v "$1" >/dev/null || die "needs $1: $2"; }
need wrk "apt-get install wrk (or scripts/setup.sh --wrk)"
need taskset "apt-get install util-linux"
need setsid "apt-get install util-linux"
need go "Go 1.26 or newer builds the lab (README.md)"
need awk "apt-get install mawk"
for v in PROXY_CPU UPSTREAM_CPU LOADGEN_CPU; do
	taskset -c "${!v}" true 2>/dev/null || die "$v=${!v}: this process may not run on CPU ${!v} (allowed: $(taskset -pc $$ | sed 's/.*: //'))"
done
if [ "$PROXY_CPU" = "$LOADGEN_CPU" ] || [ "$PROXY_CPU" = "$UPSTREAM_CPU" ]; then
	say "bench-proxies: warning: the proxy shares CPU $PROXY_CPU with the upstream or the load generator; its numbers mix with theirs"
fi

nginx_bin=
if [[ " ${proxies[*]} " == *" nginx "* ]]; then
	for c in "$(command -v nginx || true)" /usr/sbin/nginx /usr/local/sbin/nginx /usr/local/nginx/sbin/nginx; do
		if [ -n "$c" ] && [ -x "$c" ]; then nginx_bin=$c && break; fi
	done
	if [ -z "$nginx_bin" ]; then
		say "bench-proxies: nginx is not installed: skipping the nginx baseline (no ratios to nginx);" \
			"install it with \`apt-get install nginx\` (or \`sudo scripts/setup.sh --nginx\`)"
		kept=()
		for p in "${proxies[@]}"; do [ "$p" = nginx ] || kept+=("$p"); done
		proxies=("${kept[@]}")
		[ "${#proxies[@]}" -gt 0 ] || die "nothing left to measure"
	fi
fi

root=$(cd "$(dirname "$0")/.." && pwd)
RESULTS_DIR=${RESULTS_DIR:-$root/results}

# --- processes and cleanup ----------------------------------------------------
tmp=$(mktemp -d /tmp/proxylab-bench-proxies.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# forget PID: a process that was waited for leaves the list, so that the
# cleanup never signals a later process that got its pid.
forget() {
	local keep=() p
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}

# run CMD...: runs one load generator in the background and waits for it, so
# that a signal reaches the trap at once instead of after the run.
run() {
	"$@" >"$tmp/out" 2>&1 &
	local pid=$! rc=0
	pids+=("$pid")
	wait "$pid" || rc=$?
	forget "$pid"
	# Ctrl-C reaches the load generator too, and its exit may be seen
	# before the trap runs: that is an interrupt, not a failure.
	[ "$rc" -lt 128 ] || exit 130
	[ -z "$proxy_pid" ] || alive
	[ "$rc" -eq 0 ] || { cat "$tmp/out" >&2; die "$* failed (exit $rc)"; }
}

# --- build --------------------------------------------------------------------
ours=${PROXYLAB:-}
if [ -z "$ours" ]; then
	(cd "$root" && go build -o "$tmp/proxylab" ./cmd/proxylab)
	ours=$tmp/proxylab
fi
lab_proxies=()
for p in "${proxies[@]}"; do
	case $p in go | rust | zig) lab_proxies+=("$p") ;; esac
done
upstream_bin=$root/bin/upstream
if [ "${#lab_proxies[@]}" -gt 0 ]; then
	say "building the upstream and ${lab_proxies[*]} into $root/bin"
	"$ours" --root "$root" build --no-images "${lab_proxies[@]}" >/dev/null ||
		die "proxylab build --no-images ${lab_proxies[*]} failed (its output is above)"
else
	# proxylab build without names builds every proxy; nginx alone needs
	# only the upstream.
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$tmp/upstream" ./upstream)
	upstream_bin=$tmp/upstream
fi
declare -A binary=([go]=go-proxy [rust]=rust-proxy [zig]=zig-proxy)

# --- the upstream -------------------------------------------------------------
# The upstream and the proxies run in sessions of their own (setsid, which
# keeps the pid: a background job of a script leads no process group), so
# that Ctrl-C reaches the script and its load generators but not them: a
# proxy vanishing mid-measurement would turn an interrupt into an error;
# the trap stops them instead.

# await_listen LOG PID: the address a process reported with listen=ADDR.
await_listen() {
	local addr=
	for _ in $(seq 200); do
		addr=$(sed -n 's/.* listen=\([^ ]*\).*/\1/p' "$1" | head -n 1)
		[ -n "$addr" ] && { printf '%s\n' "$addr"; return; }
		kill -0 "$2" 2>/dev/null || { cat "$1" >&2; die "$(basename "$1" .log) exited before listening"; }
		sleep 0.05
	done
	die "$(basename "$1" .log) did not report its address within 10 s"
}

LISTEN_ADDR=127.0.0.1:0 RESPONSE_BYTES=$RESPONSE_BYTES setsid taskset -c "$UPSTREAM_CPU" "$upstream_bin" 2>"$tmp/upstream.log" &
pids+=($!)
upstream_pid=$!
upstream=$(await_listen "$tmp/upstream.log" "$upstream_pid")

# --- the proxy under test -----------------------------------------------------
proxy_pid=
proxy_name=
url=

# http_ok HOST PORT: one GET through bash's /dev/tcp answered with 200; in
# a subshell, so that a refused connection cannot end the script.
http_ok() {
	(
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf 'GET / HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' "$1" "$2" >&3
		IFS= read -r -t 2 line <&3 && [[ $line == "HTTP/1.1 200"* ]]
	) 2>/dev/null
}

# start_proxy NAME CONNS: starts NAME pinned to PROXY_CPU and waits until a
# request through it succeeds; sets proxy_pid and url. CONNS sizes nginx's
# configuration as compare sizes it from the scenario's connections.
start_proxy() {
	local log=$tmp/$1.log addr
	: >"$log"
	proxy_name=$1
	if [ "$1" = nginx ]; then
		! (exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null ||
			die "something already listens on NGINX_PORT=$NGINX_PORT: pick a free port"
		mkdir -p "$tmp/nginx"
		"$ours" nginx-config --listen "127.0.0.1:$NGINX_PORT" --upstream "$upstream" --workers 1 \
			--connections "$2" --temp-dir "$tmp/nginx" >"$tmp/nginx/nginx.conf" ||
			die "$ours nginx-config failed: PROXYLAB must be a proxylab built from this checkout"
		setsid taskset -c "$PROXY_CPU" "$nginx_bin" -e stderr -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" 2>"$log" &
		proxy_pid=$!
		addr=127.0.0.1:$NGINX_PORT
	else
		local bin=${variant_bin[$1]:-$root/bin/${binary[$1]:-}} extra
		read -r -a extra <<<"${variant_env[$1]:-}"
		env LISTEN_ADDR=127.0.0.1:0 UPSTREAM_ADDR="$upstream" WORKERS=1 "${extra[@]}" \
			setsid taskset -c "$PROXY_CPU" "$bin" 2>"$log" &
		proxy_pid=$!
		addr=$(await_listen "$log" "$proxy_pid")
	fi
	pids+=("$proxy_pid")
	url=http://$addr/
	for _ in $(seq 200); do
		http_ok "${addr%:*}" "${addr##*:}" && return
		kill -0 "$proxy_pid" 2>/dev/null || { cat "$log" >&2; die "$1 exited before answering"; }
		sleep 0.05
	done
	cat "$log" >&2
	die "$1 did not answer a request on $addr within 10 s"
}

# stop_proxy NAME: SIGTERM, and SIGKILL if it has not stopped after 10 s.
stop_proxy() {
	kill "$proxy_pid" 2>/dev/null || true
	for _ in $(seq 200); do
		kill -0 "$proxy_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$proxy_pid" 2>/dev/null || true
	wait "$proxy_pid" 2>/dev/null || true
	forget "$proxy_pid"
	proxy_pid=
}

# alive: the proxy must survive every run, or its numbers mean nothing.
alive() {
	kill -0 "$proxy_pid" 2>/dev/null ||
		{ tail -n 20 "$tmp/$proxy_name.log" >&2; die "$proxy_name died during a run (its last log lines are above)"; }
}

# proxy_processes: the proxy, and for nginx its workers too.
proxy_processes() {
	echo "$proxy_pid"
	cat "/proc/$proxy_pid/task/$proxy_pid/children" 2>/dev/null || pgrep -P "$proxy_pid" || true
}
# proc_sum FILE AWK: AWK's sum over the proxy's /proc/PID/FILE files.
proc_sum() {
	local files=() p
	for p in $(proxy_processes); do files+=("/proc/$p/$1"); done
	awk "$2" "${files[@]}" 2>/dev/null || die "the proxy's processes vanished while being measured"
}
# shellcheck disable=SC2016 # the $ fields are awk's
cpu_ticks() { proc_sum stat '{t += $14 + $15} END {print t}'; }
# shellcheck disable=SC2016
peak_rss_kib() { proc_sum status '/^VmHWM:/ {k += $2} END {print k}'; }

# --- load generators ----------------------------------------------------------
hz=$(getconf CLK_TCK)
# attack DURATION RATE [--no-keepalive]: sets rps (successful responses/s),
# ok (successful requests) and flag; runs in this shell, not in a $(...), so
# that the trap knows every process to stop.
attack() {
	run taskset -c "$LOADGEN_CPU" "$ours" attack "$url" --rate "$2" --connections "$CONNECTIONS" --duration "$1" "${@:3}"
	read -r rps ok flag < <(awk '
		/^requests:/ {n = $2} /^throughput:/ {t = $2} /^success:/ {s = $2} /^saturated:/ {short = 1}
		END {
			if (n == "" || t == "" || s == "") exit 1
			f = short ? "short" : ""
			if (s < 1) f = f (f == "" ? "" : ",") "errors"
			printf "%s %.0f %s\n", t, n * s, (f == "" ? "-" : f)
		}' "$tmp/out") || { cat "$tmp/out" >&2; die "could not read proxylab attack's output (above)"; }
	[ "$ok" -gt 0 ] || { cat "$tmp/out" >&2; die "no request through $url succeeded (attack's output is above)"; }
}

# wrk_run DURATION CONNS [ARGS...]: sets rps, p99_us and flag.
wrk_run() {
	run taskset -c "$LOADGEN_CPU" wrk -t1 -c"$2" -d"$1" "${@:3}" "$url"
	read -r rps p99_us flag < <(awk '
		function us(v) {
			if (v ~ /us$/) return v + 0
			if (v ~ /ms$/) return v * 1000
			if (v ~ /s$/) return v * 1000000
			if (v ~ /m$/) return v * 60000000
			return -1
		}
		/^Requests\/sec:/ {r = $2}
		/^ +99%/ {p = us($2)}
		/Non-2xx or 3xx responses:/ {bad += $NF}
		/Socket errors:/ {gsub(/,/, ""); bad += $4 + $6 + $8 + $10}
		END {
			if (r == "") exit 1
			printf "%s %s %s\n", r, (p == "" ? "-" : p), (bad > 0 ? "errors" : "-")
		}' "$tmp/out") || { cat "$tmp/out" >&2; die "could not read wrk's output (above)"; }
}

# --- one proxy, one round -----------------------------------------------------
# record ROUND PROXY METRIC VALUE FLAG: one TSV row; round 0, the warm-up,
# is not recorded.
record() { [ "$1" -eq 0 ] || printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$out_tsv"; }

# measure LABEL ROUND NAME DURATION: the runs (a) to (d) of one proxy; ROUND
# 0 is the warm-up round, which records nothing.
measure() {
	local label=$1 r=$2 p=$3 d=$4 t0 t1
	start_proxy "$p" "$CONNECTIONS"
	say "$label: $p warm-up ($WARMUP)"
	attack "$WARMUP" 0
	say "$label: $p (a) attack --rate 0, $CONNECTIONS connections, $d"
	attack "$d" 0
	record "$r" "$p" a_attack_rps "$rps" "$flag"
	say "$label: $p (a) wrk -c$CONNECTIONS, $d"
	wrk_run "$d" "$CONNECTIONS"
	record "$r" "$p" a_wrk_rps "$rps" "$flag"
	say "$label: $p (b) attack --rate $RATE, keep-alive, $d"
	t0=$(cpu_ticks)
	attack "$d" "$RATE"
	t1=$(cpu_ticks)
	record "$r" "$p" b_rps "$rps" "$flag"
	record "$r" "$p" b_cpu_us "$(per_request $((t1 - t0)) "$ok")" "$flag"
	say "$label: $p (c) attack --rate $CLOSE_RATE --no-keepalive, $d"
	t0=$(cpu_ticks)
	attack "$d" "$CLOSE_RATE" --no-keepalive
	t1=$(cpu_ticks)
	record "$r" "$p" c_rps "$rps" "$flag"
	record "$r" "$p" c_cpu_us "$(per_request $((t1 - t0)) "$ok")" "$flag"
	stop_proxy

	# A fresh process, so that its peak RSS is that of this load alone.
	start_proxy "$p" "$WIDE_CONNECTIONS"
	say "$label: $p (d) warm-up ($WARMUP)"
	wrk_run "$WARMUP" "$WIDE_CONNECTIONS"
	say "$label: $p (d) wrk -c$WIDE_CONNECTIONS --latency, $d"
	wrk_run "$d" "$WIDE_CONNECTIONS" --latency
	record "$r" "$p" d_rps "$rps" "$flag"
	record "$r" "$p" d_p99_us "$p99_us" "$flag"
	record "$r" "$p" d_rss_kib "$(peak_rss_kib)" -
	stop_proxy
}

# per_request TICKS REQUESTS: CPU microseconds per request.
per_request() {
	awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { printf "%.3f\n", t * 1000000 / hz / n }'
}

# --- the rounds ---------------------------------------------------------------
n=${#proxies[@]}
d=${DURATION%s} w=${WARMUP%s}
estimate=$((ROUNDS * n * (5 * d + 2 * w + 1) + n * (7 * w + 1)))
mkdir -p "$RESULTS_DIR" || die "cannot create RESULTS_DIR=$RESULTS_DIR"
out_tsv=$RESULTS_DIR/bench-proxies-$(date -u +%Y%m%dT%H%M%SZ).tsv
{
	printf '# proxylab bench-proxies %s, commit %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
	printf '# host: %s, %s CPUs, kernel %s; nginx: %s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
		"$(nproc)" "$(uname -r)" "$([ -n "$nginx_bin" ] && "$nginx_bin" -v 2>&1 | sed 's/.*: //' || echo none)"
	printf '# proxy CPU %s, upstream CPU %s, load generators CPU %s; DURATION=%s WARMUP=%s RATE=%s CLOSE_RATE=%s CONNECTIONS=%s WIDE_CONNECTIONS=%s RESPONSE_BYTES=%s\n' \
		"$PROXY_CPU" "$UPSTREAM_CPU" "$LOADGEN_CPU" "$DURATION" "$WARMUP" "$RATE" "$CLOSE_RATE" "$CONNECTIONS" "$WIDE_CONNECTIONS" "$RESPONSE_BYTES"
	printf 'round\tproxy\tmetric\tvalue\tflag\n'
} >"$out_tsv"
say "${proxies[*]}: proxy on CPU $PROXY_CPU, upstream $upstream on CPU $UPSTREAM_CPU, load generators on CPU $LOADGEN_CPU;" \
	"$ROUNDS rounds of $DURATION runs after a warm-up round: about $(((estimate + 59) / 60)) min"
say "raw numbers: $out_tsv"

for ((r = 0; r <= ROUNDS; r++)); do
	label="round $r/$ROUNDS"
	[ "$r" -gt 0 ] || label="warm-up round"
	for ((k = 0; k < n; k++)); do
		p=${proxies[$(((r + k) % n))]}
		if [ "$r" -eq 0 ]; then measure "$label" 0 "$p" "$WARMUP"; else measure "$label" "$r" "$p" "$DURATION"; fi
	done
done

# --- tables -------------------------------------------------------------------
# table METRIC TITLE FORMAT SCALE RATIO: per proxy the median and range of
# METRIC x SCALE over the rounds, and of its per-round ratio to nginx
# (RATIO=nginx) or to the round's lowest value (RATIO=best).
table() {
	awk -F '\t' -v metric="$1" -v title="$2" -v fmt="$3" -v scale="$4" -v mode="$5" -v order="${proxies[*]}" -v rounds="$ROUNDS" '
		function median(a, k,   i, j, x) {
			for (i = 2; i <= k; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
			return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
		}
		/^#/ || $1 == "round" || $3 != metric { next }
		{ v[$2, $1] = $4 * scale; if ($5 != "-") flags[$2] = flags[$2] " " $5 }
		END {
			np = split(order, ps, " ")
			for (r = 1; r <= rounds; r++) for (i = 1; i <= np; i++) if ((ps[i], r) in v)
				if (!((r) in best) || v[ps[i], r] < best[r]) best[r] = v[ps[i], r]
			rh = mode == "best" ? "/best" : "/nginx"
			print title
			printf "%-12s %10s %21s %8s %13s  %s\n", "proxy", "median", "range", rh, "range", "flags"
			for (i = 1; i <= np; i++) {
				p = ps[i]; k = 0; m = 0
				for (r = 1; r <= rounds; r++) if ((p, r) in v) {
					x[++k] = v[p, r]
					base = mode == "best" ? best[r] : ((("nginx", r) in v) ? v["nginx", r] : "")
					if (base != "" && base > 0) q[++m] = v[p, r] / base
				}
				if (k == 0) continue
				lo = hi = x[1]; for (j = 2; j <= k; j++) { if (x[j] < lo) lo = x[j]; if (x[j] > hi) hi = x[j] }
				med = median(x, k)
				rs = "-"; rr = "-"
				if (m > 0 && !(mode == "nginx" && p == "nginx")) {
					qlo = qhi = q[1]; for (j = 2; j <= m; j++) { if (q[j] < qlo) qlo = q[j]; if (q[j] > qhi) qhi = q[j] }
					rs = sprintf("%.3f", median(q, m)); rr = sprintf("%.3f-%.3f", qlo, qhi)
				}
				nf = split(flags[p], fl, " "); fs = ""
				delete cnt; for (j = 1; j <= nf; j++) cnt[fl[j]]++
				for (f in cnt) fs = fs (fs == "" ? "" : ", ") f " x" cnt[f]
				printf "%-12s %10s %21s %8s %13s  %s\n", p, sprintf(fmt, med), sprintf(fmt "-" fmt, lo, hi), rs, rr, fs
			}
			print ""
		}' "$out_tsv"
}

echo
table a_attack_rps "(a) closed loop, keep-alive, $CONNECTIONS connections, proxylab attack --rate 0: requests/s" "%.0f" 1 nginx
table a_wrk_rps "(a) closed loop, keep-alive, $CONNECTIONS connections, wrk -t1: requests/s" "%.0f" 1 nginx
table b_cpu_us "(b) proxy CPU per request at $RATE/s, keep-alive: µs" "%.2f" 1 nginx
table b_rps "(b) requests/s held at $RATE/s, keep-alive" "%.0f" 1 nginx
table c_cpu_us "(c) proxy CPU per request at $CLOSE_RATE/s, a new connection per request: µs" "%.2f" 1 nginx
table c_rps "(c) requests/s held at $CLOSE_RATE/s, a new connection per request" "%.0f" 1 nginx
table d_rps "(d) closed loop, $WIDE_CONNECTIONS connections, wrk -t1: requests/s" "%.0f" 1 nginx
table d_p99_us "(d) closed loop, $WIDE_CONNECTIONS connections, wrk -t1: p99 latency, ms" "%.2f" 0.001 best
table d_rss_kib "(d) peak RSS of the proxy at $WIDE_CONNECTIONS connections: MiB" "%.1f" 0.0009765625 nginx
echo "medians and ranges over $ROUNDS round(s); ratios per round against the same round's nginx (p99: the round's best)"
echo "flags: short = the load generator fell short of the rate in that many rounds; errors = failed requests"
echo "raw numbers: $out_tsv"
