// SPDX-License-Identifier: GPL-2.0
/*
 * Garrison's in-kernel process event source (garrison/sensors/bpf_proc.py loads it).
 *
 * BTF-typed tracepoints (tp_btf: attached through the bpf syscall alone, so a host that has not
 * mounted tracefs, as this machine kind boots, runs them too) on sched_process_exec and
 * sched_process_exit, filtered in the kernel:
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
 * - so is every exec of a file with no link left (a memfd, a deleted file: "fileless"), and
 *   in a container whose flags hold KILL_FILELESS it is killed here, with bpf_send_signal,
 *   before the new program runs one instruction of its own (the fanotify permission path
 *   cannot hold a memfd: it is on no file system a mark can reach);
 * - so is every exec of a dynamic loader run by hand (``ld.so FILE``): user space judges the
 *   file it loads (the fanotify sensor may have been told to skip the loader's inode). In a
 *   container whose flags hold KILL_LOADER (its policy refuses programs its model does not
 *   know), the file is found among the loader's arguments here, as the loader itself parses
 *   them, and unless `loader_ok` holds that name for the container the exec is killed before
 *   the loader maps it: no instruction of the file runs. The names there are the ones user
 *   space judged harmless by path alone; a relative name is never there;
 * - an exit is sent only for a process whose exec off the root file system was sent;
 * - a TCP socket of a watched container that starts listening or connecting (the socket
 *   state tracepoint, in the context of the listen() or connect() that does it) is sent with
 *   its addresses: the network sensor then needs no TCP table walk (see network.py).
 * - a write refused with EROFS (or EXDEV: a rename or link across mounts) in a container whose
 *   flags hold REFUSALS: Garrison made some of its paths read-only (write_barrier.py) and
 *   audits what that refuses. Each syscall that can be so refused has a pair of programs: the
 *   entry keeps the path asked for (only in such containers, and for opens only with a write
 *   intent) in `asked`, the exit sends it when the call failed so. The pair sits on the raw
 *   sys_enter and sys_exit tracepoints (the per-syscall ones exist only through tracefs) and
 *   first looks at the syscall number (x86_64's). They are attached only while some
 *   container has read-only paths: a syscall tracepoint slows every syscall of the host a
 *   little (the slow path of syscall entry and exit).
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
#include <bpf/bpf_endian.h>
#include <asm/unistd.h>

char LICENSE[] SEC("license") = "GPL";

#define PRESERVE __attribute__((preserve_access_index))

struct super_block { __u32 s_dev; } PRESERVE;
struct inode {
	unsigned short i_mode;
	struct super_block *i_sb;
	unsigned long i_ino;
	unsigned int i_nlink; /* in an anonymous union: CO-RE finds it by name */
	long long i_size;
} PRESERVE;
struct qstr { const unsigned char *name; } PRESERVE;
struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct super_block *d_sb;
} PRESERVE;
struct path { struct dentry *dentry; } PRESERVE;
struct file {
	struct inode *f_inode;
	struct path f_path;
} PRESERVE;
struct fs_struct {
	struct path root;
	struct path pwd;
} PRESERVE;
struct mm_struct {
	struct file *exe_file;
	unsigned long arg_start;
	unsigned long arg_end;
} PRESERVE;
struct linux_binprm { const char *filename; } PRESERVE;
struct in6_addr { __u8 bytes[16]; };
struct sock_common {
	/* in anonymous unions and structures in the kernel: CO-RE finds them by name */
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	__u16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} PRESERVE;
struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} PRESERVE;
/* A syscall's registers (x86_64) as the raw sys_enter and sys_exit tracepoints give them. */
struct pt_regs {
	unsigned long r10;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
} PRESERVE;
struct task_struct {
	struct mm_struct *mm;
	struct fs_struct *fs;
	struct task_struct *real_parent;
	int exit_code;
	int exit_signal;
	int tgid;
} PRESERVE;

