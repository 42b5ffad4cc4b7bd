// SPDX-License-Identifier: GPL-2.0
/*
 * sg_fuzz: a structure-aware, seeded fuzzer for /dev/sendgroup and its group fds.
 *
 * Every operation is drawn from a seeded random stream: an ioctl of the device
 * or of a group fd whose arguments are mostly valid, with a few fields set to
 * edge values (0, 1, max, max+1, ~0, struct sizes +-1, non-zero reserved fields,
 * unknown flags) and pointers of every bad kind (NULL, unmapped, PROT_NONE,
 * read-only where the kernel writes, straddling into an unmapped or PROT_NONE
 * page, kernel and non-canonical addresses); a change of socket (every type and
 * state) or socket option; or an episode: fork, SCM_RIGHTS, dup, a close in the
 * middle of a call, a SIGKILL to a child in the middle of a send, non-fatal
 * signals in the middle of a send.
 *
 * What must hold (the kernel log is checked by the caller, scripts/vm/guest):
 *  - every ioctl returns 0/positive or an errno of that ioctl's documented set;
 *  - every results[] slot and failure record is 0 or an errno sendmsg() can
 *    return (never -ERESTARTSYS or another kernel-internal value);
 *  - EFAULT only where the fuzzer passed a pointer the kernel cannot use;
 *  - a call that fails sent nothing, a call that succeeds sent what it says
 *    (the module's recipients_sent counter, while stream 0 runs alone);
 *  - a group's LIST count and sent + failure_count match the fuzzer's model;
 *  - no LSM refusal is counted while no LSM policy refuses anything;
 *  - once everything is closed, groups_live, members_live and routes_cached are 0.
 *
 * Stream 0 runs alone first: its operations and results follow from the seed.
 * Then streams 1..T run concurrently on the same groups and sockets. A failure
 * prints the seed, the stream and the op index; `--seed S --stream N --ops K
 * --trace` replays stream N alone up to op K and prints every op.
 *
 * Run as root in a network namespace of its own (scripts/lib/netns-exec): it adds
 * dummy devices and routes there, and refuses to run where a default route exists.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "sg_test_helpers.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SO_TIMESTAMPING
#define SO_TIMESTAMPING 37
#endif
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
#ifndef MSG_SPLICE_PAGES
#define MSG_SPLICE_PAGES 0x8000000
#endif

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define PAGE		4096UL
#define MAX_STREAMS	16
#define SOCK_SLOTS	12
#define GROUP_SLOTS	8
#define SMALL_IDS	64	/* ids 0..63: the model tracks which are members */
#define SCRATCH_BYTES	(8UL << 20)
#define RO_PAGES	16
#define RECEIVERS	4
#define LARGE_STRUCT	8192	/* larger structs sit right before an unmapped page */

/* ---- random stream ------------------------------------------------------ */

struct rng {
	__u64 state;
};

