#!/usr/bin/env bash
# Compares the lab's load generator with wrk at maximum rate against the
# same upstream, same connections and duration, A B A B so that drift of a
# shared machine hits both alike, in two placements:
#   separate: the upstream on one CPU, each load generator in turn on
#     another (both usually reach the upstream's ceiling: parity);
#   shared: the upstream on the load generator's CPU, the lab's own
#     placement on a 2-core host, where every cycle a load generator spends
#     is one the upstream lacks, so the ratio is what a request costs.
# Prints ours/wrk per pair and the median of each placement and, for
# shared, the median quotient of the two tools' CPU per request, each taken
# against the upstream's in its own run (so that the machine's drift from
# run to run divides out).
#
# A third section, paced, measures what a request costs the load generator
# in CPU rather than what rate it reaches: with the upstream on the load
# generator's CPU as in shared, rounds of ours paced at RATE, ours at
# maximum rate and wrk at maximum rate, each one's CPU time (user+system of
# its process) per request, and the medians, in µs per request. A paced
# request pays for a timer and for waking an idle CPU, which an unpaced one
# does not, so at any rate below the maximum it costs more.
#
# A fourth, interleaved, runs both tools at once on the upstream's CPU, as
# in shared, all but one of them stopped (SIGSTOP) at any moment: each
# takes half a second in turn, PAIRS x DURATION of them each, and a
# window's rate is the upstream's write calls (one per answer) in its last
# 0.45 s. The machine's speed moves over seconds, so two tools taking turns
# every half second see the same machine, where runs of DURATION one after
# the other do not. Prints each tool's mean rate, and ours/wrk with a 95%
# interval (a bootstrap over the cycles).
#
# The upstream listens on an ephemeral port, so the bench never collides
# with the lab's fixed ports. Everything it starts is stopped on exit,
# Ctrl-C included.
#
# Environment: PAIRS (5, also the rounds of paced), DURATION (10s),
# CONNECTIONS (64), RATE (5000, requests per second of the paced runs),
# LOADGEN_CPU (0), UPSTREAM_CPU (1, the separate placement's),
# PLACEMENTS ("separate shared paced interleaved"), PROXYLAB (a proxylab binary to use
# instead of building one from this checkout).
set -euo pipefail
# $EPOCHREALTIME and awk's numbers with a decimal point, whatever the locale.
export LC_ALL=C

PAIRS=${PAIRS:-5}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
RATE=${RATE:-5000}
LOADGEN_CPU=${LOADGEN_CPU:-0}
UPSTREAM_CPU=${UPSTREAM_CPU:-1}
PLACEMENTS=${PLACEMENTS:-separate shared paced interleaved}

die() { printf 'bench-loadgen: %s\n' "$*" >&2; exit 1; }

[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || die "DURATION must be whole seconds such as 10s, got $DURATION"
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || die "PAIRS must be a positive number, got $PAIRS"
[[ $RATE =~ ^[1-9][0-9]*$ ]] || die "RATE must be a positive number of requests per second, got $RATE"

for tool in wrk taskset setsid go awk; do
	command -v "$tool" >/dev/null || die "needs $tool (wrk: apt-get install wrk)"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs: one for the upstream, one for the load generators"

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/proxylab-bench-loadgen.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		# A stopped process keeps a signal pending until it goes on.
		kill "$p" 2>/dev/null || true
		kill -CONT "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run CMD...: runs one load generator in the background and waits for it, so
# that a signal reaches the trap at once instead of after the run. Sets cpu
# to the CPU seconds (user+system) it used: the shell's account of its
# reaped children, taken around the wait, holds the same kernel counters as
# utime+stime of /proc/PID/stat, read once the process has exited, so that
# its last moments are not missed (taskset execs the load generator, so the
# child is the load generator itself).
run() {
	times >"$tmp/times0"
	"$@" >"$tmp/out" 2>&1 &
	pids+=($!)
	local rc=0
	wait $! || rc=$?
	times >"$tmp/times1"
	[ "$rc" -eq 0 ] || { cat "$tmp/out" >&2; die "$1 ... failed (exit $rc)"; }
	cpu=$(children_cpu "$tmp/times0" "$tmp/times1")
}

# children_cpu BEFORE AFTER: the CPU seconds of the children reaped between
# two outputs of times, whose second line is "XmY.YYYs XmY.YYYs" (user,
# system).
children_cpu() {
	awk 'FNR == 2 {
		for (i = 1; i <= 2; i++) { split($i, t, "m"); s[FILENAME] += t[1] * 60 + t[2] }
	} END { printf "%.3f", s[ARGV[2]] - s[ARGV[1]] }' "$1" "$2"
}