enum { EVENT_EXEC = 1, EVENT_EXIT = 2, EVENT_TCP = 3, EVENT_REFUSED = 4 };
enum { GARRISON_TCP_SYN_SENT = 2, GARRISON_TCP_LISTEN = 10, GARRISON_IPPROTO_TCP = 6 };
enum { RECORD_ROOTFS = 1, REFUSALS = 2, KILL_FILELESS = 4, KILL_LOADER = 8 };
/* What an EVENT_EXEC record says of its file (`flags`). */
enum { EXEC_FILELESS = 1, EXEC_KILLED = 2, EXEC_LOADER = 4 };
#define SIGKILL 9
#define EXE_NAME_SIZE 32
/* What a refused call tried (an EVENT_REFUSED record's `mode`). */
enum { OP_OPEN = 1, OP_CREATE = 2, OP_DELETE = 3, OP_TRUNCATE = 4, OP_ATTRS = 5 };
enum { GARRISON_EROFS = 30, GARRISON_EXDEV = 18, GARRISON_AT_FDCWD = -100 };
#define WRITE_INTENT (01 | 02 | 0100 | 01000) /* O_WRONLY O_RDWR O_CREAT O_TRUNC */
#define FILENAME_SIZE 256
#define ARGS_SIZE 1024
#define WAKE_BYTES (32 * 1024)
#define NAME_SLOT 64
#define DEPTH 8
#define LOADER_PATH 256 /* a loader's target longer than this is never in loader_ok */

/* A call of a REFUSALS container between its entry and exit. */
struct asked_call {
	__u64 path; /* user address of the path asked for */
	__s32 dfd;  /* the directory a relative path starts from, or AT_FDCWD */
	__u32 op;
	__u32 flags; /* open flags */
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
	__u32 flags;      /* RECORD_ROOTFS, REFUSALS, KILL_FILELESS, KILL_LOADER */
};

/* A file a loader run by hand may load in a KILL_LOADER container: the key of `loader_ok`. */
struct loader_key {
	__u64 cgroup;
	char path[LOADER_PATH]; /* absolute, NUL-padded */
};
enum { COUNT_SENT, COUNT_LOST, COUNT_ON_ROOTFS, COUNT_SLOTS };

/* EVENT_REFUSED: filename is the path asked for, exit_code the call's result (-EROFS or
 * -EXDEV), mode its OP_*, dev the dfd, exit_signal the open flags; args holds the names of
 * the caller's executable and then of its working directory (when on the file system of
 * its root), leaf first, NAME_SLOT bytes each, DEPTH of each (see walk()). */
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
	__u32 flags; /* EXEC_* */
	__u32 pad;
	__u64 size; /* of the file executed */
	char exe_name[EXE_NAME_SIZE]; /* its name (its dentry's: "memfd:x" for a memfd) */
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
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* most hosts hold none */
	__type(key, struct loader_key);
	__type(value, __u8);
} loader_ok SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loader_key);
} loader_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* tgid whose exec was sent */
	__type(value, __u8);
} sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* thread id, between a call's entry and exit */
	__type(value, struct asked_call);
} asked SEC(".maps");

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

static void read_exec(struct event *e, struct linux_binprm *bprm, struct task_struct *task,
		      struct inode *exe)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	__u64 size = end > start ? end - start : 0;

	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
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

/* A dynamic loader's file name: ld-linux-x86-64.so.2, ld-musl-x86_64.so.1, ld.so. Run by
 * hand (it is the executable itself, not an exec's interpreter), it runs the file named in
 * its arguments, which no exec opens: user space judges that file. */
static __always_inline int is_loader(const char *name)
{
	return name[0] == 'l' && name[1] == 'd' && (name[2] == '-' || name[2] == '.');
}

/* -- the file a loader run by hand loads ------------------------------------------------ */

/* The scan of a loader's argv, one byte per step, deciding at the end of each argument. */
struct loader_scan {
	const char *args;
	__u32 size;
	__u32 start;    /* of the argument being read */
	__u32 argno;
	__u32 eq;       /* that argument holds a '=' */
	__u32 value;    /* the next argument is the value of an option */
	__u32 end_opts; /* "--" was seen: the next argument is the file */
	__s32 target;   /* the file's offset in args: -1 none yet, -2 nothing runs */
};

enum { NO_TARGET = -1, RUNS_NOTHING = -2 };
#define ARG(s, i) ((s)->args[(i) & (ARGS_SIZE - 1)])

static __always_inline int arg_is(struct loader_scan *s, __u32 len, const char *word, __u32 n)
{
	if (len != n)
		return 0;
	for (__u32 j = 0; j < n && j < 16; j++)
		if (ARG(s, s->start + j) != word[j])
			return 0;
	return 1;
}

/* An argument [start, end) of the loader's argv, as glibc's rtld (dl_main) and musl's ldso
 * read their options: "--" ends them; "--name=value" is one argument (musl); the options that
 * take no value are --inhibit-cache and those that run nothing (--list, --verify: ldd's; any
 * other unknown one ends the loader with its usage); all others take the next argument. */