/* splitmix64: small, fast, and every seed gives a full-quality stream. */
static __u64 rng_next(struct rng *r)
{
	__u64 z = (r->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static __u32 rng_below(struct rng *r, __u32 n)
{
	return n ? (__u32)(rng_next(r) % n) : 0;
}

/* True with probability @permille / 1000. */
static bool rng_chance(struct rng *r, unsigned int permille)
{
	return rng_below(r, 1000) < permille;
}

/* ---- run-wide state, shared with forked children ------------------------ */

#define MAX_SIGNATURES	48

/* A kind of failure: reported once in full, then counted. */
struct signature {
	char key[160];
	char first[1200];
	unsigned long count;
};

enum episode {
	EP_FORK, EP_SIGKILL, EP_SIGNAL, EP_CLOSE_MID_CALL, EP_SCM_RIGHTS, EP_DUP, EP_KINDS
};

static const char *const episode_names[EP_KINDS] = {
	"fork", "SIGKILL mid-send", "signals mid-send", "close mid-call", "SCM_RIGHTS", "dup",
};

/* In MAP_SHARED memory: children of fork episodes count and report here too. */
struct run_shared {
	atomic_ulong ioctls;
	atomic_ulong failures;
	atomic_ulong episodes[EP_KINDS];
	atomic_ulong sent_by_children;	/* datagrams sent by children that exited normally */
	atomic_flag lock;		/* for signatures[]; never held across a syscall */
	unsigned int nr_signatures;
	struct signature signatures[MAX_SIGNATURES];
};

static struct run_shared *run;

static struct {
	__u64 seed;
	unsigned long max_ioctls;	/* --iterations */
	unsigned long max_ops;		/* --ops (replay) */
	double seconds;			/* --seconds */
	double deadline;		/* --deadline: --iterations must be reached by then */
	unsigned int threads;		/* concurrent streams after stream 0 */
	int only_stream;		/* --stream N, or -1 */
	bool trace;
	bool no_netdev;
} opt = { .seed = 0, .max_ioctls = 100000, .threads = 6, .only_stream = -1 };

/*
 * How much bulk work an op does. Both profiles draw every op kind, edge value,
 * pointer kind, socket kind and episode; "lean" (the debug kernel's lane, where
 * KASAN and kmemleak unwind the stack at every allocation and free) makes the
 * calls that allocate per member or send hundreds of datagrams rarer, and the
 * episodes' groups smaller, so that the run's cost is its ioctls.
 */
struct profile {
	const char *name;
	unsigned int large_members_per_10k;	/* ADD/UPDATE of 100 or more members ... */
	unsigned int large_members_max;		/* ... up to this many */
	unsigned int bulk_edge_permille;	/* a count edge of 32+ recipients/payloads kept */
	unsigned int episode_divisor;		/* episodes this many times rarer */
	unsigned int slow_members[2];		/* a slow group's members: base, spread (tbf) */
	unsigned int bounded_members[2];	/* ... (loopback, a long call that does not wait) */
	unsigned long straddle_bytes_max;	/* readable bytes before a straddled boundary */
	unsigned int alone_percent;		/* share of the ioctls stream 0 runs alone */
};

static const struct profile profiles[] = {
	{ "full", 10, 4096, 1000, 1, { 16, 48 }, { 64, 256 }, SCRATCH_BYTES / 2, 40 },
	/*
	 * A member array that straddles the hole is read entry by entry and
	 * every entry before the fault becomes a member: 4 MiB of them is 65535
	 * members built and freed, ~9 s under KASAN, half of a lean run's time.
	 * Stream 0 alone runs one vCPU (~600 ioctls/s under the debug kernel),
	 * the streams together both (~1200/s): a fifth alone, not two fifths.
	 */
	{ "lean", 1, 300, 5, 8, { 8, 16 }, { 16, 64 }, 32UL << 10, 20 },
};

static const struct profile *profile = &profiles[0];

static bool profile_set(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(profiles); i++)
		if (!strcmp(profiles[i].name, name)) {
			profile = &profiles[i];
			return true;
		}
	return false;
}

static double start_time;
static atomic_bool stop_streams;

/*
 * The watchdog's view of each stream (indexed by stream id, outside struct
 * stream, which stream_init() clears): when its current op started (0
 * between ops) and its kind. A run that overruns its VM's deadline must
 * still say where it was: progress every PROGRESS_SEC, and any op running
 * STUCK_OP_SEC or longer while it runs, not only once it returns.
 */
#define PROGRESS_SEC 60
#define STUCK_OP_SEC 60
static _Atomic double op_started[MAX_STREAMS + 1];
static atomic_int op_running_kind[MAX_STREAMS + 1];
static atomic_bool watchdog_stop;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- errnos: what each ioctl may answer --------------------------------- */

#define ERRNO_SET(...) ((const int[]){ __VA_ARGS__, 0 })

static const int *const info_errnos = ERRNO_SET(EFAULT, EINVAL);
static const int *const send_errnos = ERRNO_SET(EFAULT, EINVAL, E2BIG, EMSGSIZE, EBADF, ENOTSOCK,
					       EPROTONOSUPPORT, ENOMEM, EINTR);
static const int *const create_errnos = ERRNO_SET(EFAULT, EINVAL, E2BIG, EBADF, ENOTSOCK,
						 EPROTONOSUPPORT, ENOMEM, EMFILE, ENFILE);
/* Membership calls are killable: EINTR, seen only by a dying caller. */
static const int *const add_errnos = ERRNO_SET(EFAULT, EINVAL, E2BIG, EMSGSIZE, ENOMEM, EEXIST,
					      ENOSPC, EINTR);
static const int *const update_errnos = ERRNO_SET(EFAULT, EINVAL, E2BIG, EMSGSIZE, ENOMEM, ENOENT,
						 EINTR);
static const int *const remove_errnos = ERRNO_SET(EFAULT, EINVAL, E2BIG, ENOMEM, ENOENT, EINTR);
static const int *const list_errnos = ERRNO_SET(EFAULT, EINVAL, E2BIG, ENOMEM);
static const int *const group_send_errnos = ERRNO_SET(EFAULT, EINVAL, E2BIG, EMSGSIZE, ENOMEM,
						     EINTR);
static const int *const unknown_cmd_errnos = ERRNO_SET(ENOTTY);
/* When the fd itself was closed or replaced during the call: anything documented. */
static const int *const any_uapi_errnos = ERRNO_SET(EFAULT, EINVAL, E2BIG, EMSGSIZE, EBADF,
						   ENOTSOCK, EPROTONOSUPPORT, ENOMEM, EINTR, EMFILE,
						   ENFILE, EEXIST, ENOSPC, ENOENT, ENOTTY);
/*
 * What one datagram may fail with: the errnos sendmsg() on a UDP socket
 * documents (sendmsg(2), udp(7), ip(7), ipv6(7)). EFAULT only for one-shot
 * recipients whose private bytes the fuzzer made unreadable.
 */
static const int *const datagram_errnos = ERRNO_SET(EACCES, EAGAIN, EINTR, EINVAL, EMSGSIZE,
						   ENOBUFS, ENOMEM, EPIPE, ENETUNREACH,
						   EHOSTUNREACH, ECONNREFUSED, EADDRNOTAVAIL,
						   EPERM, EAFNOSUPPORT, ENODEV, ENETDOWN);

static bool errno_in(int err, const int *set)
{
	for (; *set; set++)
		if (*set == err)
			return true;
	return false;
}

static const char *errno_name(int err)
{
	static __thread char buf[24];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

/* ---- per-stream state --------------------------------------------------- */

/*
 * One stream's memory: a large scratch area, then an unmapped page (straddle
 * target), a read-write page followed by a PROT_NONE page, read-only pages.
 */
struct mem {
	unsigned char *scratch;
	size_t used;			/* bump allocator, reset every op */
	unsigned char *hole;		/* unmapped, right after scratch */
	unsigned char *before_none;	/* read-write page right before ... */
	unsigned char *none;		/* ... a PROT_NONE page */
	unsigned char *ro;		/* RO_PAGES read-only pages */
	size_t ro_low, ro_high;		/* this op's read-only placements: [0, low) and [high, end) */
};

/* A slow group for signal and SIGKILL episodes: its datagrams wait for buffer space. */
struct slow_group {
	int sock, group, family;
	unsigned int members;
};

struct stream {
	unsigned int id;
	struct rng rng;
	unsigned long op;		/* index of the current op in this stream */
	int dev;
	bool alone;			/* no other stream runs: models and counters hold */
	bool in_child;			/* a forked child: reports only */
	struct mem mem;
	const char *op_name;
	char desc[640];			/* the current op's arguments, for reports */
	size_t desc_len;
	bool bad_ptr;			/* the current op passed a pointer the kernel may fault on */
	__s32 *child_slots;		/* MAP_SHARED: results a killed child leaves behind */
	timer_t timer;
	bool have_timer;
	__u64 expect_sent;		/* recipients_sent the stream expects (alone) */
	bool expect_valid;
};

/* ---- failures ------------------------------------------------------------ */

static void spin_lock_shared(void)
{
	while (atomic_flag_test_and_set_explicit(&run->lock, memory_order_acquire))
		;
}

static void spin_unlock_shared(void)
{
	atomic_flag_clear_explicit(&run->lock, memory_order_release);
}

/* Record a failure of the current op: @key names its kind (deduplicated). */
static void __attribute__((format(printf, 2, 3))) fail(struct stream *st, const char *fmt, ...)
{
	char key[160], first[1200];
	struct signature *sig = NULL;
	bool new = false;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	snprintf(first, sizeof(first),
		 "seed %llu stream %u op %lu%s: %s: %s\n#   args: %s\n#   replay: sg_fuzz --seed %llu --profile %s --stream %u --ops %lu --trace",
		 (unsigned long long)opt.seed, st->id, st->op, st->in_child ? " (forked child)" : "",
		 st->op_name, key, st->desc, (unsigned long long)opt.seed, profile->name, st->id,
		 st->op + 1);

	atomic_fetch_add(&run->failures, 1);
	spin_lock_shared();
	for (unsigned int i = 0; i < run->nr_signatures; i++)
		if (!strcmp(run->signatures[i].key, key))
			sig = &run->signatures[i];
	if (!sig && run->nr_signatures < MAX_SIGNATURES) {
		sig = &run->signatures[run->nr_signatures++];
		snprintf(sig->key, sizeof(sig->key), "%s", key);
		snprintf(sig->first, sizeof(sig->first), "%s", first);
		new = true;
	}
	if (sig)
		sig->count++;
	spin_unlock_shared();
	if (new) {
		char line[1300];
		int n = snprintf(line, sizeof(line), "# FAILURE %s\n", first);

		if (write(STDOUT_FILENO, line, n > (int)sizeof(line) ? sizeof(line) - 1 : n) < 0)
			abort();
	}
}

static void __attribute__((format(printf, 2, 3))) describe(struct stream *st, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (st->desc_len >= sizeof(st->desc) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(st->desc + st->desc_len, sizeof(st->desc) - st->desc_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		st->desc_len = st->desc_len + n < sizeof(st->desc) ? st->desc_len + n : sizeof(st->desc) - 1;
}

/* ---- the world: sockets and groups shared by every stream ---------------- */

enum sock_kind {
	SK_UDP4_UNBOUND, SK_UDP4_LOOPBACK, SK_UDP4_ANY, SK_UDP4_CONNECTED, SK_UDP4_SHUTDOWN,
	SK_UDP4_TINY_SNDBUF, SK_UDP4_BOUND_DEVICE, SK_UDP4_CORKED, SK_UDP4_PENDING,
	SK_UDP4_OPTIONS, SK_UDP4_BROADCAST,
	SK_UDP6_UNBOUND, SK_UDP6_LOOPBACK, SK_UDP6_DUAL, SK_UDP6_V6ONLY, SK_UDP6_CONNECTED,
	SK_UDP6_FLOWLABEL, SK_UDP6_MTU, SK_UDP6_BOUND_DEVICE,
	SK_UDP_KINDS,	/* the kinds above are UDP sockets a group can use */
	SK_CLOSED = SK_UDP_KINDS, SK_TCP4, SK_TCP6, SK_RAW4, SK_PING4, SK_UDPLITE4,
	SK_UNIX_DGRAM, SK_PACKET, SK_EVENTFD, SK_DEVNULL, SK_DEVICE,
	SK_KINDS
};

static const char *const sock_kind_names[SK_KINDS] = {
	"udp4-unbound", "udp4-loopback", "udp4-any", "udp4-connected", "udp4-shutdown",
	"udp4-tiny-sndbuf", "udp4-bound-device", "udp4-corked", "udp4-pending",
	"udp4-ip-options", "udp4-broadcast",
	"udp6-unbound", "udp6-loopback", "udp6-dual", "udp6-v6only", "udp6-connected",
	"udp6-flowlabel", "udp6-mtu", "udp6-bound-device",
	"closed-fd", "tcp4", "tcp6", "raw4", "ping4", "udplite4", "unix-dgram", "packet",
	"eventfd", "dev-null", "sendgroup-device",
};

struct sock_slot {
	int fd;
	enum sock_kind kind;
	unsigned int gen;	/* bumped whenever the fd changes */
};

struct group_slot {
	int fd;
	unsigned int gen;
	int family;		/* of the group's socket */
	bool tracked;		/* the model below is exact (stream 0 alone, no other user) */
	unsigned int members;
	__u64 small_ids;	/* bitmap: which of ids 0..63 are members */
};

static struct {
	pthread_mutex_t lock;
	struct sock_slot socks[SOCK_SLOTS];
	struct group_slot groups[GROUP_SLOTS];
	int receivers[2][RECEIVERS];	/* [0] IPv4, [1] IPv6 */
	unsigned int ports[2][RECEIVERS];
	int dummy_ifindex, slow_ifindex, lo_ifindex;
	bool slow_path;			/* sgfuzz1 holds packets (tbf): sends can block */
} world = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void world_lock(void)
{
	pthread_mutex_lock(&world.lock);
}

static void world_unlock(void)
{
	pthread_mutex_unlock(&world.lock);
}

/* ---- destinations --------------------------------------------------------- */

struct dest {
	int family;
	const char *addr;
	bool with_scope;	/* scope_id = the dummy device */
};

/*
 * Only loopback, the namespace's own dummy devices (packets dropped or held
 * there), and addresses that have no route in the namespace.
 */
#define V4(a)		{ AF_INET, a, false }
#define V6(a)		{ AF_INET6, a, false }
#define V6_SCOPED(a)	{ AF_INET6, a, true }

static const struct dest dests[] = {
	V4("127.0.0.1"), V4("127.0.0.1"), V4("127.0.0.1"),
	V4("127.0.0.2"), V4("0.0.0.0"), V4("255.255.255.255"),
	V4("224.0.0.1"), V4("10.99.0.1"), V4("10.99.0.2"),
	V4("10.99.0.255"), V4("10.98.0.1"), V4("10.97.0.1"),
	V4("192.0.2.1"),
	V6("::1"), V6("::1"), V6("::1"), V6("::"),
	V6("::ffff:127.0.0.1"), V6("fd00:99::1"), V6("fd00:99::2"),
	V6_SCOPED("fe80::2"), V6("fe80::3"), V6_SCOPED("ff02::1"),
	V6("2001:db8::1"), V6("fd00:98::1"),
};

/* ---- memory and pointers ---------------------------------------------------- */

/* Every op starts with all of scratch and all of the read-only pages free. */
static void mem_reset(struct mem *m)
{
	m->used = 0;
	m->ro_low = 0;
	m->ro_high = RO_PAGES * PAGE;
}

static void mem_init(struct mem *m)
{
	size_t total = SCRATCH_BYTES + PAGE + 2 * PAGE + RO_PAGES * PAGE + PAGE;
	unsigned char *base = mmap(NULL, total, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (base == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	m->scratch = base;
	m->hole = base + SCRATCH_BYTES;
	m->before_none = m->hole + PAGE;
	m->none = m->before_none + PAGE;
	m->ro = m->none + PAGE;
	munmap(m->hole, PAGE);
	munmap(m->ro + RO_PAGES * PAGE, PAGE);
	mprotect(m->none, PAGE, PROT_NONE);
	mprotect(m->ro, RO_PAGES * PAGE, PROT_READ);
	mem_reset(m);
}

/* Arrays an op builds stay below this, so one op's allocations always fit. */
#define MAX_BUILT_BYTES	(1UL << 20)

/* Zeroed, 8-byte aligned scratch for this op; NULL when it does not fit. */
static void *scratch_try_alloc(struct stream *st, size_t len)
{
	struct mem *m = &st->mem;
	size_t at = (m->used + 7) & ~7UL;

	if (len > SCRATCH_BYTES || at > SCRATCH_BYTES - len)
		return NULL;
	m->used = at + len;
	memset(m->scratch + at, 0, len);
	return m->scratch + at;
}

static void *scratch_alloc(struct stream *st, size_t len)
{
	void *p = scratch_try_alloc(st, len);

	if (!p) {
		fprintf(stderr, "sg_fuzz: scratch exhausted (%zu bytes more, %zu used) in %s:%s\n",
			len, st->mem.used, st->op_name, st->desc);
		abort();
	}
	return p;
}

/* The hole after scratch must still be unmapped: nothing else may have landed there. */
static bool hole_is_unmapped(const struct mem *m)
{
	return msync(m->hole, PAGE, MS_ASYNC) && errno == ENOMEM;
}

/* Payload bytes: a pattern the scratch allocator never hands out. */
static unsigned char pattern[SENDGROUP_MAX_DATAGRAM + PAGE];

enum ptr_kind {
	PTR_VALID, PTR_NULL, PTR_UNMAPPED, PTR_PROT_NONE, PTR_READ_ONLY, PTR_STRADDLE_HOLE,
	PTR_STRADDLE_NONE, PTR_KERNEL, PTR_KINDS
};

static const char *const ptr_kind_names[PTR_KINDS] = {
	"valid", "NULL", "unmapped", "PROT_NONE", "read-only", "straddles-unmapped",
	"straddles-PROT_NONE", "kernel",
};

/* Addresses no user pointer may reach: the direct map, kernel text, non-canonical, wrapping. */
static const __u64 kernel_ptrs[] = {
	0xffff888000000000ULL, 0xffffffff81000000ULL, 0xffffffffff600000ULL,
	0x0000800000000000ULL, 0x8000000000000000ULL, 0xfffffffffffff000ULL,
	0xffffffffffffffffULL, 0x00007ffffffff000ULL, 0x10,
};

/*
 * Place @len bytes of @content (NULL: zeros) where the kernel finds them
 * through the returned pointer, of a random kind in @permille_bad of cases.
 * Marks the op when the kernel may fault on it: @writes says whether the
 * kernel writes there (then read-only memory is bad too).
 */
static __u64 place(struct stream *st, const char *what, const void *content, __u64 len,
		   bool writes, unsigned int permille_bad)
{
	enum ptr_kind kind = PTR_VALID;
	struct mem *m = &st->mem;
	unsigned char *p = NULL;
	__u64 ptr;
	bool bad;

	if (rng_chance(&st->rng, permille_bad))
		kind = 1 + rng_below(&st->rng, PTR_KINDS - 1);
	switch (kind) {
	case PTR_VALID:
		/* Payload bytes are read where they are: the pattern never changes. */
		if (content >= (const void *)pattern &&
		    len <= (__u64)(pattern + sizeof(pattern) - (const unsigned char *)content)) {
			ptr = (uintptr_t)content;
			bad = false;
			break;
		}
		p = len <= 2 * MAX_BUILT_BYTES ? scratch_try_alloc(st, len) : NULL;
		if (!p) {	/* too large for scratch: its end runs into the hole */
			kind = PTR_STRADDLE_HOLE;
			goto straddle;
		}
		if (content)
			memcpy(p, content, len);
		ptr = (uintptr_t)p;
		bad = false;
		break;
	case PTR_NULL:
		ptr = 0;
		bad = len > 0;
		break;
	case PTR_UNMAPPED:
		if (!hole_is_unmapped(m)) {
			fprintf(stderr, "sg_fuzz: something was mapped into the unmapped page\n");
			abort();
		}
		ptr = (uintptr_t)m->hole + rng_below(&st->rng, PAGE);
		bad = len > 0;
		break;
	case PTR_PROT_NONE:
		ptr = (uintptr_t)m->none + rng_below(&st->rng, PAGE);
		bad = len > 0;
		break;
	case PTR_READ_ONLY:
		if (len > RO_PAGES * PAGE) {
			kind = PTR_STRADDLE_NONE;
			goto straddle;
		}
		/*
		 * At the start of the pages or flush with their end (the next
		 * page is unmapped), never over another read-only placement of
		 * this op: an overlap would change bytes the op already placed.
		 */
		if (len > m->ro_high - m->ro_low ||
		    ((m->ro_high - len) & ~7UL) < m->ro_low) {
			kind = PTR_STRADDLE_NONE;
			goto straddle;
		}
		if (rng_below(&st->rng, 2)) {
			p = m->ro + m->ro_low;
			m->ro_low = (m->ro_low + len + 7) & ~7UL;
		} else {
			m->ro_high = (m->ro_high - len) & ~7UL;
			p = m->ro + m->ro_high;
		}
		mprotect(m->ro, RO_PAGES * PAGE, PROT_READ | PROT_WRITE);
		if (content)
			memcpy(p, content, len);
		else
			memset(p, 0, len);
		mprotect(m->ro, RO_PAGES * PAGE, PROT_READ);
		ptr = (uintptr_t)p;
		bad = writes && len > 0;
		break;
	case PTR_KERNEL:
		ptr = kernel_ptrs[rng_below(&st->rng, ARRAY_SIZE(kernel_ptrs))];
		bad = len > 0;
		break;
	case PTR_STRADDLE_HOLE:
	case PTR_STRADDLE_NONE:
straddle: {
		/* The first bytes readable, the last 1..64 in the page after. */
		__u64 over = len ? 1 + rng_below(&st->rng, len < 64 ? len : 64) : 0;
		unsigned char *end = kind == PTR_STRADDLE_HOLE ? m->hole : m->none;
		__u64 mapped = len - over;

		/* Longer than what lies before the boundary: the kernel faults earlier. */
		if (mapped > (kind == PTR_STRADDLE_NONE ? PAGE : profile->straddle_bytes_max))
			mapped = kind == PTR_STRADDLE_NONE ? PAGE : profile->straddle_bytes_max;
		p = end - mapped;
		if (content)
			memmove(p, content, mapped);
		else
			memset(p, 0, mapped);
		ptr = (uintptr_t)p;
		bad = len > 0;
		break;
	}
	default:
		abort();
	}
	if (bad)
		st->bad_ptr = true;
	describe(st, " %s=%s:%#llx+%llu", what, ptr_kind_names[kind], (unsigned long long)ptr,
		 (unsigned long long)len);
	return ptr;
}

/* ---- edge values ------------------------------------------------------------ */

static const __u32 generic_edges[] = {
	0, 1, 2, 3, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0x1001, 0xffff, 0x10000,
	0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
};

/* A field's edge: mostly its own, sometimes a generic one, sometimes anything. */
static __u32 edge_u32(struct stream *st, const __u32 *edges, size_t n)
{
	__u32 r = rng_below(&st->rng, 20);

	if (r < 14 && n)
		return edges[rng_below(&st->rng, n)];
	if (r < 18)
		return generic_edges[rng_below(&st->rng, ARRAY_SIZE(generic_edges))];
	return (__u32)rng_next(&st->rng);
}

#define EDGE(st, ...) edge_u32(st, (const __u32[]){ __VA_ARGS__ }, \
			       sizeof((const __u32[]){ __VA_ARGS__ }) / sizeof(__u32))

static const __u32 allowed_msg_flags[] = { MSG_DONTWAIT, MSG_DONTROUTE, MSG_CONFIRM, MSG_NOSIGNAL };

static __u32 fuzz_msg_flags(struct stream *st)
{
	__u32 flags = 0;

	for (size_t i = 0; i < ARRAY_SIZE(allowed_msg_flags); i++)
		if (rng_chance(&st->rng, i == 0 ? 600 : 150))
			flags |= allowed_msg_flags[i];
	if (rng_chance(&st->rng, 40))
		flags |= EDGE(st, MSG_MORE, MSG_OOB, MSG_EOR, MSG_ZEROCOPY, MSG_SPLICE_PAGES,
			      MSG_FASTOPEN, MSG_CMSG_CLOEXEC, 0x80000000, 0xffffffff, MSG_PEEK);
	return flags;
}


/*
 * Mostly small (what media sends, and cheap under emulation), sometimes an
 * edge, now and then anything up to the largest datagram.
 */
static __u32 fuzz_payload_len(struct stream *st)
{
	__u32 r = rng_below(&st->rng, 100);

	if (r < 45)
		return rng_below(&st->rng, 64);
	if (r < 80)
		return rng_below(&st->rng, 1500);
	if (r < 87)
		return 1500 + rng_below(&st->rng, 8000);
	if (r < 90)
		return rng_below(&st->rng, SENDGROUP_MAX_DATAGRAM + 1);
	return EDGE(st, 0, 1, 1400, 1472, 4095, 4096, 4097, 8192, 61410, 65507, 65508, 65535,
		    65536);
}

static __u32 fuzz_private_len(struct stream *st, bool group_member)
{
	if (rng_chance(&st->rng, 500))
		return 0;
	if (rng_chance(&st->rng, 850))
		return rng_below(&st->rng, group_member ? 64 : 200);
	return EDGE(st, 1, 511, 512, 1023, 1024, 1025, 4095, 4096, 4097, 61410, 65507, 65535,
		    65536);
}

/* A count the kernel accepts and that sends 32 or more datagrams per member or payload. */
static bool bulk_count(__u32 count, __u32 max)
{
	return count >= 32 && count <= max;
}

/* ---- recipients and members ---------------------------------------------- */

static void fuzz_recipient(struct stream *st, struct sendgroup_recipient *r, int family,
			   bool group_member, const char *what)
{
	const struct dest *d;
	int want = family;

	memset(r, 0, sizeof(*r));
	if (rng_chance(&st->rng, 100))
		want = want == AF_INET ? AF_INET6 : AF_INET;
	do
		d = &dests[rng_below(&st->rng, ARRAY_SIZE(dests))];
	while (d->family != want);
	r->family = d->family;
	inet_pton(d->family, d->addr, r->addr);
	if (d->with_scope)
		r->scope_id = rng_chance(&st->rng, 800) ? world.dummy_ifindex : world.lo_ifindex;
	r->port = world.ports[d->family == AF_INET6][rng_below(&st->rng, RECEIVERS)];

	if (rng_chance(&st->rng, 60))
		r->family = EDGE(st, 0, AF_UNIX, AF_INET, AF_INET6, AF_PACKET, 0xffff, AF_MAX);
	if (rng_chance(&st->rng, 60))
		r->port = EDGE(st, 0, 1, 9, 65535, 65536, 0x10000 | r->port);
	if (rng_chance(&st->rng, 30))
		r->addr[4 + rng_below(&st->rng, 12)] = (unsigned char)rng_next(&st->rng);
	if (rng_chance(&st->rng, 30))
		r->scope_id = EDGE(st, 0, 1, 2, 9999, 0xffffffff);
	if (rng_chance(&st->rng, 30))
		r->flowinfo = EDGE(st, htonl(1), htonl(0xfffff), htonl(0x0ff00000), 0xffffffff);

	r->prepend_len = fuzz_private_len(st, group_member);
	r->append_len = fuzz_private_len(st, group_member);
	describe(st, " %s{fam=%u port=%u scope=%u flow=%#x", what, r->family, r->port,
		 r->scope_id, r->flowinfo);
	r->prepend = place(st, "prepend", pattern + 7, r->prepend_len < sizeof(pattern) - 7 ?
			   r->prepend_len : sizeof(pattern) - 7, false, 30);
	r->append = place(st, "append", pattern + 13, r->append_len < sizeof(pattern) - 13 ?
			  r->append_len : sizeof(pattern) - 13, false, 30);
	describe(st, "}");
}

/* ---- picking sockets and groups ------------------------------------------- */

static int family_of_kind(enum sock_kind kind)
{
	return kind >= SK_UDP6_UNBOUND && kind < SK_UDP_KINDS ? AF_INET6 :
	       kind == SK_TCP6 ? AF_INET6 : AF_INET;
}

/* A socket fd for an args.fd field: a slot's, or an fd that is not one. */
static __u32 fuzz_sock_fd(struct stream *st, int *family, unsigned int *gen, int *slot_out)
{
	unsigned int slot = rng_below(&st->rng, SOCK_SLOTS);
	__u32 fd;

	*slot_out = -1;
	*family = AF_INET;
	if (rng_chance(&st->rng, 40)) {
		fd = EDGE(st, 0xffffffff, 0, 1, 2, 4999, 0x7fffffff, (__u32)st->dev);
		describe(st, " fd=%d", (int)fd);
		return fd;
	}
	world_lock();
	fd = world.socks[slot].fd;
	*family = family_of_kind(world.socks[slot].kind);
	*gen = world.socks[slot].gen;
	describe(st, " fd=%d(%s)", (int)fd, sock_kind_names[world.socks[slot].kind]);
	world_unlock();
	*slot_out = slot;
	return fd;
}

static bool sock_slot_changed(int slot, unsigned int gen)
{
	bool changed;

	if (slot < 0)
		return false;
	world_lock();
	changed = world.socks[slot].gen != gen;
	world_unlock();
	return changed;
}

/* A copy of a group slot; fd -1 when empty. */
static struct group_slot pick_group(struct stream *st, unsigned int *slot)
{
	struct group_slot g;

	*slot = rng_below(&st->rng, GROUP_SLOTS);
	world_lock();
	g = world.groups[*slot];
	world_unlock();
	return g;
}

static bool group_slot_changed(unsigned int slot, unsigned int gen)
{
	bool changed;

	world_lock();
	changed = world.groups[slot].gen != gen;
	world_unlock();
	return changed;
}

static void untrack_groups(void)
{
	world_lock();
	for (unsigned int i = 0; i < GROUP_SLOTS; i++)
		world.groups[i].tracked = false;
	world_unlock();
}

/* ---- the ioctl choke point ---------------------------------------------------- */

struct call {
	const char *name;
	int fd;
	unsigned long cmd;
	void *arg;
	const int *errnos;
	bool fd_stale;		/* the fd was closed or replaced during the call */
	long ret;		/* >= 0, or -errno */
};

#define CALL(call_name, call_fd, call_cmd, call_arg, call_errnos) \
	((struct call){ .name = (call_name), .fd = (call_fd), .cmd = (call_cmd), \
			.arg = (call_arg), .errnos = (call_errnos) })

static long do_ioctl(struct stream *st, struct call *c)
{
	long ret;

	/* A child inherits the fd table of a moment when other threads were changing it. */
	if (st->in_child && c->fd != st->dev)
		c->fd_stale = true;
	if (opt.trace)
		fprintf(stderr, "stream %u op %lu: %s fd=%d%s\n", st->id, st->op, c->name, c->fd,
			st->desc);
	ret = ioctl(c->fd, c->cmd, c->arg);
	c->ret = ret < 0 ? -errno : ret;
	atomic_fetch_add_explicit(&run->ioctls, 1, memory_order_relaxed);
	return c->ret;
}

/* The return value alone: a documented errno, EFAULT only with a bad pointer. */
static bool check_ret(struct stream *st, struct call *c)
{
	int err = c->ret < 0 ? (int)-c->ret : 0;

	if (!err)
		return true;
	if (c->fd_stale) {
		if (!errno_in(err, any_uapi_errnos))
			fail(st, "%s on a closed/replaced fd returned %s", c->name, errno_name(err));
		return false;
	}
	if (!errno_in(err, c->errnos))
		fail(st, "%s returned undocumented %s", c->name, errno_name(err));
	else if (err == EFAULT && !st->bad_ptr)
		fail(st, "%s returned EFAULT though every pointer was usable", c->name);
	return false;
}

/* One results[] slot or failure record. */
static void check_datagram_error(struct stream *st, const char *what, int error, bool may_fault)
{
	if (error >= 0) {
		fail(st, "%s holds a non-negative error %d", what, error);
		return;
	}
	if (-error == EFAULT && may_fault)
		return;
	if (!errno_in(-error, datagram_errnos))
		fail(st, "%s holds %s, not an errno sendmsg() returns", what, errno_name(-error));
}

/* ---- the module's counters (stream 0 alone) ---------------------------------- */

static void expect_resync(struct stream *st)
{
	st->expect_sent = read_stat("recipients_sent");
	st->expect_valid = st->alone && !st->in_child && st->expect_sent != ~0ULL;
}

static void expect_sent(struct stream *st, long sent)
{
	st->expect_sent += sent;
}

/* Every datagram counted must have been reported by a call that succeeded. */
static void check_sent_counter(struct stream *st, const char *when)
{
	unsigned long long counted;

	if (!st->expect_valid)
		return;
	counted = read_stat("recipients_sent");
	if (counted != st->expect_sent) {
		describe(st, " [recipients_sent %llu, calls reported %llu]", counted,
			 (unsigned long long)st->expect_sent);
		fail(st, "datagrams were counted that no successful call reported (%s)", when);
		st->expect_sent = counted;
	}
}

static __u64 place_sized(struct stream *st, const char *what, const void *buf, size_t len,
			 __u32 size, bool writes);

/* ---- SENDGROUP_IOC_INFO --------------------------------------------------------- */

static void op_info(struct stream *st)
{
	__u32 size = rng_chance(&st->rng, 700) ? SENDGROUP_INFO_SIZE_VER0 :
		     EDGE(st, 0, 4, 31, 33, 40, 64, 4096, 4097, 65536);
	size_t len = size < 4 ? 4 : size > LARGE_STRUCT ? LARGE_STRUCT : size;
	unsigned char *content = scratch_alloc(st, len);
	struct call c = CALL("INFO", st->dev, SENDGROUP_IOC_INFO, NULL, info_errnos);
	__u64 ptr;

	memcpy(content, &size, sizeof(size));
	for (size_t i = 4; i < len; i++)
		content[i] = 0xa5;
	describe(st, " size=%u", size);
	ptr = place_sized(st, "info", content, len, size, true);
	c.arg = (void *)(uintptr_t)ptr;
	do_ioctl(st, &c);
	if (!check_ret(st, &c))
		return;
	if (!st->bad_ptr) {
		const struct sendgroup_info *info = (const void *)(uintptr_t)ptr;

		if (info->abi_version < 2 || info->max_recipients != SENDGROUP_MAX_RECIPIENTS ||
		    info->max_datagram != SENDGROUP_MAX_DATAGRAM || info->size < SENDGROUP_INFO_SIZE_VER0)
			fail(st, "INFO returned unexpected contents");
		if (size > sizeof(*info) &&
		    memchr_nonzero((const unsigned char *)info + sizeof(*info), size - sizeof(*info)))
			fail(st, "INFO left the tail of a larger struct non-zero");
	}
}

/* ---- SENDGROUP_IOC_SEND ----------------------------------------------------------- */

/*
 * Build a struct of @size bytes whose first @known are @args: a larger size
 * gets a zero tail (or, sometimes, a non-zero byte in it: E2BIG).
 */
static void *sized_struct(struct stream *st, const void *args, size_t known, __u32 size,
			  size_t *len)
{
	size_t n = size < known ? known : size > LARGE_STRUCT ? LARGE_STRUCT : size;
	unsigned char *buf = scratch_alloc(st, n);

	memcpy(buf, args, known);
	if (size > known && rng_chance(&st->rng, 300))
		buf[known + rng_below(&st->rng, (size < n ? size : n) - known)] = 1;
	*len = n;
	return buf;
}

static __u32 fuzz_struct_size(struct stream *st, __u32 ver0)
{
	if (rng_chance(&st->rng, 900))
		return ver0;
	return EDGE(st, 0, 1, 4, ver0 - 8, ver0 - 1, ver0 + 1, ver0 + 8, 4096, 4097,
		    1 << 20, 0xffffffff);
}

/*
 * Hand @len bytes at @buf to the kernel as a struct of @size bytes. A size
 * beyond LARGE_STRUCT puts the struct right before the unmapped page: the
 * kernel's tail check or clear faults there instead of walking megabytes.
 */
static __u64 place_sized(struct stream *st, const char *what, const void *buf, size_t len,
			 __u32 size, bool writes)
{
	size_t n = len < LARGE_STRUCT ? len : LARGE_STRUCT;
	unsigned char *p;

	if (size <= LARGE_STRUCT)
		return place(st, what, buf, size < 4 ? 4 : len, writes, 40);
	p = st->mem.hole - n;
	memmove(p, buf, n);
	st->bad_ptr = true;
	describe(st, " %s=before-unmapped:%p+%zu", what, (void *)p, n);
	return (uintptr_t)p;
}

/* Hand @args (known bytes) to the kernel as a struct of @size bytes. */
static void *place_args(struct stream *st, const void *args, size_t known, __u32 size, bool writes)
{
	size_t len;
	void *buf = sized_struct(st, args, known, size, &len);

	describe(st, " size=%u", size);
	return (void *)(uintptr_t)place_sized(st, "args", buf, len, size, writes);
}

static void op_send(struct stream *st)
{
	struct sendgroup_send_args args = { 0 };
	struct call c = CALL("SEND", st->dev, SENDGROUP_IOC_SEND, NULL, send_errnos);
	struct sendgroup_recipient r;
	bool recipient_bad[SENDGROUP_MAX_RECIPIENTS];
	unsigned char *entries;
	__s32 *results = NULL;
	unsigned int gen = 0, count, built;
	int family, slot;
	size_t stride;
	__u32 size;

	args.fd = fuzz_sock_fd(st, &family, &gen, &slot);
	args.flags = rng_chance(&st->rng, 20) ? EDGE(st, 1, 2, 0x80000000, 0xffffffff) : 0;
	args.msg_flags = fuzz_msg_flags(st);
	args.shared_len = fuzz_payload_len(st);
	args.recipient_size = rng_chance(&st->rng, 950) ? sizeof(r) :
			      EDGE(st, 0, 8, 55, 57, 64, 4096, 4097, 0xffffffff);
	args.recipient_count = rng_chance(&st->rng, 950) ? 1 + rng_below(&st->rng, 8) :
			       EDGE(st, 0, 64, 1023, 1024, 1025, 65536, 0xffffffff);
	if (bulk_count(args.recipient_count, SENDGROUP_MAX_RECIPIENTS) &&
	    !rng_chance(&st->rng, profile->bulk_edge_permille))
		args.recipient_count = 1 + rng_below(&st->rng, 8);
	args.reserved = rng_chance(&st->rng, 20) ? EDGE(st, 1, 0x80000000, 0xffffffff) : 0;
	describe(st, " flags=%#x msg_flags=%#x shared_len=%u recipient_size=%u count=%u reserved=%u",
		 args.flags, args.msg_flags, args.shared_len, args.recipient_size,
		 args.recipient_count, args.reserved);
	args.shared = place(st, "shared", pattern,
			    args.shared_len < sizeof(pattern) ? args.shared_len : sizeof(pattern),
			    false, 30);

	/* Entries: as many as fit; a count beyond that has its end in the hole. */
	count = args.recipient_count;
	built = count <= SENDGROUP_MAX_RECIPIENTS ? count : 0;
	if (args.recipient_size < sizeof(r))
		built = built < 4 ? built : 4;
	if (args.recipient_size > PAGE ||
	    (size_t)built * args.recipient_size > MAX_BUILT_BYTES)
		built = 0;
	stride = args.recipient_size > sizeof(r) && args.recipient_size <= PAGE ?
		 args.recipient_size : sizeof(r);
	entries = scratch_alloc(st, (size_t)(built ? built : 1) * stride);
	for (unsigned int i = 0; i < built; i++) {
		bool before = st->bad_ptr;

		st->bad_ptr = false;
		if (i < 8) {
			fuzz_recipient(st, &r, family, false, i < 4 ? "r" : "");
			recipient_bad[i] = st->bad_ptr;
		} else {
			/* Beyond 8: the first ones again, to other receivers (scratch stays small). */
			memcpy(&r, entries + (i % 8) * stride, sizeof(r));
			recipient_bad[i] = recipient_bad[i % 8];
			if (rng_chance(&st->rng, 500))
				r.port = world.ports[r.family == AF_INET6][rng_below(&st->rng, RECEIVERS)];
		}
		st->bad_ptr = before;
		memcpy(entries + i * stride, &r, sizeof(r));
		if (stride > sizeof(r) && rng_chance(&st->rng, 100))
			entries[i * stride + sizeof(r) + rng_below(&st->rng, stride - sizeof(r))] = 1;
	}
	if (built == count)
		args.recipients = place(st, "recipients", entries,
					(__u64)count * args.recipient_size, false, 30);
	else
		args.recipients = place(st, "recipients", NULL, (__u64)count * args.recipient_size,
					false, 1000);
	if (rng_chance(&st->rng, 700)) {
		size_t n = (size_t)(count <= SENDGROUP_MAX_RECIPIENTS ? count : 16) * sizeof(__s32);
		bool before = st->bad_ptr;

		st->bad_ptr = false;
		args.results = place(st, "results", NULL, n, true, 60);
		if (count > SENDGROUP_MAX_RECIPIENTS)
			st->bad_ptr = true;
		if (!st->bad_ptr)
			results = (__s32 *)(uintptr_t)args.results;
		st->bad_ptr |= before;
	}

	size = fuzz_struct_size(st, SENDGROUP_SEND_ARGS_SIZE_VER0);
	args.size = size;
	c.arg = place_args(st, &args, sizeof(args), size, false);
	/* A recipient's bad private bytes are its own slot's EFAULT, never the call's. */
	do_ioctl(st, &c);
	c.fd_stale = false;
	if (c.ret < 0 && sock_slot_changed(slot, gen))
		c.fd_stale = true;
	if (c.ret == -EINTR || c.ret == -EFAULT)
		check_sent_counter(st, "after a SEND that failed");
	if (!check_ret(st, &c))
		return;
	expect_sent(st, c.ret);
	if (c.ret > count)
		fail(st, "SEND reported more sent than recipients");
	if (results && built == count) {
		unsigned int zeros = 0;

		for (unsigned int i = 0; i < count; i++) {
			if (!results[i])
				zeros++;
			else
				check_datagram_error(st, "SEND results[]", results[i], recipient_bad[i]);
		}
		if (zeros != c.ret)
			fail(st, "SEND's return and the zeros in results[] differ");
	}
}

/* ---- SENDGROUP_IOC_GROUP_CREATE ------------------------------------------------- */

static void group_slot_install(unsigned int slot, int fd, int family, bool tracked)
{
	int old;

	world_lock();
	old = world.groups[slot].fd;
	world.groups[slot] = (struct group_slot){
		.fd = fd, .gen = world.groups[slot].gen + 1, .family = family,
		.tracked = tracked,
	};
	world_unlock();
	if (old >= 0)
		close(old);
}

static void create_in_slot(struct stream *st, unsigned int slot)
{
	struct sendgroup_group_create_args args = { 0 };
	struct call c = CALL("GROUP_CREATE", st->dev, SENDGROUP_IOC_GROUP_CREATE, NULL, create_errnos);
	unsigned int gen = 0;
	int family, sock_slot;
	__u32 size;

	args.fd = fuzz_sock_fd(st, &family, &gen, &sock_slot);
	args.flags = rng_chance(&st->rng, 30) ? EDGE(st, 1, 0x80000000, 0xffffffff) : 0;
	args.reserved = rng_chance(&st->rng, 30) ? EDGE(st, 1, 0x80000000, 0xffffffff) : 0;
	size = fuzz_struct_size(st, SENDGROUP_GROUP_CREATE_ARGS_SIZE_VER0);
	describe(st, " flags=%#x reserved=%#x", args.flags, args.reserved);
	args.size = size;
	c.arg = place_args(st, &args, sizeof(args), size, false);
	do_ioctl(st, &c);
	if (c.ret < 0 && sock_slot_changed(sock_slot, gen))
		c.fd_stale = true;
	if (!check_ret(st, &c))
		return;
	if (!(fcntl(c.ret, F_GETFD) & FD_CLOEXEC))
		fail(st, "GROUP_CREATE returned an fd without FD_CLOEXEC");
	group_slot_install(slot, c.ret, family, st->alone);
}

static void op_create(struct stream *st)
{
	create_in_slot(st, rng_below(&st->rng, GROUP_SLOTS));
}

/* A group ioctl on an empty slot creates the group first. */
static bool group_missing(struct stream *st, const struct group_slot *g, unsigned int slot)
{
	if (g->fd >= 0)
		return false;
	st->op_name = "GROUP_CREATE";
	create_in_slot(st, slot);
	return true;
}

/* ---- ADD / UPDATE / REMOVE ------------------------------------------------------ */

static __u64 fuzz_member_id(struct stream *st, const struct group_slot *g, bool existing)
{
	if (existing && g->small_ids && rng_chance(&st->rng, 850)) {
		for (int tries = 0; tries < 64; tries++) {
			__u64 id = rng_below(&st->rng, SMALL_IDS);

			if (g->small_ids & (1ULL << id))
				return id;
		}
	}
	if (rng_chance(&st->rng, 950))
		return rng_below(&st->rng, SMALL_IDS);
	return (__u64[]){ 1ULL << 32, ~0ULL, 1ULL << 63, 0xffffffff, 64 }[rng_below(&st->rng, 5)];
}

/* A group's model after a successful ADD or REMOVE of @ids. */
static void model_apply(unsigned int slot, unsigned int gen, const __u64 *ids, unsigned int count,
			bool add)
{
	world_lock();
	if (world.groups[slot].gen == gen) {
		struct group_slot *g = &world.groups[slot];

		g->members += add ? count : -count;
		for (unsigned int i = 0; i < count; i++)
			if (ids[i] < SMALL_IDS) {
				if (add)
					g->small_ids |= 1ULL << ids[i];
				else
					g->small_ids &= ~(1ULL << ids[i]);
			}
	}
	world_unlock();
}

static void op_members(struct stream *st, unsigned long cmd)
{
	bool add = cmd == SENDGROUP_GROUP_IOC_ADD;
	struct call c = CALL(add ? "ADD" : "UPDATE", -1, cmd, NULL, add ? add_errnos : update_errnos);
	struct sendgroup_members_args args = { 0 };
	unsigned int slot, count, built, stride;
	struct group_slot g = pick_group(st, &slot);
	unsigned char *entries;
	__u64 *ids;
	__u32 size;
	bool large;

	if (group_missing(st, &g, slot))
		return;
	c.fd = g.fd;
	large = rng_below(&st->rng, 10000) < profile->large_members_per_10k;
	args.flags = rng_chance(&st->rng, 20) ? EDGE(st, 1, 0x80000000, 0xffffffff) : 0;
	args.count = large ? EDGE(st, 100, 300, 1000, 1000, 4096) :
		     rng_chance(&st->rng, 960) ? 1 + rng_below(&st->rng, 6) :
		     EDGE(st, 0, 65536, 65537, 0xffffffff);
	/* Generic edges (0xfff, 0x1000) are bulk calls too: the profile bounds them. */
	if (args.count > profile->large_members_max && args.count <= 4096)
		args.count = profile->large_members_max;
	args.member_size = rng_chance(&st->rng, 950) ? sizeof(struct sendgroup_member) :
			   EDGE(st, 0, 8, 56, 63, 65, 72, 4096, 4097, 0xffffffff);
	count = args.count;
	stride = args.member_size > sizeof(struct sendgroup_member) && args.member_size <= PAGE ?
		 args.member_size : sizeof(struct sendgroup_member);
	built = count <= 4096 && args.member_size <= PAGE &&
		(size_t)count * stride <= MAX_BUILT_BYTES / 4 ? count : 0;
	describe(st, " group=%d flags=%#x count=%u member_size=%u", g.fd, args.flags, count,
		 args.member_size);
	entries = scratch_alloc(st, (size_t)(built ? built : 1) * stride);
	ids = scratch_alloc(st, (size_t)(built ? built : 1) * sizeof(*ids));
	for (unsigned int i = 0; i < built; i++) {
		struct sendgroup_member m = { 0 };

		if (large)
			m.id = SMALL_IDS + i + ((__u64)rng_below(&st->rng, 4) << 20);
		else
			m.id = fuzz_member_id(st, &g, !add);
		/* Beyond 8: the first ones' destinations and bytes again (scratch stays small). */
		if (i < 8)
			fuzz_recipient(st, &m.recipient, g.family, true, "m");
		else
			memcpy(&m.recipient, entries + (size_t)(i % 8) * stride +
			       offsetof(struct sendgroup_member, recipient), sizeof(m.recipient));
		describe(st, "#%llu", (unsigned long long)m.id);
		ids[i] = m.id;
		memcpy(entries + (size_t)i * stride, &m, sizeof(m));
		if (stride > sizeof(m) && rng_chance(&st->rng, 100))
			entries[(size_t)i * stride + sizeof(m) + rng_below(&st->rng, stride - sizeof(m))] = 1;
	}
	args.members = place(st, "members", built == count ? entries : NULL,
			     (__u64)count * args.member_size, false, built == count ? 30 : 1000);
	size = fuzz_struct_size(st, SENDGROUP_MEMBERS_ARGS_SIZE_VER0);
	args.size = size;
	c.arg = place_args(st, &args, sizeof(args), size, false);
	do_ioctl(st, &c);
	if (group_slot_changed(slot, g.gen) || g.fd < 0)
		c.fd_stale = true;
	if (!check_ret(st, &c))
		return;
	if (c.ret != 0)
		fail(st, "%s returned a positive value, not 0", c.name);
	if (add && !c.fd_stale)
		model_apply(slot, g.gen, ids, count, true);
}

static void op_remove(struct stream *st)
{
	struct call c = CALL("REMOVE", -1, SENDGROUP_GROUP_IOC_REMOVE, NULL, remove_errnos);
	struct sendgroup_members_args args = { 0 };
	unsigned int slot, count, built;
	struct group_slot g = pick_group(st, &slot);
	__u64 *ids;
	__u32 size;

	if (group_missing(st, &g, slot))
		return;
	c.fd = g.fd;
	args.flags = rng_chance(&st->rng, 20) ? EDGE(st, 1, 0x80000000, 0xffffffff) : 0;
	args.count = rng_chance(&st->rng, 960) ? 1 + rng_below(&st->rng, 4) :
		     EDGE(st, 0, 64, 65536, 65537, 0xffffffff);
	args.member_size = rng_chance(&st->rng, 960) ? sizeof(__u64) :
			   EDGE(st, 0, 4, 7, 9, 16, 64, 0xffffffff);
	count = args.count;
	built = count <= 65536 ? count : 0;
	ids = scratch_alloc(st, (size_t)(built ? built : 1) * sizeof(*ids));
	describe(st, " group=%d flags=%#x count=%u member_size=%u ids", g.fd, args.flags, count,
		 args.member_size);
	for (unsigned int i = 0; i < built; i++) {
		ids[i] = i < 64 ? fuzz_member_id(st, &g, true) : SMALL_IDS + i;
		if (i < 8)
			describe(st, "%s%llu", i ? "," : "=", (unsigned long long)ids[i]);
	}
	args.members = place(st, "ids", built == count ? ids : NULL, (__u64)count * sizeof(__u64),
			     false, built == count ? 30 : 1000);
	size = fuzz_struct_size(st, SENDGROUP_MEMBERS_ARGS_SIZE_VER0);
	args.size = size;
	c.arg = place_args(st, &args, sizeof(args), size, false);
	do_ioctl(st, &c);
	if (group_slot_changed(slot, g.gen) || g.fd < 0)
		c.fd_stale = true;
	if (!check_ret(st, &c))
		return;
	if (c.ret != 0)
		fail(st, "REMOVE returned a positive value, not 0");
	if (!c.fd_stale)
		model_apply(slot, g.gen, ids, count, false);
}

/* ---- LIST ------------------------------------------------------------------------ */

static void op_list(struct stream *st)
{
	struct call c = CALL("LIST", -1, SENDGROUP_GROUP_IOC_LIST, NULL, list_errnos);
	struct sendgroup_list_args args = { 0 }, *out;
	unsigned int slot;
	struct group_slot g = pick_group(st, &slot);
	size_t ids_len;
	__u64 *ids;
	__u32 size;

	if (group_missing(st, &g, slot))
		return;
	c.fd = g.fd;
	args.capacity = rng_chance(&st->rng, 800) ? rng_below(&st->rng, 80) :
			EDGE(st, 0, 1, 65536, 65537, 0xffffffff);
	args.reserved = rng_chance(&st->rng, 20) ? EDGE(st, 1, 0xffffffff) : 0;
	args.count = 0xcccccccc;
	describe(st, " group=%d capacity=%u reserved=%u", g.fd, args.capacity, args.reserved);
	ids_len = (size_t)(args.capacity < 65536 ? args.capacity : 65536) * sizeof(__u64);
	args.ids = place(st, "ids", NULL, ids_len, true, 60);
	if (args.capacity > 65536)
		st->bad_ptr = true;	/* more than the buffer: only a small group fits */
	size = fuzz_struct_size(st, SENDGROUP_LIST_ARGS_SIZE_VER0);
	args.size = size;
	out = place_args(st, &args, sizeof(args), size, true);
	c.arg = out;
	do_ioctl(st, &c);
	if (group_slot_changed(slot, g.gen) || g.fd < 0)
		c.fd_stale = true;
	if (!check_ret(st, &c))
		return;
	if (c.ret > args.capacity)
		fail(st, "LIST wrote more ids than its capacity");
	if (st->bad_ptr)
		return;
	ids = (__u64 *)(uintptr_t)args.ids;
	for (long i = 1; i < c.ret; i++)
		if (ids[i] <= ids[i - 1])
			fail(st, "LIST ids not ascending");
	if (out->count < c.ret)
		fail(st, "LIST count below the number of ids written");
	if (st->alone && g.tracked && !c.fd_stale) {
		if (out->count != g.members)
			fail(st, "LIST count differs from the members added and not removed");
	}
}

/* ---- group SEND ------------------------------------------------------------------ */

/* Check a group SEND's answer; @members < 0 when the count is not known. */
static void check_group_send(struct stream *st, struct call *c,
			     const struct sendgroup_group_send_args *args, const void *failures,
			     long members)
{
	const struct sendgroup_group_send_args *out = c->arg;
	unsigned int records;

	if (c->ret == -EINTR || c->ret == -EFAULT)
		check_sent_counter(st, "after a group SEND that failed");
	if (!check_ret(st, c))
		return;
	expect_sent(st, c->ret);
	if (st->bad_ptr)
		return;	/* the written count or records may be unreadable */
	if (members >= 0 && (__u64)c->ret + out->failure_count != (__u64)members * args->payload_count)
		fail(st, "group SEND: sent + failure_count != members x payloads");
	if (!failures)
		return;
	records = out->failure_count < args->failure_capacity ? out->failure_count :
		  args->failure_capacity;
	for (unsigned int i = 0; i < records && i < 65536; i++) {
		const struct sendgroup_failure *f = (const struct sendgroup_failure *)failures + i;

		if (f->payload_index >= args->payload_count)
			fail(st, "group SEND failure record with payload_index beyond payload_count");
		check_datagram_error(st, "group SEND failure record", f->error, false);
	}
}

static void op_group_send(struct stream *st)
{
	struct call c = CALL("GROUP_SEND", -1, SENDGROUP_GROUP_IOC_SEND, NULL, group_send_errnos);
	struct sendgroup_group_send_args args = { 0 };
	struct sendgroup_payload *payloads;
	unsigned int slot, count, built;
	struct group_slot g = pick_group(st, &slot);
	void *failures = NULL;
	__u32 size;

	if (group_missing(st, &g, slot))
		return;
	c.fd = g.fd;
	args.flags = rng_chance(&st->rng, 20) ? EDGE(st, 1, 0x80000000, 0xffffffff) : 0;
	args.msg_flags = fuzz_msg_flags(st);
	args.payload_count = rng_chance(&st->rng, 950) ? 1 + rng_below(&st->rng, 4) :
			     EDGE(st, 0, 5, 63, 64, 65, 0xffffffff);
	if (bulk_count(args.payload_count, SENDGROUP_MAX_PAYLOADS) &&
	    !rng_chance(&st->rng, profile->bulk_edge_permille))
		args.payload_count = 1 + rng_below(&st->rng, 4);
	args.failure_capacity = rng_chance(&st->rng, 800) ? rng_below(&st->rng, 20) :
				EDGE(st, 0, 1, 4096, 65536, 0xffffffff);
	args.failure_count = 0xcccccccc;
	count = args.payload_count;
	built = count <= SENDGROUP_MAX_PAYLOADS + 1 ? count : 0;
	describe(st, " group=%d flags=%#x msg_flags=%#x payload_count=%u capacity=%u", g.fd,
		 args.flags, args.msg_flags, count, args.failure_capacity);
	payloads = scratch_alloc(st, (size_t)(built ? built : 1) * sizeof(*payloads));
	for (unsigned int i = 0; i < built; i++) {
		if (i >= 4) {	/* the first four again: scratch stays small */
			payloads[i] = payloads[i % 4];
			continue;
		}
		payloads[i].len = i < 2 || rng_chance(&st->rng, 300) ? fuzz_payload_len(st) :
				  rng_below(&st->rng, 200);
		if (rng_chance(&st->rng, 10))
			payloads[i].reserved = EDGE(st, 1, 0xffffffff);
		describe(st, " p%u{len=%u reserved=%u", i, payloads[i].len, payloads[i].reserved);
		payloads[i].data = place(st, "data", pattern + i,
					 payloads[i].len < sizeof(pattern) - i ? payloads[i].len :
					 sizeof(pattern) - i, false, 15);
		describe(st, "}");
	}
	args.payloads = place(st, "payloads", built == count ? payloads : NULL,
			      (__u64)count * sizeof(*payloads), false, built == count ? 30 : 1000);
	if (rng_chance(&st->rng, 850)) {
		size_t n = (size_t)(args.failure_capacity < 65536 ? args.failure_capacity : 65536) *
			   sizeof(struct sendgroup_failure);

		args.failures = place(st, "failures", NULL, n, true, 60);
		if (args.failure_capacity > 65536)
			st->bad_ptr = true;
		failures = (void *)(uintptr_t)args.failures;
	} else {
		describe(st, " failures=0");
	}
	size = fuzz_struct_size(st, SENDGROUP_GROUP_SEND_ARGS_SIZE_VER0);
	args.size = size;
	c.arg = place_args(st, &args, sizeof(args), size, true);
	do_ioctl(st, &c);
	if (group_slot_changed(slot, g.gen) || g.fd < 0)
		c.fd_stale = true;
	check_group_send(st, &c, &args, failures,
			 st->alone && g.tracked && !c.fd_stale ? (long)g.members : -1);
}

/* ---- commands the fds do not have --------------------------------------------------- */

static void op_unknown_cmd(struct stream *st)
{
	static const unsigned long cmds[] = {
		SENDGROUP_IOC_SEND, SENDGROUP_IOC_INFO, SENDGROUP_IOC_GROUP_CREATE,
		SENDGROUP_GROUP_IOC_ADD, SENDGROUP_GROUP_IOC_UPDATE, SENDGROUP_GROUP_IOC_REMOVE,
		SENDGROUP_GROUP_IOC_LIST, SENDGROUP_GROUP_IOC_SEND,
	};
	struct call c = CALL("unknown command", st->dev, 0, NULL, unknown_cmd_errnos);
	unsigned long cmd = cmds[rng_below(&st->rng, ARRAY_SIZE(cmds))];
	unsigned int slot;
	struct group_slot g = pick_group(st, &slot);
	bool on_group = rng_chance(&st->rng, 500);
	void *arg = scratch_alloc(st, PAGE);

	/* A command of the other fd, or one with another size, direction or number. */
	switch (rng_below(&st->rng, 4)) {
	case 0:
		break;
	case 1:
		cmd = _IOC(_IOC_DIR(cmd) ^ (1 + rng_below(&st->rng, 3)), SENDGROUP_IOC_MAGIC,
			   _IOC_NR(cmd), _IOC_SIZE(cmd));
		break;
	case 2:
		cmd = _IOC(_IOC_DIR(cmd), SENDGROUP_IOC_MAGIC, _IOC_NR(cmd),
			   EDGE(st, 0, 1, 8, 16, 24, 40, 56, 64, 0x3fff) & 0x3fff);
		break;
	default:
		cmd = _IOC(_IOC_DIR(cmd), SENDGROUP_IOC_MAGIC, rng_below(&st->rng, 256),
			   _IOC_SIZE(cmd));
		break;
	}
	/* Commands the fd has are not unknown: the device's own on the device, and so on. */
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (cmd == cmds[i] && on_group == (i >= 3))
			cmd = _IOC(_IOC_DIR(cmd), SENDGROUP_IOC_MAGIC, 0x80, _IOC_SIZE(cmd));
	if (on_group)
		c.fd = g.fd;
	c.cmd = cmd;
	c.arg = arg;
	describe(st, " on=%s cmd=%#lx", on_group ? "group" : "device", cmd);
	do_ioctl(st, &c);
	if (on_group && (group_slot_changed(slot, g.gen) || g.fd < 0))
		c.fd_stale = true;
	if (check_ret(st, &c))
		fail(st, "an unknown command succeeded");
}

/* ---- sockets ------------------------------------------------------------------------ */

static void bind_any(int fd, int family, const char *addr)
{
	struct sockaddr_storage ss = { 0 };

	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)&ss;

		sin->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &sin->sin_addr);
		bind(fd, (void *)sin, sizeof(*sin));
	} else {
		struct sockaddr_in6 *sin6 = (void *)&ss;

		sin6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &sin6->sin6_addr);
		bind(fd, (void *)sin6, sizeof(*sin6));
	}
}

static void connect_receiver(int fd, int family, unsigned int index)
{
	struct sockaddr_storage ss = { 0 };

	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(world.ports[0][index % RECEIVERS]);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		connect(fd, (void *)sin, sizeof(*sin));
	} else {
		struct sockaddr_in6 *sin6 = (void *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(world.ports[1][index % RECEIVERS]);
		sin6->sin6_addr = in6addr_loopback;
		connect(fd, (void *)sin6, sizeof(*sin6));
	}
}

static int setint(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof(value));
}