(cd "$root" && go build -o "$tmp/upstream" ./upstream)
ours=${PROXYLAB:-}
if [ -z "$ours" ]; then
	(cd "$root" && go build -o "$tmp/proxylab" ./cmd/proxylab)
	ours=$tmp/proxylab
fi

: >"$tmp/upstream.log"
# In a session of its own, the upstream is a scheduling group of its own
# (autogroup: where the kernel has it on and the processes are in the root
# cpu cgroup), apart from the load generators, as the lab's upstream is in
# its container's cgroup: where both share a CPU, the two groups share it
# and wake-ups preempt across them, as in a compare run. setsid does not
# fork here (the script's jobs lead no process group), so $! is the
# upstream itself.
LISTEN_ADDR=127.0.0.1:0 setsid taskset -c "$UPSTREAM_CPU" "$tmp/upstream" 2>"$tmp/upstream.log" &
pids+=($!)
addr=
for _ in $(seq 100); do
	addr=$(sed -n 's/.* listen=\([^ ]*\).*/\1/p' "$tmp/upstream.log")
	[ -n "$addr" ] && break
	kill -0 "${pids[0]}" 2>/dev/null || { cat "$tmp/upstream.log" >&2; die "upstream exited"; }
	sleep 0.1
done
[ -n "$addr" ] || die "upstream did not report its address"
url=http://$addr/

# The upstream's CPU use during a run tells which side limited it: near 100%
# the upstream was the bottleneck, and the ratio says that both load
# generators reached its ceiling.
hz=$(getconf CLK_TCK)
upstream_ticks() { awk '{print $14 + $15}' "/proc/${pids[0]}/stat"; }
# Both set rate, requests and cpu; they run in this shell, not in a $(...),
# so that the trap knows every process to stop. ours_run takes the rate to
# send at as a second argument (0, as fast as possible, by default).
ours_run() {
	run taskset -c "$LOADGEN_CPU" "$ours" attack "$url" --rate "${2:-0}" \
		--connections "$CONNECTIONS" --duration "$1"
	rate=$(awk '/^achieved_rate:/ {print $2}' "$tmp/out")
	requests=$(awk '/^requests:/ {print $2}' "$tmp/out")
	if grep -q '^saturated:' "$tmp/out"; then
		printf 'bench-loadgen: warning: ours did not keep up: %s\n' "$(sed -n 's/^saturated: *//p' "$tmp/out")" >&2
	fi
}
# wrk -t1: one event-loop thread, as ours runs on one CPU.
wrk_run() {
	run taskset -c "$LOADGEN_CPU" wrk -t1 -c"$CONNECTIONS" -d"$1" "$url"
	rate=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/out")
	requests=$(awk '/ requests in / {print $1}' "$tmp/out")
}
seconds=${DURATION%s}