static __always_inline void loader_arg(struct loader_scan *s, __u32 end)
{
	__u32 len = end - s->start;

	if (s->argno++ == 0 || s->value) {
		s->value = 0;
		return;
	}
	if (s->end_opts || ARG(s, s->start) != '-' || ARG(s, s->start + 1) != '-') {
		s->target = s->start;
		return;
	}
	if (len == 2)
		s->end_opts = 1;
	else if (arg_is(s, len, "--list", 6) || arg_is(s, len, "--verify", 8))
		s->target = RUNS_NOTHING;
	else if (!s->eq && !arg_is(s, len, "--inhibit-cache", 15))
		s->value = 1;
}

static long loader_step(__u32 i, struct loader_scan *s)
{
	char ch;

	if (i >= s->size || s->target != NO_TARGET)
		return 1;
	ch = ARG(s, i);
	if (ch == '=')
		s->eq = 1;
	if (ch)
		return 0;
	loader_arg(s, i);
	s->start = i + 1;
	s->eq = 0;
	return 0;
}

/* May the loader run by hand in this record load what it names? Yes when the name is in
 * loader_ok, or when it loads nothing (no file named, --list); no when the name is relative,
 * too long, or cut off with the rest of an argv larger than the record holds. */
static int loader_allowed(struct event *e, __u64 cgroup)
{
	struct loader_scan s = {.args = e->args, .size = e->args_size, .target = NO_TARGET};
	__u32 zero = 0;
	struct loader_key *key = bpf_map_lookup_elem(&loader_scratch, &zero);
	long len;

	if (!key)
		return 1;
	bpf_loop(ARGS_SIZE, loader_step, &s, 0);
	if (s.target == RUNS_NOTHING)
		return 1;
	if (s.target == NO_TARGET)
		return e->args_size < ARGS_SIZE; /* a cut argv may hide the file: not allowed */
	if (ARG(&s, s.target) != '/')
		return 0;
	__builtin_memset(key, 0, sizeof(*key));
	key->cgroup = cgroup;
	len = bpf_probe_read_kernel_str(key->path, sizeof(key->path),
					e->args + (s.target & (ARGS_SIZE - 1)));
	if (len <= 0 || len >= LOADER_PATH)
		return 0;
	return bpf_map_lookup_elem(&loader_ok, key) != 0;
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) */
SEC("tp_btf/sched_process_exec")
int garrison_exec(__u64 *ctx)
{
	__u64 cgroup = bpf_get_current_cgroup_id();
	struct container *c = bpf_map_lookup_elem(&watched, &cgroup);
	struct task_struct *task;
	struct inode *exe;
	struct event *e;
	char name[EXE_NAME_SIZE] = {};
	int on_rootfs;
	__u32 dev, mode, flags = 0;

	if (!c)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	exe = BPF_CORE_READ(task, mm, exe_file, f_inode);
	dev = BPF_CORE_READ(exe, i_sb, s_dev);
	mode = BPF_CORE_READ(exe, i_mode);
	on_rootfs = c->rootfs_dev && dev == c->rootfs_dev;
	/* No link left: a memfd, or a file deleted (or never linked: O_TMPFILE). */
	if (BPF_CORE_READ(exe, i_nlink) == 0)
		flags |= EXEC_FILELESS;
	bpf_probe_read_kernel_str(name, sizeof(name),
				  BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name));
	if (is_loader(name))
		flags |= EXEC_LOADER;
	/* Stopped before its first instruction: the kill is pending when the exec returns. */
	if ((flags & EXEC_FILELESS) && (c->flags & KILL_FILELESS) && !bpf_send_signal(SIGKILL))
		flags |= EXEC_KILLED;
	if (on_rootfs && !flags && !(c->flags & RECORD_ROOTFS) && !(mode & (04000 | 02000))) {
		count(COUNT_ON_ROOTFS);
		return 0;
	}
	e = start(EVENT_EXEC, cgroup);
	if (!e)
		return 0;
	read_exec(e, (struct linux_binprm *)ctx[2], task, exe);
	/* Killed before the loader maps the file: still at the exec (see the file's comment). */
	if ((flags & EXEC_LOADER) && (c->flags & KILL_LOADER) && !loader_allowed(e, cgroup) &&
	    !bpf_send_signal(SIGKILL))
		flags |= EXEC_KILLED;
	e->dev = dev;
	e->mode = mode;
	e->on_rootfs = on_rootfs;
	e->flags = flags;
	e->size = BPF_CORE_READ(exe, i_size);
	__builtin_memcpy(e->exe_name, name, sizeof(name));
	if (!on_rootfs || flags)
		bpf_map_update_elem(&sent, &e->tgid, &(__u8){1}, BPF_ANY);
	send(e, flags ? 0 : wake_flags(on_rootfs));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int garrison_exit(__u64 *ctx)
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

