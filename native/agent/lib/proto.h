/* The agent's control protocol: the frames the host and libwbpf_agent.so exchange on the channel
 * (a SOCK_STREAM socketpair end whose number the agent reads from WBPF_AGENT_FD). Little-endian. */
#ifndef WBPF_AGENT_PROTO_H
#define WBPF_AGENT_PROTO_H
#include <stdint.h>

/* Every frame: this header, then `len` bytes of payload. The host numbers its requests (seq); the
 * agent answers each with one WBPF_AGENT_REPLY carrying the same seq, in order. Notices (EVENT, TRACE;
 * seq 0) may come between replies at any time.
 *
 * Launch mode: the agent's constructor (before the command's main) starts the serving thread and then
 * blocks until START arrives or the channel reaches EOF, so that the hooks the host sets first see
 * the command from its first instruction. A host that neither sends START nor closes its end leaves
 * the command waiting: closing it, or the host dying (the kernel closes its fds), gives EOF. On EOF
 * the agent removes every hook and the process runs on unhooked. */
struct wbpf_agent_frame {
	uint32_t len;  /* payload bytes after the header (at most WBPF_AGENT_MAX_PAYLOAD) */
	uint32_t type; /* enum wbpf_agent_type */
	uint32_t seq;  /* request number; events: 0 */
};
#define WBPF_AGENT_MAX_PAYLOAD (64u << 20)

/* Several hosts at once: one agent serves up to this many channels (the launch's and joins'), each a
 * session with its own ids, maps, programs and hooks; a join past it is refused (wbpf_agent_join: -EBUSY) */
#define WBPF_AGENT_MAX_SESSIONS 8

enum wbpf_agent_type {
	/* host -> agent */
	WBPF_AGENT_MAP = 1,  /* struct wbpf_agent_map */
	WBPF_AGENT_PROG = 2, /* struct wbpf_agent_prog, u32 helpers[nhelpers], insns (insn_len bytes) */
	WBPF_AGENT_HOOK = 3, /* struct wbpf_agent_hook */
	WBPF_AGENT_START = 4,  /* empty: let the launched command run (idempotent) */
	WBPF_AGENT_UNHOOK = 5, /* u32 hook id: remove that attachment; the function is unpatched with its last */
	/* agent -> host */
	WBPF_AGENT_DROP = 6,   /* struct wbpf_agent_drop: free a program (no hook uses it) or a map (no program names it) */
	WBPF_AGENT_SYSCALL = 7, /* struct wbpf_agent_syscall, then the event's 64-byte field table; UNHOOK removes it */
	WBPF_AGENT_TASK = 8,    /* struct wbpf_agent_task: the task_struct image's layout for bpf_get_current_task */
	WBPF_AGENT_REPLY = 16, /* i32 status (0 OK, else a positive errno-like code), then a message (no NUL) */
	WBPF_AGENT_EVENT = 17, /* u32 hook id, then a message: a hook was disabled (a fault at a hit) */
	WBPF_AGENT_TRACE = 18, /* u32 hook id, then text: bpf_trace_printk of a program run at that hook */
};

/* A shared-memory map (native/agent/maps/). Its memfd and eventfd come either attached to this frame
 * (SCM_RIGHTS: the first fd is the memfd, the second the eventfd) or, when none is attached, as fd
 * numbers the agent's process already holds (inherited: launch mode passes them in the spawn). */
struct wbpf_agent_map {
	uint32_t id;        /* the host's map id: programs' `lddw rX, map_by_fd(id)` name it */
	int32_t fd;         /* the memfd, when not attached */
	int32_t notify_fd;  /* the eventfd (ring types), or -1, when not attached */
	uint32_t reserved;
};

/* A program: instructions with map references already resolved (lddw src 1, imm = map id) */
struct wbpf_agent_prog {
	uint32_t id;
	uint32_t nhelpers; /* the helper ids the program calls (each must be one the agent implements) */
	uint32_t insn_len; /* bytes of instructions (8 per slot) */
	uint32_t reserved;
};