/* A bounded wait for buffer space: a send never hangs the fuzzer. */
static void bound_send_wait(int fd, long usec)
{
	struct timeval tv = { .tv_sec = usec / 1000000, .tv_usec = usec % 1000000 };

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int open_socket(struct stream *st, enum sock_kind kind)
{
	int family = family_of_kind(kind), fd;

	switch (kind) {
	case SK_CLOSED:
		return 4000 + rng_below(&st->rng, 64);	/* never opened (below RLIMIT_NOFILE) */
	case SK_TCP4:
	case SK_TCP6:
		return socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	case SK_RAW4:
		return socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
	case SK_PING4:
		return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	case SK_UDPLITE4:
		return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDPLITE);
	case SK_UNIX_DGRAM:
		return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	case SK_PACKET:
		return socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	case SK_EVENTFD:
		return eventfd(0, EFD_CLOEXEC);
	case SK_DEVNULL:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	case SK_DEVICE:
		return fcntl(st->dev, F_DUPFD_CLOEXEC, 0);
	default:
		break;
	}

	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | (rng_chance(&st->rng, 300) ? SOCK_NONBLOCK : 0),
		    IPPROTO_UDP);
	if (fd < 0)
		return fd;
	bound_send_wait(fd, 200000);
	switch (kind) {
	case SK_UDP4_LOOPBACK:
		bind_any(fd, AF_INET, "127.0.0.1");
		break;
	case SK_UDP4_ANY:
		bind_any(fd, AF_INET, "0.0.0.0");
		break;
	case SK_UDP4_CONNECTED:
	case SK_UDP6_CONNECTED:
		connect_receiver(fd, family, rng_below(&st->rng, RECEIVERS));
		break;
	case SK_UDP4_SHUTDOWN:
		bind_any(fd, AF_INET, "0.0.0.0");
		shutdown(fd, (int[]){ SHUT_WR, SHUT_RD, SHUT_RDWR }[rng_below(&st->rng, 3)]);
		break;
	case SK_UDP4_TINY_SNDBUF:
		setint(fd, SOL_SOCKET, SO_SNDBUF, 1);
		bind_any(fd, AF_INET, "0.0.0.0");
		break;
	case SK_UDP4_BOUND_DEVICE:
	case SK_UDP6_BOUND_DEVICE: {
		const char *dev = rng_chance(&st->rng, 500) ? "lo" : "sgfuzz0";

		setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, strlen(dev));
		bind_any(fd, family, family == AF_INET ? "0.0.0.0" : "::");
		break;
	}
	case SK_UDP4_CORKED:
		setint(fd, IPPROTO_UDP, UDP_CORK, 1);
		bind_any(fd, AF_INET, "0.0.0.0");
		break;
	case SK_UDP4_PENDING: {
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(world.ports[0][0]),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		sendto(fd, "more", 4, MSG_MORE | MSG_DONTWAIT, (void *)&to, sizeof(to));
		break;
	}
	case SK_UDP4_OPTIONS: {
		static const unsigned char record_route[8] = { 7, 7, 4, 0, 0, 0, 0, 1 };

		bind_any(fd, AF_INET, "0.0.0.0");
		switch (rng_below(&st->rng, 6)) {
		case 0:
			setsockopt(fd, IPPROTO_IP, IP_OPTIONS, record_route, sizeof(record_route));
			break;
		case 1:
			setint(fd, IPPROTO_UDP, UDP_SEGMENT, 1000);
			break;
		case 2:
			setint(fd, SOL_SOCKET, SO_NO_CHECK, 1);
			break;
		case 3:
			setint(fd, SOL_SOCKET, SO_TIMESTAMPING, 1 /* SOF_TIMESTAMPING_TX_HARDWARE */ |
			       2 /* TX_SOFTWARE */ | 0x80 /* OPT_ID */);
			break;
		case 4:
			setint(fd, IPPROTO_IP, IP_MTU_DISCOVER,
			       (int[]){ IP_PMTUDISC_DONT, IP_PMTUDISC_DO, IP_PMTUDISC_PROBE }[rng_below(&st->rng, 3)]);
			break;
		default:
			setint(fd, IPPROTO_IP, IP_TOS, 0xb8);
			setint(fd, SOL_SOCKET, SO_MARK, 7);
			setint(fd, SOL_SOCKET, SO_PRIORITY, 6);
			break;
		}
		break;
	}
	case SK_UDP4_BROADCAST:
		setint(fd, SOL_SOCKET, SO_BROADCAST, 1);
		bind_any(fd, AF_INET, "0.0.0.0");
		break;
	case SK_UDP6_LOOPBACK:
		bind_any(fd, AF_INET6, "::1");
		break;
	case SK_UDP6_DUAL:
		setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
		bind_any(fd, AF_INET6, "::");
		break;
	case SK_UDP6_V6ONLY:
		setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
		bind_any(fd, AF_INET6, "::");
		break;
	case SK_UDP6_FLOWLABEL:
		setint(fd, IPPROTO_IPV6, IPV6_FLOWINFO_SEND, 1);
		bind_any(fd, AF_INET6, "::");
		break;
	case SK_UDP6_MTU:
		setint(fd, IPPROTO_IPV6, IPV6_MTU, 1280);
		setint(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER,
		       (int[]){ IP_PMTUDISC_DONT, IP_PMTUDISC_DO }[rng_below(&st->rng, 2)]);
		bind_any(fd, AF_INET6, "::");
		break;
	default:	/* unbound */
		break;
	}
	return fd;
}

