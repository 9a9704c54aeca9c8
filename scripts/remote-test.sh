#!/usr/bin/env bash
# A second machine for the system under test, on this one: a network
# namespace joined to the host by a veth pair, and a second Docker engine
# whose containers run inside it. The lab then drives the upstream and the
# proxies through that engine and sends its load from the host to the
# namespace's address, as it would to a separate SUT host.
#
#   scripts/remote-test.sh up             create what is missing (idempotent)
#   scripts/remote-test.sh down [--purge] remove it all (idempotent); --purge
#                                         also deletes the engine's images
#   scripts/remote-test.sh status         say what exists; exit 0 only when
#                                         all of it is up
#
# `up` writes /run/proxylab-sut/sut.env, which the lab's tests read:
#   PROXYLAB_SUT_ENGINE=unix:///run/proxylab-sut/docker.sock
#   PROXYLAB_SUT_ADDRESS=10.254.254.2
#
# The namespace has no default route: it reaches the host's end of the veth
# and nothing else. The second engine gets its own containerd, started by
# this script inside the namespace: a dockerd left to find one would take the
# system's containerd when its socket exists, and containers started through
# that one would run in the host's network namespace.
set -euo pipefail

NS=proxylab-sut
HOST_IF=plab-host
SUT_IF=plab-sut
SUBNET=10.254.254.0/30
HOST_CIDR=10.254.254.1/30
SUT_ADDR=10.254.254.2
SUT_CIDR=$SUT_ADDR/30

RUN_DIR=/run/proxylab-sut
DATA_DIR=/var/lib/proxylab-sut
DATA_ROOT=$DATA_DIR/docker
EXEC_ROOT=$RUN_DIR/exec
PIDFILE=$RUN_DIR/dockerd.pid
SOCK=$RUN_DIR/docker.sock
ENGINE=unix://$SOCK
LOG=/var/log/proxylab-sut-dockerd.log
CTRD_DIR=$RUN_DIR/containerd
CTRD_SOCK=$CTRD_DIR/containerd.sock
CTRD_PIDFILE=$CTRD_DIR/containerd.pid
CTRD_CONFIG=$CTRD_DIR/config.toml
CTRD_LOG=/var/log/proxylab-sut-containerd.log
ENV_FILE=$RUN_DIR/sut.env
DAEMON_JSON=$RUN_DIR/daemon.json
CGROUP_PARENT=proxylab-sut
START_WAIT=30 # seconds a daemon may take to answer
STOP_WAIT=20  # seconds a daemon may take to exit on SIGTERM

say() { printf 'remote-test: %s\n' "$*"; }
die() {
	printf 'remote-test: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	printf 'usage: %s up | down [--purge] | status\n' "$0" >&2
	exit 2
}

# needs_tools checks for root and the commands every action uses, so that a
# missing one is named before anything changes.
needs_tools() {
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, a second dockerd): run sudo $0 $*"
	local cmd
	for cmd in ip nsenter setsid docker dockerd containerd ctr; do
		command -v "$cmd" >/dev/null 2>&1 ||
			die "$cmd not found: install iproute2, util-linux and docker.io (scripts/setup.sh installs docker.io)"
	done
}

# --- addresses ------------------------------------------------------------------

