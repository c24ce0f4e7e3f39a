// SPDX-License-Identifier: GPL-2.0
/*
 * Garrison's in-kernel process event source (garrison/sensors/bpf_proc.py loads it).
 *
 * Tracepoints on sched_process_exec and sched_process_exit, filtered in the kernel:
 * - only tasks whose cgroup (v2) is in `watched` (a container the defender follows);
 * - an exec of a file on the container's root file system (its overlay super block, whose
 *   device `watched` holds) is dropped unless the container's model learns (RECORD_ROOTFS):
 *   the fanotify exec sensor judges those, or the kernel skips them because they were judged
 *   already. While a model learns, the files judged once are skipped by fanotify and recorded
 *   here instead: each such exec is sent with what the exec itself holds (the name asked
 *   for, argv, uid, parent), read in the kernel at the exec, so that no short-lived process
 *   is missed and no exec waits on the defender;
 * - an exec of a setuid or setgid file of the root file system is sent even then: the kernel
 *   may skip a file judged before, and a chmod does not make fanotify judge it again;
 * - execs of files elsewhere (volumes, bind mounts: only this source sees them) are sent;
 * - an exit is sent only for a process whose exec off the root file system was sent;
 * - a TCP socket of a watched container that starts listening or connecting (the socket
 *   state tracepoint, in the context of the listen() or connect() that does it) is sent with
 *   its addresses: the network sensor then needs no TCP table walk (see network.py).
 * Events go to user space through the `events` ring buffer; `counters` counts per CPU.
 * A record is built in a per-CPU scratch buffer and copied into the ring without the unused
 * end of its argv buffer. Records of the root file system wake the reader only once
 * WAKE_BYTES are queued (it also reads every 100 ms): an exec storm costs a wake per batch,
 * not one per exec.
 *
 * No vmlinux.h: the few kernel structures read are declared here with only the fields used,
 * and libbpf relocates them against the running kernel's BTF (CO-RE).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define PRESERVE __attribute__((preserve_access_index))

struct super_block { __u32 s_dev; } PRESERVE;
struct inode {
	unsigned short i_mode;
	struct super_block *i_sb;
	unsigned long i_ino;
} PRESERVE;
struct file { struct inode *f_inode; } PRESERVE;
struct mm_struct {
	struct file *exe_file;
	unsigned long arg_start;
	unsigned long arg_end;
} PRESERVE;
struct task_struct {
	struct mm_struct *mm;
	struct task_struct *real_parent;
	int exit_code;
	int exit_signal;
	int tgid;
} PRESERVE;

enum { EVENT_EXEC = 1, EVENT_EXIT = 2, EVENT_TCP = 3 };
enum { GARRISON_TCP_SYN_SENT = 2, GARRISON_TCP_LISTEN = 10, GARRISON_IPPROTO_TCP = 6 };
enum { RECORD_ROOTFS = 1 };
#define FILENAME_SIZE 256
#define ARGS_SIZE 1024
#define WAKE_BYTES (32 * 1024)

/* The tracepoint's own record: tracefs events/sched/sched_process_exec/format. */
struct exec_ctx {
	__u64 common;
	__u32 filename_loc; /* __data_loc: offset in the low 16 bits, length in the high */
	__s32 pid;
	__s32 old_pid;
};

/* tracefs events/sock/inet_sock_set_state/format */
struct sock_ctx {
	__u64 common;
	const void *skaddr;
	__s32 oldstate;
	__s32 newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
};

/* What an EVENT_TCP record carries in its filename buffer. */
struct tcp_record {
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 state;
	__u8 saddr[16]; /* the first 4 bytes for AF_INET */
	__u8 daddr[16];
};

struct container {
	__u32 rootfs_dev; /* the root file system's device (kernel encoding); 0: none */
	__u32 flags;      /* RECORD_ROOTFS */
};
enum { COUNT_SENT, COUNT_LOST, COUNT_ON_ROOTFS, COUNT_SLOTS };

struct event {
	__u32 kind;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u64 cgroup;
	__u64 time_ns;
	__u64 ino;
	__u32 dev;
	__s32 exit_code;
	__s32 exit_signal;
	__u32 cpu;
	__u32 uid;
	__u32 args_size;
	__u32 on_rootfs;
	__u32 mode; /* of the file executed */
	char filename[FILENAME_SIZE];
	char args[ARGS_SIZE]; /* argv, NUL-separated, cut at ARGS_SIZE */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* cgroup v2 id of a watched container */
	__type(value, struct container);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* tgid whose exec was sent */
	__type(value, __u8);
} sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 21);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &slot);

	if (value)
		*value += 1;
}