static enum sock_kind fuzz_sock_kind(struct stream *st)
{
	if (rng_chance(&st->rng, 800))
		return rng_below(&st->rng, SK_UDP_KINDS);
	return rng_below(&st->rng, SK_KINDS);
}

static void sock_slot_replace(struct stream *st, unsigned int slot, enum sock_kind kind)
{
	int fd = open_socket(st, kind), old;

	world_lock();
	old = world.socks[slot].fd;
	world.socks[slot].fd = fd;
	world.socks[slot].kind = kind;
	world.socks[slot].gen++;
	world_unlock();
	if (old >= 0 && old < 4000)
		close(old);
}

static void op_socket_replace(struct stream *st)
{
	unsigned int slot = rng_below(&st->rng, SOCK_SLOTS);
	enum sock_kind kind = fuzz_sock_kind(st);

	describe(st, " slot=%u kind=%s", slot, sock_kind_names[kind]);
	sock_slot_replace(st, slot, kind);
}

/* Change a socket's state under the groups and calls that use it. */
static void op_socket_mutate(struct stream *st)
{
	unsigned int slot = rng_below(&st->rng, SOCK_SLOTS), what = rng_below(&st->rng, 12);
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	enum sock_kind kind;
	int fd;

	world_lock();
	fd = world.socks[slot].fd;
	kind = world.socks[slot].kind;
	world_unlock();
	describe(st, " slot=%u fd=%d what=%u", slot, fd, what);
	if (kind >= SK_UDP_KINDS)
		return;
	switch (what) {
	case 0:
		setint(fd, SOL_SOCKET, SO_SNDBUF, rng_chance(&st->rng, 500) ? 1 : 1 << 20);
		break;
	case 1: {
		const char *dev = (const char *[]){ "lo", "sgfuzz0", "" }[rng_below(&st->rng, 3)];

		setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, strlen(dev));
		break;
	}
	case 2:
		setint(fd, IPPROTO_UDP, UDP_CORK, rng_below(&st->rng, 2));
		break;
	case 3:
		connect(fd, &unspec, sizeof(unspec));
		break;
	case 4:
		connect_receiver(fd, family_of_kind(kind), rng_below(&st->rng, RECEIVERS));
		break;
	case 5:
		shutdown(fd, SHUT_WR);
		break;
	case 6:
		setint(fd, SOL_SOCKET, SO_MARK, rng_below(&st->rng, 4));
		setint(fd, family_of_kind(kind) == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
		       family_of_kind(kind) == AF_INET ? IP_TOS : IPV6_TCLASS, rng_below(&st->rng, 256));
		break;
	case 7:
		setint(fd, IPPROTO_UDP, UDP_SEGMENT, rng_chance(&st->rng, 500) ? 0 : 1200);
		break;
	case 8:
		fcntl(fd, F_SETFL, rng_chance(&st->rng, 500) ? O_NONBLOCK : 0);
		break;
	case 9:
		setint(fd, SOL_SOCKET, SO_BROADCAST, rng_below(&st->rng, 2));
		break;
	case 10:
		if (family_of_kind(kind) == AF_INET6)
			setint(fd, IPPROTO_IPV6, IPV6_MTU, rng_chance(&st->rng, 500) ? 1280 : 0);
		else
			setint(fd, IPPROTO_IP, IP_MTU_DISCOVER, rng_below(&st->rng, 4));
		break;
	default:
		bind_any(fd, family_of_kind(kind), family_of_kind(kind) == AF_INET ? "0.0.0.0" : "::");
		break;
	}
}