/* A uprobe at the entry (or, with WBPF_AGENT_HOOK_RETURN, a uretprobe at the return) of a function of
 * a file mapped in the process: every executable mapping of (dev, ino) covering file_offset is hooked
 * (the first one, in this slice). Several hooks may name one function (entry and return programs,
 * several apps' programs): each runs at each hit; UNHOOK removes one. A file not mapped (yet): the reply
 * is status 0 with "hook N pending: <why>", and the hook is set once a dlopen maps it. Descendants of
 * the process (fork, exec) apply the same hooks (registry.h). */
/* DROP: what an object's close frees in the agent, after its hooks are removed (programs first, then maps);
 * EBUSY while a hook still runs the program or a loaded program still names the map */
enum { WBPF_AGENT_DROP_PROG = 1, WBPF_AGENT_DROP_MAP = 2 };
struct wbpf_agent_drop {
	uint32_t kind; /* WBPF_AGENT_DROP_PROG, WBPF_AGENT_DROP_MAP */
	uint32_t id;
};

struct wbpf_agent_hook {
	uint32_t id;       /* the host's hook id (events name it) */
	uint32_t prog_id;
	uint64_t dev;      /* st_dev as Linux encodes it (gnu_dev_major/minor) */
	uint64_t ino;
	uint64_t file_offset;
	uint64_t size;     /* the symbol's st_size, 0 unknown */
	uint32_t flags;    /* WBPF_AGENT_HOOK_* */
	uint32_t reserved;
};
#define WBPF_AGENT_HOOK_RETURN 1u /* a return probe: the program runs at the function's return (ctx: the return regs) */

/* A tp/syscalls (or raw_syscalls) program at one syscall number's entry or exit, in this process's libc
 * (its `mov $nr,%eax; syscall` sites rewritten to a trampoline: native/agent/sys/). Followed by the event's
 * field table (WBPF_SYS_TABLE_SIZE bytes, backends/userspace/syscalls/fieldtable.ts): where the record's
 * header, number, arguments and result sit. Its id shares the hooks' id space (UNHOOK removes it). */
struct wbpf_agent_syscall {
	uint32_t id;
	uint32_t prog_id;
	uint32_t nr;    /* the syscall number of this arch */
	uint32_t flags; /* WBPF_AGENT_SYSCALL_EXIT: sys_exit_* (ctx has the result); _RAW: raw_syscalls/sys_enter|sys_exit (nr ignored);
	                 * _SCHED: tp/sched/sched_process_* (nr is the event) */
};
#define WBPF_AGENT_SYSCALL_EXIT 1u
#define WBPF_AGENT_SYSCALL_RAW 2u
/* WBPF_AGENT_SYSCALL_SCHED: a tp/sched/sched_process_* program instead: nr is the event
 * (WBPF_AGENT_SCHED_*), the 64 bytes are a sched table (native/agent/lib/sched.h) */
#define WBPF_AGENT_SYSCALL_SCHED 4u
enum { WBPF_AGENT_SCHED_EXEC = 0, WBPF_AGENT_SCHED_EXIT = 1, WBPF_AGENT_SCHED_FORK = 2 };

/* TASK: where the fields the agent fills sit in a task_struct image, by the BTF the programs are CO-RE
 * relocated against (the host reads them from that BTF). bpf_get_current_task(_btf) returns the calling
 * thread's image (size bytes, zero but for these); real_parent and parent point at a second image holding
 * the parent's pid and tgid. An offset of WBPF_AGENT_TASK_NONE: that field is not in the BTF. One layout per
 * agent: the last TASK wins. */
#define WBPF_AGENT_TASK_NONE 0xffffffffu
#define WBPF_AGENT_TASK_MAX (64u << 10) /* image bytes at most */
struct wbpf_agent_task {
	uint32_t size;
	uint32_t pid, tgid, real_parent, parent, comm, exit_code, start_time, start_boottime;
	uint32_t reserved;
};

#endif