# ip2int A.B.C.D prints the address as a 32-bit integer.
ip2int() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# overlaps PREFIX PREFIX: whether two IPv4 prefixes (A.B.C.D[/LEN]) share an
# address; they do when they agree on the shorter one's network bits.
overlaps() {
	local a=${1%/*} alen=32 b=${2%/*} blen=32 len mask
	[[ $1 == */* ]] && alen=${1#*/}
	[[ $2 == */* ]] && blen=${2#*/}
	len=$((alen < blen ? alen : blen))
	mask=$(((0xffffffff << (32 - len)) & 0xffffffff))
	[ $(($(ip2int "$a") & mask)) -eq $(($(ip2int "$b") & mask)) ]
}

# subnet_free dies when a route or an address of the host, other than this
# script's own veth, already uses the private /30: the namespace's traffic
# would then mix with a network that is not the lab's.
subnet_free() {
	local line dst dev
	while read -r line; do
		dst=$(awk '{ if ($1 ~ /^(unicast|local|broadcast|multicast|anycast|unreachable|blackhole|prohibit|throw|nat)$/) print $2; else print $1 }' <<<"$line")
		dev=$(sed -n 's/.* dev \([^ ]*\).*/\1/p' <<<"$line")
		[ "$dst" = default ] || [ "$dev" = "$HOST_IF" ] && continue
		[[ $dst =~ ^[0-9.]+(/[0-9]+)?$ ]] || continue
		if overlaps "$dst" "$SUBNET"; then
			die "the host already routes $dst ($line), which overlaps $SUBNET: free it, or change SUBNET and the addresses in $0"
		fi
	done < <(ip -4 route show table all)
	while read -r line; do
		dev=$(awk '{print $2}' <<<"$line")
		dst=$(awk '{print $4}' <<<"$line")
		[ "$dev" = "$HOST_IF" ] && continue
		if overlaps "$dst" "$SUBNET"; then
			die "interface $dev already has $dst, which overlaps $SUBNET: free it, or change SUBNET and the addresses in $0"
		fi
	done < <(ip -4 -o addr show)
}

# --- namespace and veth ---------------------------------------------------------

netns_exists() { ip netns list | awk '{print $1}' | grep -qx "$NS"; }
host_if_exists() { ip link show "$HOST_IF" >/dev/null 2>&1; }
sut_if_exists() { netns_exists && ip -n "$NS" link show "$SUT_IF" >/dev/null 2>&1; }

# is_up IP-ARGS...: whether `ip IP-ARGS link show DEV` says the link is up.
is_up() { "$@" 2>/dev/null | head -n1 | grep -q '[<,]UP[,>]'; }

# has_addr CIDR IP-ARGS...: whether `ip IP-ARGS -4 -o addr show dev DEV` lists CIDR.
has_addr() {
	local cidr=$1
	shift
	"$@" | awk '{print $4}' | grep -qx "$cidr"
}

ensure_netns() {
	if netns_exists; then
		say "network namespace $NS exists"
	else
		ip netns add "$NS"
		say "created network namespace $NS"
	fi
	if is_up ip -n "$NS" link show lo; then
		say "lo is up in $NS"
	else
		ip -n "$NS" link set lo up
		say "set lo up in $NS"
	fi
}

ensure_veth() {
	if host_if_exists && sut_if_exists; then
		say "veth $HOST_IF <-> $NS/$SUT_IF exists"
	elif host_if_exists || sut_if_exists; then
		die "only one end of the veth pair exists: run $0 down, then $0 up"
	else
		ip link add "$HOST_IF" type veth peer name "$SUT_IF" netns "$NS"
		say "created veth $HOST_IF <-> $NS/$SUT_IF"
	fi
	if has_addr "$HOST_CIDR" ip -4 -o addr show dev "$HOST_IF"; then
		say "$HOST_IF has $HOST_CIDR"
	else
		ip addr add "$HOST_CIDR" dev "$HOST_IF"
		say "added $HOST_CIDR to $HOST_IF"
	fi
	if has_addr "$SUT_CIDR" ip -n "$NS" -4 -o addr show dev "$SUT_IF"; then
		say "$NS/$SUT_IF has $SUT_CIDR"
	else
		ip -n "$NS" addr add "$SUT_CIDR" dev "$SUT_IF"
		say "added $SUT_CIDR to $NS/$SUT_IF"
	fi
	if is_up ip link show "$HOST_IF"; then
		say "$HOST_IF is up"
	else
		ip link set "$HOST_IF" up
		say "set $HOST_IF up"
	fi
	if is_up ip -n "$NS" link show "$SUT_IF"; then
		say "$NS/$SUT_IF is up"
	else
		ip -n "$NS" link set "$SUT_IF" up
		say "set $NS/$SUT_IF up"
	fi
	# Nothing here adds one; a default route someone added would let the
	# namespace reach past the host.
	[ -z "$(ip -n "$NS" -4 route show default)" ] ||
		die "$NS has a default route, so it could reach past the host: ip -n $NS route del default"
}

# --- daemons --------------------------------------------------------------------

# live_pid PIDFILE COMM: prints the pid PIDFILE names when that process runs,
# is COMM and is no zombie (a killed daemon can linger as one until init
# reaps it); fails otherwise.
live_pid() {
	local pid comm state
	pid=$(cat "$1" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
	[ "$comm" = "$2" ] && [ "$state" != Z ] || return 1
	echo "$pid"
}

# in_netns PID: whether the process runs in the namespace.
in_netns() {
	[ "$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/run/netns/$NS")" ]
}

engine_answers() { timeout 10 docker -H "$ENGINE" info >/dev/null 2>&1; }
containerd_answers() { timeout 10 ctr --address "$CTRD_SOCK" version >/dev/null 2>&1; }

# start_in_netns LOG PIDFILE COMMAND...: COMMAND in the namespace, in the
# background, detached from this terminal as setup.sh starts the main engine.
# nsenter and setsid exec rather than fork here, so $! is COMMAND's pid.
start_in_netns() {
	local log=$1 pidfile=$2
	shift 2
	nohup setsid nsenter --net="/run/netns/$NS" "$@" >>"$log" 2>&1 </dev/null &
	echo $! >"$pidfile"
}

# wait_answers WHAT PIDFILE COMM CHECK LOG: waits until CHECK succeeds, giving
# up early once the daemon has exited; on failure, the log's tail.
wait_answers() {
	local what=$1 pidfile=$2 comm=$3 check=$4 log=$5 i
	for i in $(seq 1 $((START_WAIT * 2))); do
		"$check" && return 0
		[ "$i" -gt 4 ] && ! live_pid "$pidfile" "$comm" >/dev/null && break
		sleep 0.5
	done
	"$check" && return 0
	printf 'remote-test: error: %s did not answer within %s s; %s ends with:\n' "$what" "$START_WAIT" "$log" >&2
	tail -n 15 "$log" 2>/dev/null | sed 's/^/    /' >&2
	die "fix what the log says, then run $0 down and $0 up"
}

write_containerd_config() {
	mkdir -p "$CTRD_DIR" "$DATA_DIR/containerd"
	cat >"$CTRD_CONFIG" <<EOF
# Written by scripts/remote-test.sh: a containerd for the SUT engine only.
version = 2
root = "$DATA_DIR/containerd"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = ""

[debug]
  address = ""

[metrics]
  address = ""
EOF
}

ensure_containerd() {
	local pid
	if pid=$(live_pid "$CTRD_PIDFILE" containerd) && containerd_answers; then
		say "containerd runs (pid $pid)"
		return
	fi
	if pid=$(live_pid "$CTRD_PIDFILE" containerd); then
		die "containerd (pid $pid) runs but does not answer on $CTRD_SOCK: run $0 down, then $0 up"
	fi
	rm -f "$CTRD_PIDFILE" "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
	write_containerd_config
	say "starting containerd in $NS (log: $CTRD_LOG)"
	start_in_netns "$CTRD_LOG" "$CTRD_PIDFILE" containerd --config "$CTRD_CONFIG"
	wait_answers containerd "$CTRD_PIDFILE" containerd containerd_answers "$CTRD_LOG"
	say "containerd answers (pid $(cat "$CTRD_PIDFILE"))"
}

ensure_dockerd() {
	local pid
	if pid=$(live_pid "$PIDFILE" dockerd); then
		in_netns "$pid" || die "dockerd (pid $pid) from $PIDFILE is not in $NS: run $0 down, then $0 up"
		if ! engine_answers; then
			# It may still be starting: give it the usual time.
			say "dockerd (pid $pid) runs; waiting for it to answer"
			wait_answers "the SUT engine" "$PIDFILE" dockerd engine_answers "$LOG"
		fi
		say "SUT engine answers on $ENGINE (pid $pid)"
		return
	fi
	# A dockerd killed without its own shutdown leaves its pid file and
	# socket behind; a new one refuses to start while the pid file names a
	# running process, whatever that process is.
	rm -f "$PIDFILE" "$SOCK"
	mkdir -p "$RUN_DIR" "$DATA_ROOT"
	# An empty configuration file of its own: the host's
	# /etc/docker/daemon.json is the main engine's, and a directive there
	# that is also a flag here would stop this dockerd from starting.
	echo '{}' >"$DAEMON_JSON"
	say "starting dockerd in $NS on $ENGINE (log: $LOG)"
	# No bridge and no iptables rules, as for the main engine: the lab uses
	# host networking only. Distinct containerd namespaces keep its objects
	# apart even if it were pointed at a containerd another engine uses, and
	# a cgroup parent of its own keeps its containers' cgroups apart from
	# the main engine's, so that down can remove what a killed engine left.
	start_in_netns "$LOG" "$PIDFILE.start" dockerd --config-file "$DAEMON_JSON" \
		--data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" \
		-H "$ENGINE" --containerd "$CTRD_SOCK" \
		--containerd-namespace proxylab-sut --containerd-plugins-namespace proxylab-sut-plugins \
		--cgroup-parent "/$CGROUP_PARENT" \
		--bridge=none --iptables=false --ip6tables=false
	# dockerd writes its own pid file once it runs; until then the one
	# recorded at start tells whether it is still alive.
	wait_answers "the SUT engine" "$PIDFILE.start" dockerd engine_answers "$LOG"
	rm -f "$PIDFILE.start"
	pid=$(live_pid "$PIDFILE" dockerd) || die "the SUT engine answers but $PIDFILE names no dockerd: run $0 down, then $0 up"
	in_netns "$pid" || die "dockerd (pid $pid) is not in $NS: run $0 down, then $0 up"
	say "SUT engine answers on $ENGINE (pid $pid)"
}

write_env() {
	local want
	want=$(printf 'PROXYLAB_SUT_ENGINE=%s\nPROXYLAB_SUT_ADDRESS=%s\n' "$ENGINE" "$SUT_ADDR")
	if [ "$(cat "$ENV_FILE" 2>/dev/null)" = "$want" ]; then
		say "$ENV_FILE is current"
	else
		printf '%s\n' "$want" >"$ENV_FILE"
		say "wrote $ENV_FILE"
	fi
}

up() {
	subnet_free
	ensure_netns
	ensure_veth
	ensure_containerd
	ensure_dockerd
	write_env
	say "ready; to use the SUT host from a shell:"
	printf '    export PROXYLAB_SUT_ENGINE=%s PROXYLAB_SUT_ADDRESS=%s\n' "$ENGINE" "$SUT_ADDR"
}

# --- down -----------------------------------------------------------------------

# stop_pid PID NAME: SIGTERM, a bounded wait, then SIGKILL.
stop_pid() {
	local pid=$1 name=$2 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 $((STOP_WAIT * 2))); do
		gone "$pid" && {
			say "stopped $name (pid $pid)"
			return 0
		}
		sleep 0.5
	done
	kill -KILL "$pid" 2>/dev/null || true
	sleep 0.5
	say "killed $name (pid $pid), which ignored SIGTERM for $STOP_WAIT s"
}

# gone PID: the process has exited (a zombie counts: it runs nothing).
gone() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
	[ "$state" = Z ]
}