/* Receivers fill up and then drop: empty them now and then so delivery runs too. */
static void op_drain(struct stream *st)
{
	static __thread unsigned char buf[70000];

	for (int f = 0; f < 2; f++)
		for (int i = 0; i < RECEIVERS; i++)
			while (recv(world.receivers[f][i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
				;
}

/* ---- episodes ---------------------------------------------------------------------- */

static void run_ops(struct stream *st, unsigned long ops);

/* waitpid() through the signal episodes' stray SIGUSR1s. */
static pid_t wait_child(pid_t pid, int *status)
{
	pid_t ret;

	do
		ret = waitpid(pid, status, 0);
	while (ret < 0 && errno == EINTR);
	return ret;
}

static void episode_count(enum episode e)
{
	atomic_fetch_add_explicit(&run->episodes[e], 1, memory_order_relaxed);
}

/* Fork: the child inherits every group fd and keeps using them, then exits. */
static void ep_fork(struct stream *st)
{
	unsigned long ops = 4 + rng_below(&st->rng, 12);
	__u64 child_seed = rng_next(&st->rng);
	int status;
	pid_t pid;

	describe(st, " child ops=%lu", ops);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		pthread_mutex_init(&world.lock, NULL);
		st->in_child = true;
		st->alone = false;
		st->expect_valid = false;
		st->have_timer = false;
		st->rng.state = child_seed;
		run_ops(st, ops);
		_exit(0);
	}
	episode_count(EP_FORK);
	if (wait_child(pid, &status) == pid && !(WIFEXITED(status) && !WEXITSTATUS(status)))
		fail(st, "fork: the child did not exit cleanly");
	untrack_groups();
	expect_resync(st);
}

/*
 * A group whose sends wait for send-buffer space: a tiny SO_SNDBUF and
 * members behind sgfuzz1's tbf, waits only a signal ends (-ERESTARTSYS
 * inside). @bounded: members on loopback instead, a long call that does not
 * wait, and SO_SNDTIMEO in case it does.
 */
static int slow_group_open(struct stream *st, struct slow_group *sg, bool bounded)
{
	struct sendgroup_group_create_args create = { .size = sizeof(create) };
	struct sendgroup_members_args add = { .size = sizeof(add) };
	struct sendgroup_member *m;
	bool slow = world.slow_path && !bounded && rng_chance(&st->rng, 900);
	struct call c = CALL("ADD (slow group)", -1, SENDGROUP_GROUP_IOC_ADD, &add, add_errnos);

	sg->family = AF_INET;
	sg->members = slow ? profile->slow_members[0] + rng_below(&st->rng, profile->slow_members[1]) :
		      profile->bounded_members[0] + rng_below(&st->rng, profile->bounded_members[1]);
	sg->sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sg->sock < 0)
		return -1;
	setint(sg->sock, SOL_SOCKET, SO_SNDBUF, 1);
	if (bounded || !world.slow_path)
		bound_send_wait(sg->sock, 100000);
	if (rng_chance(&st->rng, 700))
		bind_any(sg->sock, AF_INET, "0.0.0.0");	/* the direct path; unbound: sendmsg */
	create.fd = sg->sock;
	sg->group = ioctl(st->dev, SENDGROUP_IOC_GROUP_CREATE, &create);
	atomic_fetch_add_explicit(&run->ioctls, 1, memory_order_relaxed);
	if (sg->group < 0) {
		close(sg->sock);
		return -1;
	}
	m = scratch_alloc(st, sg->members * sizeof(*m));
	for (unsigned int i = 0; i < sg->members; i++) {
		struct sendgroup_recipient *r = &m[i].recipient;
		__u32 addr = slow ? htonl(0x0a600002 + i % 200) : htonl(INADDR_LOOPBACK);

		m[i].id = i;
		r->family = AF_INET;
		r->port = world.ports[0][i % RECEIVERS];
		memcpy(r->addr, &addr, 4);
		r->prepend = (uintptr_t)pattern;
		r->prepend_len = i % 3 ? 16 : 0;
	}
	add.members = (uintptr_t)m;
	add.count = sg->members;
	add.member_size = sizeof(*m);
	c.fd = sg->group;
	do_ioctl(st, &c);
	check_ret(st, &c);
	describe(st, " slow-group{members=%u %s}", sg->members, slow ? "tbf" : "loopback");
	return 0;
}

static void slow_group_close(struct slow_group *sg)
{
	close(sg->group);
	close(sg->sock);
}

/* A group SEND on @sg with big enough payloads to wait for buffer space. */
static void slow_group_send(struct stream *st, struct slow_group *sg, void *failures,
			    unsigned int capacity, struct call *c,
			    struct sendgroup_group_send_args *args, struct sendgroup_payload *p)
{
	p[0] = (struct sendgroup_payload){ .data = (uintptr_t)pattern, .len = 1000 + rng_below(&st->rng, 400) };
	p[1] = (struct sendgroup_payload){ .data = (uintptr_t)pattern, .len = 200 };
	*args = (struct sendgroup_group_send_args){
		.size = sizeof(*args), .payload_count = 2, .payloads = (uintptr_t)p,
		.failures = (uintptr_t)failures, .failure_capacity = capacity,
		.msg_flags = rng_chance(&st->rng, 100) ? MSG_DONTWAIT : 0,
	};
	*c = CALL("GROUP_SEND (slow group)", sg->group, SENDGROUP_GROUP_IOC_SEND, args,
		  group_send_errnos);
	do_ioctl(st, c);
}

/* A one-shot SEND to @count loopback or held-back recipients. */
static void slow_oneshot_send(struct stream *st, struct slow_group *sg, __s32 *results,
			      struct call *c, struct sendgroup_send_args *args)
{
	unsigned int count = sg->members < 64 ? sg->members : 64;
	struct sendgroup_recipient *r = scratch_alloc(st, count * sizeof(*r));
	bool slow = world.slow_path;

	for (unsigned int i = 0; i < count; i++) {
		__u32 addr = slow ? htonl(0x0a600002 + i) : htonl(INADDR_LOOPBACK);

		r[i].family = AF_INET;
		r[i].port = world.ports[0][i % RECEIVERS];
		memcpy(r[i].addr, &addr, 4);
		r[i].append = (uintptr_t)pattern;
		r[i].append_len = i % 2 ? 100 : 0;
	}
	*args = (struct sendgroup_send_args){
		.size = sizeof(*args), .fd = sg->sock, .shared = (uintptr_t)pattern,
		.shared_len = 1200, .recipient_size = sizeof(*r), .recipients = (uintptr_t)r,
		.recipient_count = count, .results = (uintptr_t)results,
	};
	*c = CALL("SEND (slow)", st->dev, SENDGROUP_IOC_SEND, args, send_errnos);
	do_ioctl(st, c);
}

#define SENTINEL 0x5a5a5a5a

/* A child sends to a slow group and gets SIGKILL in the middle. */
static void ep_sigkill(struct stream *st)
{
	struct slow_group sg;
	unsigned int delay_us = rng_below(&st->rng, 8000);
	bool oneshot = rng_chance(&st->rng, 500);
	__s32 *slots = st->child_slots;
	int status;
	pid_t pid;

	if (slow_group_open(st, &sg, false))
		return;
	describe(st, " %s delay=%uus", oneshot ? "one-shot" : "group", delay_us);
	for (unsigned int i = 0; i < 1024; i++)
		slots[i] = SENTINEL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct sendgroup_group_send_args args;
		struct sendgroup_send_args sargs;
		struct sendgroup_payload p[2];
		struct call c;

		st->in_child = true;
		if (oneshot)
			slow_oneshot_send(st, &sg, slots, &c, &sargs);
		else
			slow_group_send(st, &sg, slots, 1024 * sizeof(__s32) /
					sizeof(struct sendgroup_failure), &c, &args, p);
		_exit(0);
	}
	if (pid > 0) {
		usleep(delay_us);
		kill(pid, SIGKILL);
		wait_child(pid, &status);
		episode_count(EP_SIGKILL);
		if (!WIFSIGNALED(status) && !(WIFEXITED(status) && !WEXITSTATUS(status)))
			fail(st, "SIGKILL: the child ended neither killed nor cleanly");
		/* What the killed call wrote back must be clean too. */
		if (oneshot) {
			for (unsigned int i = 0; i < 64; i++)
				if (slots[i] != SENTINEL && slots[i])
					check_datagram_error(st, "SEND results[] of a killed child",
							     slots[i], false);
		} else {
			const struct sendgroup_failure *f = (const void *)slots;

			for (unsigned int i = 0; i < 1024 * sizeof(__s32) / sizeof(*f); i++)
				if (f[i].error != SENTINEL && (f[i].member_id || f[i].error))
					check_datagram_error(st, "failure record of a killed child",
							     f[i].error, false);
		}
	}
	slow_group_close(&sg);
	expect_resync(st);
}

