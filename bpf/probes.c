//go:build ignore

// One object holds the programs of every attach mode; the loader only loads
// the programs of the mode it tries, so a kernel that refuses one kind
// (fentry without BTF trampolines, kprobes compiled out) still loads the rest.
// All modes share the maps and count_event, so they count the same things.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define IPPROTO_TCP 6
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define ENOSPC 28

enum counter {
	COUNTER_ACCEPTS,
	COUNTER_CONNECTS,
	COUNTER_ATTEMPTED,
	COUNTER_FAILED,
	COUNTER_NOSPACE,
	COUNTER_FLUSH_NOSPACE,
	COUNTER_MAX,
};

enum kind {
	KIND_ACCEPT = 1,
	KIND_CONNECT = 2,
	KIND_FLUSH = 3,
};

struct event {
	__u32 tgid;
	__u32 kind;
};

// Set by user space before loading: which counted events also go through
// the perf buffer. 0 sends none, 1 every one, N one in N per CPU. A
// read-only global, so the verifier prunes the branches not taken: with 0
// the programs only count.
const volatile __u32 sample_every = 0;

// Filled by user space: only these processes are counted.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

// Per CPU: events counted since the last one sent, for sample_every > 1.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} since_sample SEC(".maps");

// Non-zero while user space takes a consistent snapshot under heavy load:
// events are still counted but not sent, so attempted stops moving and the
// perf buffer can be drained to the same cut.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} paused SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	// Atomic although per-CPU: on preemptible kernels a program can be
	// preempted by another one on the same CPU.
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int watched_tgid(__u32 *tgid)
{
	*tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&watched, tgid) != NULL;
}

// The ring reports a full-buffer drop only later, in a LOST record written
// with the next output that fits, and only for -ENOSPC; other failures (no
// reader on this CPU) are never reported. Counting -ENOSPC apart tells user
// space how many lost samples it is still owed.
static __always_inline long output(void *ctx, struct event *ev)
{
	long err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ev, sizeof(*ev));

	if (err == -ENOSPC)
		bump(COUNTER_NOSPACE);
	return err;
}

// sampled reports whether this event is the one in sample_every that is
// sent. The count is per CPU and needs no atomics: a sample off by one when
// two programs interleave on a CPU changes no exact count.
static __always_inline int sampled(void)
{
	__u32 zero = 0;
	__u64 *n;

	if (sample_every <= 1)
		return 1;
	n = bpf_map_lookup_elem(&since_sample, &zero);
	if (!n)
		return 0;
	if (++*n < sample_every)
		return 0;
	*n = 0;
	return 1;
}

static __always_inline void count_event(void *ctx, __u32 tgid, __u32 kind)
{
	__u32 zero = 0;
	__u32 *p;
	struct event ev = {.tgid = tgid, .kind = kind};

	// The exact counts, whatever is sent.
	bump(kind == KIND_ACCEPT ? COUNTER_ACCEPTS : COUNTER_CONNECTS);

	if (sample_every == 0)
		return;
	p = bpf_map_lookup_elem(&paused, &zero);
	if (p && *p)
		return;
	if (!sampled())
		return;

	bump(COUNTER_ATTEMPTED);
	if (output(ctx, &ev) < 0)
		bump(COUNTER_FAILED);
}

/* Run by user space on each CPU in turn (BPF_PROG_TEST_RUN with
 * BPF_F_TEST_RUN_ON_CPU), never attached: one output per ring after a drain
 * makes the kernel write the LOST records it still holds back. Not an
 * event, so not counted as attempted. */
SEC("raw_tp")
int flush(void *ctx)
{
	struct event ev = {.kind = KIND_FLUSH};

	if (output(ctx, &ev) == -ENOSPC)
		bump(COUNTER_FLUSH_NOSPACE);
	return 0;
}

/* kprobe mode */

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(kretprobe_accept, void *newsk)
{
	__u32 tgid;

	if (newsk && watched_tgid(&tgid))
		count_event(ctx, tgid, KIND_ACCEPT);
	return 0;
}

// A return probe rather than an entry probe: connects that fail before the
// SYN (no route, no free local port) must not count, matching the tracepoint
// mode which only sees CLOSE -> SYN_SENT.
SEC("kretprobe/tcp_v4_connect")
int BPF_KRETPROBE(kretprobe_connect, int ret)
{
	__u32 tgid;

	if (ret == 0 && watched_tgid(&tgid))
		count_event(ctx, tgid, KIND_CONNECT);
	return 0;
}

/* fentry mode: fexit, for the same reason as above. An fexit program finds
 * the return value in ctx right after the arguments, at the index of the
 * function's parameter count, and the verifier only accepts that constant
 * offset. Reading it there rather than through bpf_get_func_ret keeps fentry
 * mode working before 5.17; the loader picks the variant that matches the
 * running kernel's BTF. */

static __always_inline int on_accept_ret(void *ctx, __u64 newsk)
{
	__u32 tgid;

	if (newsk && watched_tgid(&tgid))
		count_event(ctx, tgid, KIND_ACCEPT);
	return 0;
}

// Since 6.10: inet_csk_accept(sk, arg).
SEC("fexit/inet_csk_accept")
int fexit_accept_2args(__u64 *ctx)
{
	return on_accept_ret(ctx, ctx[2]);
}

// Before 6.10: inet_csk_accept(sk, flags, err, kern).
SEC("fexit/inet_csk_accept")
int fexit_accept_4args(__u64 *ctx)
{
	return on_accept_ret(ctx, ctx[4]);
}

// tcp_v4_connect(sk, uaddr, addr_len).
SEC("fexit/tcp_v4_connect")
int fexit_connect(__u64 *ctx)
{
	__u32 tgid;

	if ((int)ctx[3] == 0 && watched_tgid(&tgid))
		count_event(ctx, tgid, KIND_CONNECT);
	return 0;
}

/* tracepoint mode: record layouts from events/<group>/<name>/format, which
 * are stable ABI, so no BTF is needed for them. */

struct sys_exit_ctx {
	__u64 common;
	__s32 syscall_nr;
	__s64 ret;
};

struct inet_sock_set_state_ctx {
	__u64 common;
	const void *skaddr;
	__s32 oldstate;
	__s32 newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
};

static __always_inline int on_accept_exit(struct sys_exit_ctx *ctx)
{
	__u32 tgid;

	if (ctx->ret >= 0 && watched_tgid(&tgid))
		count_event(ctx, tgid, KIND_ACCEPT);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_accept4(struct sys_exit_ctx *ctx)
{
	return on_accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_accept(struct sys_exit_ctx *ctx)
{
	return on_accept_exit(ctx);
}

// CLOSE -> SYN_SENT is only taken inside connect() (or a TCP Fast Open
// sendmsg), which runs in the caller's context, so current is the process
// that connects. Other transitions may fire from softirq on whatever task
// happens to run (on loopback, often the peer), hence the strict filter.
SEC("tracepoint/sock/inet_sock_set_state")
int tp_set_state(struct inet_sock_set_state_ctx *ctx)
{
	__u32 tgid;

	if (ctx->oldstate != TCP_CLOSE || ctx->newstate != TCP_SYN_SENT)
		return 0;
	if (ctx->family != AF_INET || ctx->protocol != IPPROTO_TCP)
		return 0;
	if (watched_tgid(&tgid))
		count_event(ctx, tgid, KIND_CONNECT);
	return 0;
}