static struct event *start(__u32 kind, __u64 cgroup)
{
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!e)
		return 0;
	__builtin_memset(e, 0, __builtin_offsetof(struct event, filename));
	e->filename[0] = 0;
	e->kind = kind;
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->cgroup = cgroup;
	e->time_ns = bpf_ktime_get_ns();
	e->cpu = bpf_get_smp_processor_id();
	return e;
}

/* Into the ring, without the unused end of the argv buffer. */
static void send(struct event *e, __u64 flags)
{
	__u64 size = __builtin_offsetof(struct event, args) + e->args_size;

	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, flags))
		count(COUNT_LOST);
	else
		count(COUNT_SENT);
}

static void read_exec(struct event *e, struct exec_ctx *ctx, struct task_struct *task,
		      struct inode *exe)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	__u64 size = end > start ? end - start : 0;

	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
				  (void *)ctx + (ctx->filename_loc & 0xFFFF));
	if (size > ARGS_SIZE)
		size = ARGS_SIZE;
	if (size && bpf_probe_read_user(e->args, size, (void *)start) == 0)
		e->args_size = size;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->ino = BPF_CORE_READ(exe, i_ino);
}

/* A record of the root file system wakes the reader only when a batch is queued. */
static __u64 wake_flags(int on_rootfs)
{
	if (!on_rootfs)
		return 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKE_BYTES)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

SEC("tracepoint/sched/sched_process_exec")
int garrison_exec(struct exec_ctx *ctx)
{
	__u64 cgroup = bpf_get_current_cgroup_id();
	struct container *c = bpf_map_lookup_elem(&watched, &cgroup);
	struct task_struct *task;
	struct inode *exe;
	struct event *e;
	int on_rootfs;
	__u32 dev, mode;

	if (!c)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	exe = BPF_CORE_READ(task, mm, exe_file, f_inode);
	dev = BPF_CORE_READ(exe, i_sb, s_dev);
	mode = BPF_CORE_READ(exe, i_mode);
	on_rootfs = c->rootfs_dev && dev == c->rootfs_dev;
	if (on_rootfs && !(c->flags & RECORD_ROOTFS) && !(mode & (04000 | 02000))) {
		count(COUNT_ON_ROOTFS);
		return 0;
	}
	e = start(EVENT_EXEC, cgroup);
	if (!e)
		return 0;
	read_exec(e, ctx, task, exe);
	e->dev = dev;
	e->mode = mode;
	e->on_rootfs = on_rootfs;
	if (!on_rootfs)
		bpf_map_update_elem(&sent, &e->tgid, &(__u8){1}, BPF_ANY);
	send(e, wake_flags(on_rootfs));
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int garrison_exit(void *ctx)
{
	__u64 cgroup = bpf_get_current_cgroup_id();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct task_struct *task;
	struct event *e;

	if ((__u32)pid_tgid != tgid || !bpf_map_lookup_elem(&watched, &cgroup))
		return 0;
	if (!bpf_map_lookup_elem(&sent, &tgid))
		return 0;
	bpf_map_delete_elem(&sent, &tgid);
	e = start(EVENT_EXIT, cgroup);
	if (!e)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->exit_signal = BPF_CORE_READ(task, exit_signal);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	send(e, 0);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int garrison_tcp(struct sock_ctx *ctx)
{
	__u64 cgroup;
	struct tcp_record *t;
	struct event *e;

	if (ctx->protocol != GARRISON_IPPROTO_TCP)
		return 0;
	if (ctx->newstate != GARRISON_TCP_LISTEN && ctx->newstate != GARRISON_TCP_SYN_SENT)
		return 0;
	cgroup = bpf_get_current_cgroup_id();
	if (!bpf_map_lookup_elem(&watched, &cgroup))
		return 0;
	e = start(EVENT_TCP, cgroup);
	if (!e)
		return 0;
	t = (struct tcp_record *)e->filename;
	t->family = ctx->family;
	t->sport = ctx->sport;
	t->dport = ctx->dport;
	t->state = ctx->newstate;
	if (ctx->family == 2) { /* AF_INET */
		__builtin_memcpy(t->saddr, ctx->saddr, 4);
		__builtin_memcpy(t->daddr, ctx->daddr, 4);
	} else {
		__builtin_memcpy(t->saddr, ctx->saddr_v6, 16);
		__builtin_memcpy(t->daddr, ctx->daddr_v6, 16);
	}
	send(e, 0);
	return 0;
}