static volatile sig_atomic_t signals_caught;

static void on_sigusr1(int sig)
{
	signals_caught++;
}

/* Non-fatal signals, again and again, while this thread sends to a slow group. */
static void ep_signals(struct stream *st)
{
	struct itimerspec its = { 0 };
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	struct slow_group sg;
	struct call c;
	bool oneshot = rng_chance(&st->rng, 500);
	unsigned int first_us = 1 + rng_below(&st->rng, 10000), every_us = 500 + rng_below(&st->rng, 5000);
	struct sendgroup_group_send_args args;
	struct sendgroup_send_args sargs;
	struct sendgroup_payload p[2];
	void *slots;

	if (!st->have_timer || slow_group_open(st, &sg, false))
		return;
	sa.sa_flags = rng_chance(&st->rng, 500) ? SA_RESTART : 0;
	sigaction(SIGUSR1, &sa, NULL);
	describe(st, " %s first=%uus every=%uus%s", oneshot ? "one-shot" : "group", first_us,
		 every_us, sa.sa_flags ? " SA_RESTART" : "");
	its.it_value.tv_nsec = first_us * 1000L;
	its.it_interval.tv_nsec = every_us * 1000L;
	slots = scratch_alloc(st, 1024 * sizeof(struct sendgroup_failure));
	timer_settime(st->timer, 0, &its, NULL);
	if (oneshot)
		slow_oneshot_send(st, &sg, slots, &c, &sargs);
	else
		slow_group_send(st, &sg, slots, 1024, &c, &args, p);
	memset(&its, 0, sizeof(its));
	timer_settime(st->timer, 0, &its, NULL);
	episode_count(EP_SIGNAL);

	if (oneshot) {
		if (check_ret(st, &c)) {
			unsigned int zeros = 0;

			for (unsigned int i = 0; i < sargs.recipient_count; i++) {
				__s32 v = ((__s32 *)slots)[i];

				if (!v)
					zeros++;
				else
					check_datagram_error(st, "SEND results[] under signals", v, false);
			}
			if (zeros != c.ret)
				fail(st, "SEND under signals: its return and the zeros in results[] differ");
		}
	} else {
		check_group_send(st, &c, &args, slots, -1);
	}
	slow_group_close(&sg);
	expect_resync(st);
}