remove_containers() {
	local ids
	if ! engine_answers; then
		say "SUT engine does not answer: no containers to remove through it"
		return
	fi
	ids=$(docker -H "$ENGINE" ps -aq)
	if [ -z "$ids" ]; then
		say "no containers on the SUT engine"
		return
	fi
	# shellcheck disable=SC2086 # one id per word
	docker -H "$ENGINE" rm -f $ids >/dev/null
	say "removed $(wc -w <<<"$ids") container(s) from the SUT engine"
}

stop_daemon() {
	local pidfile=$1 comm=$2 pid
	if pid=$(live_pid "$pidfile" "$comm"); then
		stop_pid "$pid" "$comm"
	else
		say "no $comm of the SUT engine runs"
	fi
}

# stop_leftovers ends whatever else still runs in the namespace: container
# processes and shims a killed engine left behind. All at once, since a
# container's init ignores SIGTERM unless it handles it.
stop_leftovers() {
	local pids pid i alive
	netns_exists || return 0
	pids=$(ip netns pids "$NS" 2>/dev/null || true)
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086 # one pid per word
	kill -TERM $pids 2>/dev/null || true
	for i in $(seq 1 10); do
		alive=0
		for pid in $pids; do gone "$pid" || alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.5
	done
	for pid in $pids; do
		gone "$pid" && continue
		kill -KILL "$pid" 2>/dev/null || true
	done
	say "ended $(wc -w <<<"$pids") process(es) left in $NS"
}