/* inet_sock_set_state(const struct sock *sk, const int oldstate, const int newstate); the
 * addresses and ports as the tracepoint's own record has them (its sport is inet_sport, the
 * same as skc_num once bound; a connect's is 0 here: chosen just after). */
SEC("tp_btf/inet_sock_set_state")
int garrison_tcp(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int newstate = (int)ctx[2];
	__u64 cgroup;
	struct tcp_record *t;
	struct event *e;

	if (newstate != GARRISON_TCP_LISTEN && newstate != GARRISON_TCP_SYN_SENT)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != GARRISON_IPPROTO_TCP)
		return 0;
	cgroup = bpf_get_current_cgroup_id();
	if (!bpf_map_lookup_elem(&watched, &cgroup))
		return 0;
	e = start(EVENT_TCP, cgroup);
	if (!e)
		return 0;
	t = (struct tcp_record *)e->filename;
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	t->state = newstate;
	if (t->family == 2) { /* AF_INET */
		BPF_CORE_READ_INTO((__u32 *)t->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)t->daddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)t->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)t->daddr, sk, __sk_common.skc_v6_daddr);
	}
	send(e, 0);
	return 0;
}

/* -- writes refused by read-only mounts ------------------------------------------------- */

/* The call of a REFUSALS container's thread, kept until its exit. */
static __always_inline int remember(__u64 path, __s32 dfd, __u32 op, __u32 flags)
{
	struct asked_call call = {.path = path, .dfd = dfd, .op = op, .flags = flags};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_update_elem(&asked, &tid, &call, BPF_ANY);
	return 0;
}

static __always_inline int remember_open(__u64 path, __s32 dfd, __u64 flags)
{
	if (!(flags & WRITE_INTENT))
		return 0;
	return remember(path, dfd, OP_OPEN, (__u32)flags);
}

/* The names from a dentry up to its file system's root, leaf first, one NAME_SLOT each,
 * at most DEPTH (the short-lived callers of refused writes are gone by the time user space
 * could read /proc). An empty slot ends the path; a full walk that did not reach the root
 * leaves its last slot "..." to say the path is cut. */
static __always_inline void walk(char *out, struct dentry *d)
{
#pragma unroll
	for (int i = 0; i < DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);

		if (!d || parent == d)
			return;
		bpf_probe_read_kernel_str(out + i * NAME_SLOT, NAME_SLOT, BPF_CORE_READ(d, d_name.name));
		d = parent;
	}
	if (d && BPF_CORE_READ(d, d_parent) != d)
		__builtin_memcpy(out + (DEPTH - 1) * NAME_SLOT, "...", 4);
}

static __always_inline void caller_paths(struct event *e)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dentry *pwd = BPF_CORE_READ(task, fs, pwd.dentry);
	struct dentry *root = BPF_CORE_READ(task, fs, root.dentry);
	struct dentry *exe = BPF_CORE_READ(task, mm, exe_file, f_path.dentry);
	struct super_block *sb = BPF_CORE_READ(root, d_sb);

	/* A walk names a path within its file system: the container's only for its root's. */
	__builtin_memset(e->args, 0, sizeof(e->args));
	if (BPF_CORE_READ(exe, d_sb) == sb)
		walk(e->args, exe);
	else
		e->args[0] = '?';
	if (BPF_CORE_READ(pwd, d_sb) == sb)
		walk(e->args + DEPTH * NAME_SLOT, pwd);
	else
		e->args[DEPTH * NAME_SLOT] = '?';
	e->args_size = sizeof(e->args);
}