struct closer {
	int fd;
	unsigned int delay_us;
};

static void *closer_main(void *arg)
{
	struct closer *cl = arg;

	usleep(cl->delay_us);
	close(cl->fd);
	return NULL;
}

/* Another thread closes the group fd (or its socket) while this one sends. */
static void ep_close_mid_call(struct stream *st)
{
	struct closer cl = { .delay_us = rng_below(&st->rng, 3000) };
	bool close_socket = rng_chance(&st->rng, 300);
	struct sendgroup_group_send_args args;
	struct sendgroup_payload p[2];
	struct slow_group sg;
	struct call c;
	pthread_t thread;
	void *slots;

	if (slow_group_open(st, &sg, true))
		return;
	cl.fd = close_socket ? sg.sock : sg.group;
	describe(st, " close %s after %uus", close_socket ? "socket" : "group", cl.delay_us);
	slots = scratch_alloc(st, 1024 * sizeof(struct sendgroup_failure));
	if (pthread_create(&thread, NULL, closer_main, &cl)) {
		slow_group_close(&sg);
		return;
	}
	slow_group_send(st, &sg, slots, 1024, &c, &args, p);
	pthread_join(thread, NULL);
	episode_count(EP_CLOSE_MID_CALL);
	/* The call may start after the close: then EBADF is the answer. */
	c.fd_stale = !close_socket;
	check_group_send(st, &c, &args, slots, -1);
	close(close_socket ? sg.group : sg.sock);
	expect_resync(st);
}

static int send_fds(int sock, const int *fds, unsigned int n)
{
	char data = 'g';
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
		.msg_controllen = CMSG_SPACE(n * sizeof(int)),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cmsg), fds, n * sizeof(int));
	return sendmsg(sock, &msg, MSG_DONTWAIT) < 0 ? -errno : 0;
}

static int recv_fds(int sock, int *fds, unsigned int max)
{
	char data;
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cmsg;
	int n = 0;

	if (recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0)
		return -errno;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
			n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(cmsg), (n < (int)max ? n : (int)max) * sizeof(int));
		}
	return n;
}

/*
 * Group fds (and the device) through a unix socket: received back and used,
 * left in flight when both ends close, or in a cycle only the garbage
 * collector can free.
 */
static void ep_scm_rights(struct stream *st)
{
	unsigned int how = rng_below(&st->rng, 3), slot;
	struct group_slot g = pick_group(st, &slot);
	int pair[2], fds[4], got[4], n = 0;

	if (socketpair(AF_UNIX, (rng_chance(&st->rng, 500) ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
		       0, pair))
		return;
	/* Our own duplicates: the slot keeps its fd whatever the other thread does. */
	if (g.fd >= 0 && (fds[n] = fcntl(g.fd, F_DUPFD_CLOEXEC, 0)) >= 0)
		n++;
	if ((fds[n] = fcntl(st->dev, F_DUPFD_CLOEXEC, 0)) >= 0)
		n++;
	if (how == 2)
		fds[n++] = pair[0];	/* the socket inside its own queue: a cycle */
	describe(st, " how=%u fds=%d", how, n);
	if (n && !send_fds(pair[1], fds, n) && how == 0) {
		int m = recv_fds(pair[0], got, 4);

		for (int i = 0; i < m && i < 4; i++) {
			struct sendgroup_list_args list = { .size = sizeof(list) };
			struct call c = CALL("LIST (fd from SCM_RIGHTS)", got[i], SENDGROUP_GROUP_IOC_LIST,
					  &list, list_errnos);

			do_ioctl(st, &c);
			/* The device answers ENOTTY to a group command. */
			if (c.ret < 0 && c.ret != -ENOTTY)
				check_ret(st, &c);
			close(got[i]);
		}
	}
	for (int i = 0; i < n; i++)
		if (fds[i] != pair[0])
			close(fds[i]);
	close(pair[0]);
	close(pair[1]);
	episode_count(EP_SCM_RIGHTS);
	untrack_groups();
}

/* dup a group fd into another slot: two slots, one group. */
static void ep_dup(struct stream *st)
{
	unsigned int from, to = rng_below(&st->rng, GROUP_SLOTS);
	struct group_slot g = pick_group(st, &from);
	bool cloexec;
	int fd;

	if (g.fd < 0 || from == to)
		return;
	cloexec = rng_chance(&st->rng, 500);
	/*
	 * Duplicate the slot's fd only while the slot still holds it: once
	 * another stream closed it, its number may be a socket's, and a dup of
	 * that installed as a group made every later group call on the slot
	 * ENOTTY with no change the oracle could see.
	 */
	world_lock();
	fd = world.groups[from].gen != g.gen ? -1 :
	     cloexec ? fcntl(g.fd, F_DUPFD_CLOEXEC, 0) : dup(g.fd);
	world_unlock();
	describe(st, " %u->%u fd=%d", from, to, fd);
	if (fd < 0)
		return;
	group_slot_install(to, fd, g.family, false);
	untrack_groups();
	episode_count(EP_DUP);
}

/* Close a group slot: its group goes once no other fd or call holds it. */
static void op_group_close(struct stream *st)
{
	unsigned int slot = rng_below(&st->rng, GROUP_SLOTS);

	describe(st, " slot=%u", slot);
	group_slot_install(slot, -1, AF_INET, false);
}

/* ---- a crash of the fuzzer itself still names its op ------------------------------ */

static __thread struct stream *current_stream;
int main(int argc, char **argv);

static void on_crash(int sig, siginfo_t *si, void *ucontext)
{
	struct stream *st = current_stream;
	char line[320];
	int n;

	n = snprintf(line, sizeof(line),
		     "# sg_fuzz crashed (signal %d at %p, main at %p): seed %llu stream %u op %lu (%s)\n",
		     sig, si->si_addr, (void *)main, (unsigned long long)opt.seed, st ? st->id : 0,
		     st ? st->op : 0, st && st->op_name ? st->op_name : "-");
	if (write(STDOUT_FILENO, line, n) < 0)
		_exit(3);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void crash_handler_install(void)
{
	static unsigned char altstack[65536];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	struct sigaction sa = { .sa_sigaction = on_crash, .sa_flags = SA_ONSTACK | SA_SIGINFO };

	sigaltstack(&ss, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGABRT, &sa, NULL);
}

/* ---- the op stream ------------------------------------------------------------------- */

struct op_kind {
	const char *name;
	void (*run)(struct stream *st);
	unsigned int weight;	/* per 10000 (the full profile) */
	bool in_child;		/* may run in a forked child */
	bool long_episode;	/* a process or a slow group: the lean profile's divisor applies */
};

static void op_add(struct stream *st) { op_members(st, SENDGROUP_GROUP_IOC_ADD); }
static void op_update(struct stream *st) { op_members(st, SENDGROUP_GROUP_IOC_UPDATE); }

static const struct op_kind op_kinds[] = {
	/*
	 * ADD, UPDATE and REMOVE wait for the group's running sends (its
	 * walk_lock): a quarter of the calls, so the run keeps its pace.
	 */
	{ "INFO", op_info, 600, true, false },
	{ "SEND", op_send, 2300, true, false },
	{ "GROUP_CREATE", op_create, 500, true, false },
	{ "ADD", op_add, 1200, true, false },
	{ "UPDATE", op_update, 600, true, false },
	{ "REMOVE", op_remove, 700, true, false },
	{ "LIST", op_list, 700, true, false },
	{ "GROUP_SEND", op_group_send, 2000, true, false },
	{ "unknown command", op_unknown_cmd, 500, true, false },
	{ "socket replace", op_socket_replace, 200, true, false },
	{ "socket mutate", op_socket_mutate, 250, true, false },
	{ "group close", op_group_close, 120, true, false },
	{ "drain receivers", op_drain, 60, true, false },
	/* Episodes cost milliseconds each under emulation: hundreds per 10^6 ops. */
	{ "fork", ep_fork, 5, false, true },
	{ "SIGKILL mid-send", ep_sigkill, 4, false, true },
	{ "signals mid-send", ep_signals, 8, false, true },
	{ "close mid-call", ep_close_mid_call, 5, false, true },
	{ "SCM_RIGHTS", ep_scm_rights, 15, true, false },
	{ "dup", ep_dup, 20, true, false },
};

/* Where the run's time goes, per kind of op (all streams). */
#define SLOW_OP_USEC 1000000
static atomic_ulong op_count[32], op_usec[32], op_max_usec[32];

/* Long episodes @profile->episode_divisor times rarer: every other kind weighs that much more. */
static unsigned int op_weight(const struct op_kind *kind)
{
	return kind->long_episode ? kind->weight : kind->weight * profile->episode_divisor;
}

static const struct op_kind *pick_op(struct stream *st)
{
	unsigned int total = 0, r;

	for (size_t i = 0; i < ARRAY_SIZE(op_kinds); i++)
		total += op_weight(&op_kinds[i]);
	for (;;) {
		r = rng_below(&st->rng, total);
		for (size_t i = 0; i < ARRAY_SIZE(op_kinds); i++) {
			if (r < op_weight(&op_kinds[i])) {
				if (st->in_child && !op_kinds[i].in_child)
					break;
				return &op_kinds[i];
			}
			r -= op_weight(&op_kinds[i]);
		}
	}
}

static bool budget_left(const struct stream *st, unsigned long ioctl_budget)
{
	if (atomic_load(&stop_streams))
		return false;
	if (opt.deadline > 0 && now() - start_time >= opt.deadline)
		return false;
	if (opt.seconds > 0)
		return now() - start_time < opt.seconds;
	return atomic_load_explicit(&run->ioctls, memory_order_relaxed) < ioctl_budget;
}

/* @ops ops (children and replays), or until the budget is spent. */
static void run_ops(struct stream *st, unsigned long ops)
{
	current_stream = st;
	for (unsigned long i = 0; i < ops; i++) {
		const struct op_kind *kind;
		unsigned long usec, max;

		st->op++;
		mem_reset(&st->mem);
		st->desc_len = 0;
		st->desc[0] = 0;
		st->bad_ptr = false;
		double t0;

		kind = pick_op(st);
		st->op_name = kind->name;
		t0 = now();
		if (st->id <= MAX_STREAMS && !st->in_child) {
			atomic_store(&op_running_kind[st->id], (int)(kind - op_kinds));
			atomic_store(&op_started[st->id], t0);
		}
		kind->run(st);
		if (st->id <= MAX_STREAMS && !st->in_child)
			atomic_store(&op_started[st->id], 0.0);
		atomic_fetch_add_explicit(&op_count[kind - op_kinds], 1, memory_order_relaxed);
		usec = (unsigned long)((now() - t0) * 1e6);
		atomic_fetch_add_explicit(&op_usec[kind - op_kinds], usec, memory_order_relaxed);
		max = atomic_load_explicit(&op_max_usec[kind - op_kinds], memory_order_relaxed);
		while (usec > max && !atomic_compare_exchange_weak(&op_max_usec[kind - op_kinds], &max, usec))
			;
		/* Where a run's time goes is mostly a few long calls: name them. */
		if (usec >= SLOW_OP_USEC)
			printf("# slow op: stream %u op %lu %s took %lu ms:%s\n", st->id, st->op,
			       kind->name, usec / 1000, st->desc);
		if (st->alone && !(st->op % 1024))
			check_sent_counter(st, "periodic");
	}
}

static void stream_init(struct stream *st, unsigned int id, bool alone)
{
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1 };

	memset(st, 0, sizeof(*st));
	st->id = id;
	/* Each stream's own sequence, independent of every other stream's. */
	st->rng.state = opt.seed ^ (0x9e3779b97f4a7c15ULL * (id + 1));
	rng_next(&st->rng);
	st->op = -1UL;
	st->alone = alone;
	/* SG_FUZZ_DEVICE=/dev/null checks the fuzzer itself where the module cannot load. */
	st->dev = getenv("SG_FUZZ_DEVICE") ? open(getenv("SG_FUZZ_DEVICE"), O_RDWR | O_CLOEXEC) :
					     open_device();
	if (st->dev < 0) {
		perror(SENDGROUP_DEVICE_PATH);
		exit(2);
	}
	mem_init(&st->mem);
	st->child_slots = mmap(NULL, 1024 * sizeof(struct sendgroup_failure), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	sev.sigev_notify_thread_id = syscall(SYS_gettid);
	st->have_timer = !timer_create(CLOCK_MONOTONIC, &sev, &st->timer);
	expect_resync(st);
}

static void stream_fini(struct stream *st)
{
	if (st->have_timer)
		timer_delete(st->timer);
	close(st->dev);
}

static void *stream_main(void *arg)
{
	struct stream *st = arg;

	stream_init(st, st->id, false);
	while (budget_left(st, opt.max_ioctls))
		run_ops(st, 1);
	stream_fini(st);
	return NULL;
}

/* ---- setup --------------------------------------------------------------------------- */

/* Refuse to run where a datagram could leave the machine. */
static bool network_is_isolated(void)
{
	char line[512];
	FILE *f = fopen("/proc/net/route", "r");
	bool isolated = true;

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char dev[64];
			unsigned int dest;

			if (sscanf(line, "%63s %x", dev, &dest) == 2 && dest == 0 && strcmp(dev, "lo"))
				isolated = false;
		}
		fclose(f);
	}
	f = fopen("/proc/net/ipv6_route", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char dest[40], dev[64];
			unsigned int plen, flags;

			if (sscanf(line, "%32s %x %*s %*s %*s %*s %*s %*s %x %63s", dest, &plen,
				   &flags, dev) == 4 && plen == 0 && strcmp(dev, "lo") &&
			    !(flags & 0x0200 /* RTF_REJECT */))
				isolated = false;
		}
		fclose(f);
	}
	return isolated;
}

/*
 * sgfuzz0: a dummy device (datagrams leave the stack and are dropped), with
 * an unreachable and a prohibited route. sgfuzz1: a dummy whose tbf qdisc
 * holds datagrams, so a socket's send buffer fills and sends wait.
 */