# remove_cgroups removes the cgroups the engine's containers had, which a
# killed engine leaves behind (empty ones only: rmdir refuses the others).
remove_cgroups() {
	local top n=0 d
	for top in /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT"; do
		[ -d "$top" ] || continue
		while read -r d; do
			rmdir "$d" 2>/dev/null && n=$((n + 1))
		done < <(find "$top" -depth -type d)
	done
	[ "$n" = 0 ] || say "removed $n cgroup(s) under $CGROUP_PARENT"
}

# remove_netns_dir undoes what `ip netns add` did to a host that had no
# named namespace: /run/netns, mounted on itself, once no namespace is left.
remove_netns_dir() {
	[ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ] || return 0
	while awk '$2 == "/run/netns" {f = 1} END {exit !f}' /proc/mounts; do
		umount /run/netns || return 0
	done
	if rmdir /run/netns; then say "removed the empty /run/netns"; fi
}

# unmount_under DIR: lazily unmounts what a killed dockerd left mounted there
# (container root filesystems, its exec root), deepest first.
unmount_under() {
	local m
	awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m" || true; done
}

down() {
	local purge=$1
	remove_containers
	stop_daemon "$PIDFILE" dockerd
	stop_daemon "$CTRD_PIDFILE" containerd
	stop_leftovers
	remove_cgroups
	# Deleting the namespace deletes the veth end in it, and with it the
	# host's end; the explicit delete covers a host end left alone.
	if netns_exists; then
		ip netns delete "$NS"
		say "deleted network namespace $NS"
	else
		say "no network namespace $NS"
	fi
	if host_if_exists; then
		ip link delete "$HOST_IF"
		say "deleted $HOST_IF"
	fi
	remove_netns_dir
	if [ -e "$RUN_DIR" ]; then
		unmount_under "$RUN_DIR"
		rm -rf "$RUN_DIR"
		say "removed $RUN_DIR"
	fi
	unmount_under "$DATA_DIR"
	if [ "$purge" = 1 ] && [ -e "$DATA_DIR" ]; then
		rm -rf "$DATA_DIR"
		say "removed $DATA_DIR (--purge)"
	elif [ -e "$DATA_DIR" ]; then
		say "kept $DATA_DIR (images, build cache); down --purge removes it"
	fi
}