# pairs LABEL: PAIRS measured pairs in the current placement, then their
# medians. Besides the rate ratio, each run's CPU per request is set against
# the upstream's in the same run (cost/up): on a shared CPU the machine's
# speed moves both alike from one run to the next, so the quotient of the
# two tools' cost/up says what a request costs each, with that drift
# divided out (where the upstream has a CPU of its own, it is only shown).
pairs() {
	printf '%-9s %-5s %12s %8s %8s %12s %8s %8s %8s\n' placement pair ours_req/s up_cpu cost/up wrk_req/s up_cpu cost/up ratio
	local ratios=() costs=() i t0 t1 t2 a b r ca cb
	for i in $(seq "$PAIRS"); do
		t0=$(upstream_ticks)
		ours_run "$DURATION"
		a=$rate
		t1=$(upstream_ticks)
		ca=$(cost_per_up $((t1 - t0)))
		wrk_run "$DURATION"
		b=$rate
		t2=$(upstream_ticks)
		cb=$(cost_per_up $((t2 - t1)))
		[ -n "$a" ] && [ -n "$b" ] || die "could not read the request rates of pair $i"
		r=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a / b}')
		ratios+=("$r")
		costs+=("$(awk -v a="$ca" -v b="$cb" 'BEGIN {printf "%.3f", a / b}')")
		printf '%-9s %-5s %12.0f %7.0f%% %8s %12.0f %7.0f%% %8s %8s\n' "$1" "$i" "$a" \
			"$(awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$seconds" 'BEGIN {print 100 * t / hz / s}')" "$ca" "$b" \
			"$(awk -v t=$((t2 - t1)) -v hz="$hz" -v s="$seconds" 'BEGIN {print 100 * t / hz / s}')" "$cb" "$r"
	done
	printf '%s\n' "${ratios[@]}" | sort -g | awk -v p="$1" '{v[NR] = $1} END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "median ours/wrk, %s: %.3f (range %.3f-%.3f)\n", p, m, v[1], v[NR] }'
	if [ "$1" = shared ]; then
		printf '%s\n' "${costs[@]}" | sort -g | awk '{v[NR] = $1} END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "median cost per request, ours/wrk, each against the upstream'"'"'s in its run: %.3f (range %.3f-%.3f)\n", m, v[1], v[NR] }'
	fi
}

# cost_per_up TICKS: the last run's CPU per request over the upstream's
# (TICKS of it in the run).
cost_per_up() {
	awk -v c="$cpu" -v t="$1" -v hz="$hz" 'BEGIN {printf "%.3f", (t > 0) ? c / (t / hz) : 0}'
}

# us_per_request: the last run's CPU time per request, in µs.
us_per_request() {
	[ -n "$requests" ] && [ "$requests" -gt 0 ] || die "could not read the request count of a run"
	awk -v c="$cpu" -v n="$requests" 'BEGIN {printf "%.2f", 1e6 * c / n}'
}

# median: the median of the numbers on stdin, one a line.
median() {
	sort -g | awk '{v[NR] = $1} END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.2f (range %.2f-%.2f)", m, v[1], v[NR] }'
}

# paced: PAIRS rounds of ours paced, ours at maximum rate and wrk at maximum
# rate, in that order, each one's CPU per request, then their medians.
paced() {
	printf '%-5s %14s %12s %14s %12s %14s %12s\n' round paced_req/s us/req ours_req/s us/req wrk_req/s us/req
	local p=() o=() w=() i pr pc orr oc
	for i in $(seq "$PAIRS"); do
		ours_run "$DURATION" "$RATE"
		pr=$rate pc=$(us_per_request)
		ours_run "$DURATION"
		orr=$rate oc=$(us_per_request)
		wrk_run "$DURATION"
		p+=("$pc") o+=("$oc") w+=("$(us_per_request)")
		printf '%-5s %14.0f %12s %14.0f %12s %14.0f %12s\n' "$i" "$pr" "$pc" "$orr" "$oc" "$rate" "${w[-1]}"
	done
	echo "median CPU per request, µs: ours paced at $RATE/s $(printf '%s\n' "${p[@]}" | median)," \
		"ours at maximum rate $(printf '%s\n' "${o[@]}" | median)," \
		"wrk at maximum rate $(printf '%s\n' "${w[@]}" | median)"
}