/* The calls a read-only mount refuses that are followed. */
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452 /* Linux 6.6; older headers lack it */
#endif
static __always_inline int followed(long id)
{
	switch (id) {
	case __NR_open: case __NR_openat: case __NR_openat2: case __NR_creat:
	case __NR_mkdir: case __NR_mkdirat: case __NR_mknod: case __NR_mknodat:
	case __NR_symlink: case __NR_symlinkat: case __NR_link: case __NR_linkat:
	case __NR_rename: case __NR_renameat: case __NR_renameat2:
	case __NR_unlink: case __NR_unlinkat: case __NR_rmdir: case __NR_truncate:
	case __NR_chmod: case __NR_fchmodat: case __NR_fchmodat2:
	case __NR_chown: case __NR_lchown: case __NR_fchownat:
		return 1;
	}
	return 0;
}

static __always_inline __u64 arg(struct pt_regs *regs, int n)
{
	switch (n) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	default: return BPF_CORE_READ(regs, r10);
	}
}

/* A call whose path is argument `path`, relative to the dfd in argument `dfd` (or -1: the
 * working directory). */
#define CALL(name, dfd, path, op)                                                      \
	case __NR_##name:                                                              \
		return remember(arg(regs, path),                                       \
				dfd < 0 ? GARRISON_AT_FDCWD : (__s32)arg(regs, dfd), op, 0);

/* sys_enter(struct pt_regs *regs, long id) */
SEC("tp_btf/sys_enter")
int garrison_sys_enter(__u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	long id = (long)ctx[1];
	__u64 cgroup, flags = 0;
	struct container *c;

	if (!followed(id))
		return 0;
	cgroup = bpf_get_current_cgroup_id();
	c = bpf_map_lookup_elem(&watched, &cgroup);
	if (!c || !(c->flags & REFUSALS))
		return 0;
	switch (id) {
	case __NR_open:
		return remember_open(arg(regs, 0), GARRISON_AT_FDCWD, arg(regs, 1));
	case __NR_openat:
		return remember_open(arg(regs, 1), (__s32)arg(regs, 0), arg(regs, 2));
	case __NR_openat2: /* struct open_how starts with the flags */
		bpf_probe_read_user(&flags, sizeof(flags), (void *)arg(regs, 2));
		return remember_open(arg(regs, 1), (__s32)arg(regs, 0), flags);
	CALL(creat, -1, 0, OP_CREATE)
	CALL(mkdir, -1, 0, OP_CREATE)
	CALL(mkdirat, 0, 1, OP_CREATE)
	CALL(mknod, -1, 0, OP_CREATE)
	CALL(mknodat, 0, 1, OP_CREATE)
	CALL(symlink, -1, 1, OP_CREATE)
	CALL(symlinkat, 1, 2, OP_CREATE)
	CALL(link, -1, 1, OP_CREATE)
	CALL(linkat, 2, 3, OP_CREATE)
	CALL(rename, -1, 1, OP_CREATE)
	CALL(renameat, 2, 3, OP_CREATE)
	CALL(renameat2, 2, 3, OP_CREATE)
	CALL(unlink, -1, 0, OP_DELETE)
	CALL(unlinkat, 0, 1, OP_DELETE)
	CALL(rmdir, -1, 0, OP_DELETE)
	CALL(truncate, -1, 0, OP_TRUNCATE)
	CALL(chmod, -1, 0, OP_ATTRS)
	CALL(fchmodat, 0, 1, OP_ATTRS)
	CALL(fchmodat2, 0, 1, OP_ATTRS)
	CALL(chown, -1, 0, OP_ATTRS)
	CALL(lchown, -1, 0, OP_ATTRS)
	CALL(fchownat, 0, 1, OP_ATTRS)
	}
	return 0;
}

/* sys_exit(struct pt_regs *regs, long ret): a followed call of a REFUSALS container. */
SEC("tp_btf/sys_exit")
int garrison_sys_exit(__u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	long ret = (long)ctx[1];
	__u32 tid;
	struct asked_call *call;
	struct event *e;

	if (!followed(BPF_CORE_READ(regs, orig_ax)))
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	call = bpf_map_lookup_elem(&asked, &tid);
	if (!call)
		return 0;
	if (ret == -GARRISON_EROFS || ret == -GARRISON_EXDEV) {
		e = start(EVENT_REFUSED, bpf_get_current_cgroup_id());
		if (e) {
			bpf_probe_read_user_str(e->filename, sizeof(e->filename),
						(void *)call->path);
			e->exit_code = ret;
			e->mode = call->op;
			e->dev = call->dfd;
			e->exit_signal = call->flags;
			e->uid = (__u32)bpf_get_current_uid_gid();
			caller_paths(e);
			send(e, 0);
		}
	}
	bpf_map_delete_elem(&asked, &tid);
	return 0;
}