static void netdev_setup(void)
{
	static const char *const cmds[] = {
		"ip link add sgfuzz0 type dummy",
		"ip link set sgfuzz0 up",
		"ip addr add 10.99.0.1/24 dev sgfuzz0",
		"ip -6 addr add fd00:99::1/64 dev sgfuzz0 nodad",
		"ip route add unreachable 10.98.0.0/16",
		"ip route add prohibit 10.97.0.0/16",
		"ip -6 route add unreachable fd00:98::/64",
	};
	int ok = 0;

	if (opt.no_netdev || geteuid())
		return;
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "%s >/dev/null 2>&1", cmds[i]);
		ok += !system(cmd);
	}
	world.dummy_ifindex = if_nametoindex("sgfuzz0");
	if (!system("ip link add sgfuzz1 type dummy >/dev/null 2>&1 && ip link set sgfuzz1 up && "
		    "ip addr add 10.96.0.1/24 dev sgfuzz1 && "
		    "tc qdisc add dev sgfuzz1 root tbf rate 1mbit burst 4kb limit 64kb >/dev/null 2>&1"))
		world.slow_path = true;
	world.slow_ifindex = if_nametoindex("sgfuzz1");
	printf("# network: sgfuzz0 %s (%d/%zu), sends that wait: %s\n",
	       world.dummy_ifindex ? "up" : "missing", ok, ARRAY_SIZE(cmds),
	       world.slow_path ? "sgfuzz1 with tbf" : "no (tc/tbf missing): loopback only");
}

static void netdev_teardown(void)
{
	if (opt.no_netdev || geteuid())
		return;
	if (system("ip link del sgfuzz0 >/dev/null 2>&1; ip link del sgfuzz1 >/dev/null 2>&1; "
		   "ip route del unreachable 10.98.0.0/16 >/dev/null 2>&1; "
		   "ip route del prohibit 10.97.0.0/16 >/dev/null 2>&1; "
		   "ip -6 route del unreachable fd00:98::/64 >/dev/null 2>&1"))
		return;
}

static void world_init(struct stream *st)
{
	struct rng saved = st->rng;

	/* The world's own stream: every stream's ops replay the same whichever runs. */
	st->rng.state = opt.seed ^ 0x5bd1e9955bd1e995ULL;
	world.lo_ifindex = if_nametoindex("lo");
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < RECEIVERS; i++) {
			world.receivers[f][i] = make_receiver(f ? AF_INET6 : AF_INET, &world.ports[f][i]);
			if (world.receivers[f][i] < 0) {
				perror("receiver");
				exit(2);
			}
		}
	for (unsigned int i = 0; i < SOCK_SLOTS; i++) {
		world.socks[i].fd = -1;
		sock_slot_replace(st, i, i < SK_UDP_KINDS ? (enum sock_kind)i : fuzz_sock_kind(st));
	}
	for (unsigned int i = 0; i < GROUP_SLOTS; i++)
		world.groups[i].fd = -1;
	fill_pattern(pattern, sizeof(pattern), 3);
	st->rng = saved;
}

static void world_close(void)
{
	for (unsigned int i = 0; i < GROUP_SLOTS; i++)
		group_slot_install(i, -1, AF_INET, false);
	for (unsigned int i = 0; i < SOCK_SLOTS; i++) {
		if (world.socks[i].fd >= 0 && world.socks[i].fd < 4000)
			close(world.socks[i].fd);
		world.socks[i].fd = -1;
	}
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < RECEIVERS; i++)
			close(world.receivers[f][i]);
}

/* Once every fd is closed, nothing of ours may stay alive in the module. */
static bool module_state_released(void)
{
	static const char *const stats[] = { "groups_live", "members_live", "routes_cached" };
	unsigned long long v[3];

	for (int tries = 0; tries < 200; tries++) {
		bool zero = true;

		for (int i = 0; i < 3; i++) {
			v[i] = read_stat(stats[i]);
			zero &= v[i] == 0;
		}
		if (zero)
			return true;
		usleep(50000);
	}
	printf("# still live after 10 s: groups_live %lld members_live %lld routes_cached %lld\n",
	       (long long)v[0], (long long)v[1], (long long)v[2]);
	return false;
}

/* ---- the watchdog ---------------------------------------------------------------- */

static void *watchdog_main(void *arg)
{
	unsigned int streams = *(unsigned int *)arg;
	double next_progress = start_time + PROGRESS_SEC;
	double reported[MAX_STREAMS + 1] = { 0 };

	while (!atomic_load(&watchdog_stop)) {
		double t;

		usleep(250 * 1000);
		t = now();
		if (t >= next_progress) {
			printf("# progress: %.0f s, %lu ioctls (%.0f/s), %lu failures\n", t - start_time,
			       (unsigned long)run->ioctls, run->ioctls / (t - start_time),
			       (unsigned long)run->failures);
			next_progress += PROGRESS_SEC;
		}
		for (unsigned int i = 0; i <= streams && i <= MAX_STREAMS; i++) {
			double started = atomic_load(&op_started[i]);

			if (started > 0 && started != reported[i] && t - started >= STUCK_OP_SEC) {
				reported[i] = started;
				printf("# stuck op: stream %u: a %s running for %.0f s (its '# slow op' line, when it returns, names its arguments)\n",
				       i, op_kinds[atomic_load(&op_running_kind[i])].name, t - started);
			}
		}
	}
	return NULL;
}

/* ---- main -------------------------------------------------------------------------- */

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--seed S] [--iterations N [--deadline S] | --seconds N] [--threads T]\n"
		"          [--profile full|lean] [--stream N --ops K] [--trace] [--no-netdev]\n"
		"  --seed S        the run's seed (default: from the clock; always printed)\n"
		"  --iterations N  stop after about N ioctls (default 100000)\n"
		"  --seconds N     run for N seconds instead (a release run)\n"
		"  --deadline S    fail unless --iterations are reached within S seconds (a CI budget)\n"
		"  --threads T     concurrent streams after stream 0 (default 6; 0: stream 0 only)\n"
		"  --profile P     full (default) or lean: the same kinds of op, edges and episodes,\n"
		"                  fewer bulk calls and long episodes (for a debug kernel)\n"
		"  --stream N      replay stream N alone, --ops K ops, then stop\n"
		"  --trace         print every ioctl before it runs\n"
		"  --no-netdev     do not add dummy devices and routes\n", prog);
	exit(2);
}

static int tap_number;

static void tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - sg_fuzz: ", ok ? "ok" : "not ok", ++tap_number);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct stream streams[MAX_STREAMS + 1];
	pthread_t threads[MAX_STREAMS], watchdog;
	unsigned int watched_streams;
	bool have_watchdog;
	unsigned long lsm_before, seq_ioctls, seq_failures;
	bool released, seed_given = false;
	unsigned int passed = 0, failed = 0;
	double seq_seconds, elapsed;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--seed") && v)
			opt.seed = strtoull(v, NULL, 0), seed_given = true, i++;
		else if (!strcmp(a, "--iterations") && v)
			opt.max_ioctls = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--seconds") && v)
			opt.seconds = strtod(v, NULL), i++;
		else if (!strcmp(a, "--deadline") && v)
			opt.deadline = strtod(v, NULL), i++;
		else if (!strcmp(a, "--threads") && v)
			opt.threads = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--profile") && v && profile_set(v))
			i++;
		else if (!strcmp(a, "--stream") && v)
			opt.only_stream = atoi(v), i++;
		else if (!strcmp(a, "--ops") && v)
			opt.max_ops = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--trace"))
			opt.trace = true;
		else if (!strcmp(a, "--no-netdev"))
			opt.no_netdev = true;
		else
			usage(argv[0]);
	}
	if (opt.threads > MAX_STREAMS)
		opt.threads = MAX_STREAMS;
	if (!seed_given)
		opt.seed = (__u64)time(NULL) ^ ((__u64)getpid() << 32);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_sigusr1);
	crash_handler_install();
	raise_fd_limit();

	printf("# sg_fuzz: seed %llu, profile %s (replay: --seed %llu --profile %s)\n",
	       (unsigned long long)opt.seed, profile->name, (unsigned long long)opt.seed,
	       profile->name);
	if (!network_is_isolated()) {
		printf("# a default route exists: run sg_fuzz in a network namespace of its own (scripts/lib/netns-exec)\n");
		return 2;
	}
	run = mmap(NULL, sizeof(*run), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (run == MAP_FAILED)
		return 2;
	memset(run, 0, sizeof(*run));
	atomic_flag_clear(&run->lock);
	netdev_setup();
	printf("# live before: groups %llu members %llu routes %llu\n", read_stat("groups_live"),
	       read_stat("members_live"), read_stat("routes_cached"));

	stream_init(&streams[0], opt.only_stream >= 0 ? opt.only_stream : 0, true);
	world_init(&streams[0]);
	lsm_before = read_stat("lsm_refusals");
	start_time = now();
	watched_streams = opt.only_stream >= 0 ? (unsigned int)opt.only_stream : opt.threads;
	have_watchdog = !pthread_create(&watchdog, NULL, watchdog_main, &watched_streams);

	if (opt.only_stream >= 0) {
		/* Replay: one stream alone, op by op. */
		run_ops(&streams[0], opt.max_ops ? opt.max_ops : opt.max_ioctls);
		stream_fini(&streams[0]);
		world_close();
		netdev_teardown();
		printf("# replayed stream %d: %lu ioctls, %lu failures\n", opt.only_stream,
		       (unsigned long)run->ioctls, (unsigned long)run->failures);
		return run->failures ? 1 : 0;
	}

	/*
	 * Stream 0 alone: with --threads 0 the whole run, else the profile's
	 * share of it (the threads overlap each other's waits and sleeps: that
	 * part runs faster).
	 */
	{
		double seconds = opt.seconds;
		unsigned long budget = opt.threads ? opt.max_ioctls / 100 * profile->alone_percent :
						     opt.max_ioctls;

		if (seconds > 0 && opt.threads)
			opt.seconds = seconds * profile->alone_percent / 100;
		while (budget_left(&streams[0], budget))
			run_ops(&streams[0], 1);
		opt.seconds = seconds;
		check_sent_counter(&streams[0], "end of stream 0");
	}
	seq_ioctls = run->ioctls;
	seq_failures = run->failures;
	seq_seconds = now() - start_time;
	tap(!seq_failures, "stream 0 alone: %lu ioctls, %lu ops, %lu failures (%.0f ioctls/s)",
	    seq_ioctls, streams[0].op + 1, seq_failures, seq_ioctls / seq_seconds);
	seq_failures ? failed++ : passed++;

	if (opt.threads) {
		unsigned long failures_before = run->failures;

		streams[0].alone = false;
		streams[0].expect_valid = false;
		for (unsigned int i = 0; i < opt.threads; i++) {
			streams[i + 1].id = i + 1;
			pthread_create(&threads[i], NULL, stream_main, &streams[i + 1]);
		}
		/* Stream 0 goes on too, concurrently with the others. */
		while (budget_left(&streams[0], opt.max_ioctls))
			run_ops(&streams[0], 1);
		for (unsigned int i = 0; i < opt.threads; i++)
			pthread_join(threads[i], NULL);
		tap(run->failures == failures_before,
		    "streams 0..%u concurrently: %lu ioctls, %lu failures", opt.threads,
		    (unsigned long)run->ioctls - seq_ioctls, (unsigned long)(run->failures - failures_before));
		run->failures == failures_before ? passed++ : failed++;
	}
	elapsed = now() - start_time;
	atomic_store(&watchdog_stop, true);
	if (have_watchdog)
		pthread_join(watchdog, NULL);
	if (opt.deadline > 0 && opt.seconds <= 0) {
		bool reached = run->ioctls >= opt.max_ioctls;

		tap(reached, "%lu of %lu ioctls within the %.0f s deadline (%.0f s)",
		    (unsigned long)run->ioctls, opt.max_ioctls, opt.deadline, elapsed);
		reached ? passed++ : failed++;
	}

	printf("# time per kind of op (count, mean us, max us, share):\n");
	{
		double total = 0;

		for (size_t k = 0; k < ARRAY_SIZE(op_kinds); k++)
			total += op_usec[k];
		for (size_t k = 0; k < ARRAY_SIZE(op_kinds); k++)
			printf("#   %-18s %8lu %8.0f %9lu %5.1f%%\n", op_kinds[k].name,
			       (unsigned long)op_count[k],
			       op_count[k] ? (double)op_usec[k] / op_count[k] : 0.0,
			       (unsigned long)op_max_usec[k], total ? 100.0 * op_usec[k] / total : 0.0);
	}
	printf("# episodes:");
	for (int e = 0; e < EP_KINDS; e++)
		printf(" %s %lu%s", episode_names[e], (unsigned long)run->episodes[e],
		       e + 1 < EP_KINDS ? "," : "\n");
	{
		unsigned long ops = 0;
		bool all = true;

		for (unsigned int i = 0; i <= opt.threads; i++)
			ops += streams[i].op + 1;
		/* At the weights of op_kinds[], 50000 ops (x the divisor) run each episode dozens of times. */
		for (int e = 0; e < EP_KINDS; e++)
			all &= run->episodes[e] > 0 || ops < 50000UL * profile->episode_divisor;
		tap(all, "every kind of episode ran (%lu ops)", ops);
		all ? passed++ : failed++;
	}

	stream_fini(&streams[0]);
	world_close();
	released = module_state_released();
	tap(released, "groups_live, members_live and routes_cached back to 0 after closing everything");
	released ? passed++ : failed++;
	{
		unsigned long lsm_after = read_stat("lsm_refusals");
		bool same = lsm_after == lsm_before || lsm_before == ~0UL;

		tap(same, "no LSM refusal counted without an LSM policy (lsm_refusals %lu -> %lu)",
		    lsm_before, lsm_after);
		same ? passed++ : failed++;
	}
	netdev_teardown();

	for (unsigned int i = 0; i < run->nr_signatures; i++)
		printf("# failure x%lu: %s\n#   first: %s\n", run->signatures[i].count,
		       run->signatures[i].key, run->signatures[i].first);
	printf("# ioctls: %lu in %.1f s: %.0f ioctls/s; seed %llu\n", (unsigned long)run->ioctls,
	       elapsed, run->ioctls / elapsed, (unsigned long long)opt.seed);
	printf("# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:0 error:0\n", passed, failed);
	return failed ? 1 : 0;
}