# interleaved: see the top of this file.
interleaved() {
	local cycles=$((PAIRS * seconds)) long=$((PAIRS * seconds * 2 + 30)) a b i
	taskset -c "$LOADGEN_CPU" "$ours" attack "$url" --rate 0 --connections "$CONNECTIONS" \
		--duration "${long}s" >/dev/null 2>&1 &
	pids+=($!)
	a=$!
	taskset -c "$LOADGEN_CPU" wrk -t1 -c"$CONNECTIONS" -d"${long}s" "$url" >/dev/null 2>&1 &
	pids+=($!)
	b=$!
	sleep 1
	kill -STOP "$a" "$b"
	exec {idle}<> <(:)
	local rates=
	for i in $(seq "$cycles"); do
		window "$a"
		window "$b"
		rates+=$'\n'
	done
	exec {idle}<&-
	# Each line: ours' and wrk's windows, writes and start and end in µs.
	printf '%s' "$rates" | awk 'NF == 6 {printf "%.1f %.1f\n", $1 / ($3 - $2) * 1e6, $4 / ($6 - $5) * 1e6}' >"$tmp/windows"
	kill -CONT "$a" "$b"
	kill "$a" "$b"
	wait "$a" "$b" 2>/dev/null || true
	# 2000 resamples of the cycles, for the interval of the ratio.
	awk 'BEGIN { srand(1) } { a[NR] = $1; b[NR] = $2 } END {
		for (k = 1; k <= 2000; k++) {
			x = 0; y = 0
			for (j = 1; j <= NR; j++) { i = int(rand() * NR) + 1; x += a[i]; y += b[i] }
			print x / y
		}
	}' "$tmp/windows" | sort -g >"$tmp/resamples"
	awk -v lo="$(sed -n 50p "$tmp/resamples")" -v hi="$(sed -n 1951p "$tmp/resamples")" '
		{ sa += $1; sb += $2 } END {
		printf "interleaved: %d windows of 0.5 s each, ours %.0f/s, wrk %.0f/s\n", NR, sa / NR, sb / NR
		printf "ours/wrk, ratio of mean rates: %.3f (95%% interval %.3f-%.3f)\n", sa / sb, lo, hi }' "$tmp/windows"
}

# window PID: lets PID run for half a second and appends its rate, the
# upstream's writes per second over the last 0.45 s of it, to rates. It
# starts no process, so that the measuring does not take CPU time from the
# measured: the waits are timed reads of a pipe nothing writes to.
window() {
	local w0 w1 t0 t1
	kill -CONT "$1" 2>/dev/null || die "a load generator exited during interleaved (pid $1)"
	read -r -t 0.05 -u "$idle" || true
	syscw w0
	t0=$EPOCHREALTIME
	read -r -t 0.45 -u "$idle" || true
	syscw w1
	t1=$EPOCHREALTIME
	kill -STOP "$1"
	rates+="$((w1 - w0)) ${t0/./} ${t1/./} "
}
# syscw VAR: sets VAR to the upstream's count of write calls.
syscw() {
	local k v
	while read -r k v; do
		if [ "$k" = syscw: ]; then
			printf -v "$1" %s "$v"
			return
		fi
	done <"/proc/${pids[0]}/io"
}

echo "upstream $url; load generators on CPU $LOADGEN_CPU; $CONNECTIONS connections, $DURATION per run, $PAIRS pairs"
# Whether the upstream is a scheduling group apart from the load generators.
echo "scheduling groups: upstream $(cat "/proc/${pids[0]}/autogroup" 2>/dev/null || echo -),"\
	"load generators $(cat /proc/$$/autogroup 2>/dev/null || echo -)"
for placement in $PLACEMENTS; do
	case $placement in
	separate) where=$UPSTREAM_CPU ;;
	shared | paced | interleaved) where=$LOADGEN_CPU ;;
	*) die "unknown placement $placement (separate, shared, paced or interleaved)" ;;
	esac
	# Every thread of the upstream moves, not only its main one.
	taskset -a -pc "$where" "${pids[0]}" >/dev/null
	echo "$placement: upstream on CPU $where"
	# A first, unmeasured round grows the upstream's pools and heap, so
	# that the first measured run does not pay for them.
	ours_run 2s
	wrk_run 2s
	case $placement in
	paced) paced ;;
	interleaved) interleaved ;;
	*) pairs "$placement" ;;
	esac
done