# --- status ---------------------------------------------------------------------

status() {
	local ok=0 pid
	if netns_exists; then say "network namespace $NS exists"; else say "no network namespace $NS" && ok=1; fi
	if host_if_exists && sut_if_exists; then
		say "veth $HOST_IF ($(ip -4 -o addr show dev "$HOST_IF" | awk '{print $4}')) <-> $NS/$SUT_IF ($(ip -n "$NS" -4 -o addr show dev "$SUT_IF" | awk '{print $4}'))"
	else
		say "no veth pair $HOST_IF <-> $SUT_IF" && ok=1
	fi
	if pid=$(live_pid "$CTRD_PIDFILE" containerd); then say "containerd runs (pid $pid)"; else say "no containerd of the SUT engine runs" && ok=1; fi
	if pid=$(live_pid "$PIDFILE" dockerd); then say "dockerd runs (pid $pid)"; else say "no dockerd of the SUT engine runs" && ok=1; fi
	if engine_answers; then
		say "SUT engine answers on $ENGINE: $(docker -H "$ENGINE" version --format '{{.Server.Version}}'), $(docker -H "$ENGINE" ps -q | wc -l) container(s) running"
	else
		say "SUT engine does not answer on $ENGINE" && ok=1
	fi
	if [ -f "$ENV_FILE" ]; then say "$ENV_FILE: $(tr '\n' ' ' <"$ENV_FILE")"; else say "no $ENV_FILE" && ok=1; fi
	[ -e "$DATA_DIR" ] && say "$DATA_DIR holds $(du -sh "$DATA_DIR" 2>/dev/null | cut -f1)"
	if [ "$ok" = 0 ]; then
		say "all up"
	else
		say "not (fully) up: $0 up creates what is missing"
	fi
	return "$ok"
}

main() {
	[ $# -ge 1 ] || usage
	case $1 in
	up)
		[ $# -eq 1 ] || usage
		needs_tools "$@"
		up
		;;
	down)
		local purge=0
		[ $# -le 2 ] || usage
		if [ $# -eq 2 ]; then
			[ "$2" = --purge ] || usage
			purge=1
		fi
		needs_tools "$@"
		down "$purge"
		;;
	status)
		[ $# -eq 1 ] || usage
		needs_tools "$@"
		status
		;;
	*) usage ;;
	esac
}

main "$@"
