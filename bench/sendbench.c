// SPDX-License-Identifier: GPL-2.0
/*
 * sendbench: per-packet send cost of group unicast methods, side by side in
 * one process (the micro benchmarks of Lahav et al., NOSSDAV'08, Figs. 1-3).
 *
 *   sendmsg    one sendmsg() per recipient (the paper's baseline)
 *   sendmmsg   one sendmmsg() per group (vlen = group size, at most 1024)
 *   uring      io_uring: one SQE (IORING_OP_SENDMSG) per recipient, one
 *              io_uring_submit_and_wait() per group, fixed file
 *   sendgroup  one SENDGROUP_IOC_SEND ioctl on /dev/sendgroup per group
 *              (only where the module is loaded)
 *   sendgroup-group  kernel-resident group: SENDGROUP_IOC_GROUP_CREATE and
 *              SENDGROUP_GROUP_IOC_ADD once per point (not timed), then one
 *              SENDGROUP_GROUP_IOC_SEND with one payload per group send: the
 *              recipient array is not passed per call, private bytes live in
 *              the kernel (where the module reports SENDGROUP_FEATURE_GROUPS)
 *   clone-floor  not a send: the floor of an in-kernel copy. One
 *              BPF_PROG_TEST_RUN per group send of a TC program
 *              (clone_floor.bpf.c) that bpf_clone_redirect()s the prepared
 *              UDP frame (headers + payload) group-size times to the
 *              --count-dev device's egress: a clone per copy, no socket, no
 *              route lookup, no checksum, the device's own transmit included
 *              (where BPF can be loaded and --count-dev is given)
 *
 * A method is one entry in methods[]: available(), optional per-point
 * setup()/teardown() (untimed), and run().
 *
 * Sweeps (each point: every method, REPS repetitions, methods interleaved
 * and rotated per repetition so drift and other load hit all alike):
 *   group    group size 1, 2, 4, ... 1024 at a 300-byte payload   (Fig. 1)
 *   payload  payload 100, 200, ... 1400 bytes at group size 1000    (Fig. 2)
 *   private  0, 10, ... 100 % of a 1000-byte datagram prepended per
 *            recipient (distinct bytes per recipient), group size 1000 (Fig. 3)
 *
 * Each measurement runs one method for a fixed number of group sends
 * (calibrated per point and method to last --time seconds) and records
 * wall time (CLOCK_MONOTONIC) and this process's CPU time, user + sys of all
 * its threads, io_uring's io-wq workers included: CLOCK_PROCESS_CPUTIME_ID,
 * the scheduler's exact runtime. getrusage(RUSAGE_SELF)'s user and sys are
 * recorded too, for the split only: they are tick samples scaled to that
 * runtime and kept monotonic (cputime_adjust), so over a 0.1 s window their
 * sum can lag or lead it (in the TCG guest it was sometimes 0). Also the
 * thread's runqueue wait (schedstat) and context switches: signs of other load.
 *
 * The caller provides the destinations (scripts/bench/send): a source
 * address to bind (--src) and a /24 whose .2 ... .251 are routed to a device
 * that drops everything (--dst-net); recipient i is (.2 + i % 250, port
 * 20000 + i). With --count-dev DEV the device's tx counters are read before
 * and after the run and compared with the number of datagrams sent.
 *
 * Output: a human summary on stdout, raw rows + per-point summaries as JSON
 * (--json) and CSV (--csv). Exit status: 0, 1 on a usage or setup error,
 * 3 when any send failed or the device counters disagree.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <net/if.h>

#include <linux/sendgroup.h>

#define MAX_GROUP	1024
#define MAX_PAYLOAD	1400
#define PRIVATE_TOTAL	1000	/* the private-data sweep's datagram size */
#define MAX_REPS	64
#define DST_HOSTS	250
#define PORT_BASE	20000

/* ---------- one point of a sweep ---------- */

struct point {
	const char *sweep;	/* "group", "payload", "private" */
	int group;		/* recipients per group send */
	int shared;		/* shared payload bytes */
	int private_len;	/* prepended bytes per recipient */
	int private_pct;	/* private_len as % of the datagram (private sweep) */
};

/* ---------- state shared by all methods ---------- */

struct ctx {
	int fd;			/* UDP socket, bound to --src */
	int sg;			/* /dev/sendgroup, or -1 */
	struct in_addr src;	/* --src */
	struct sockaddr_in dst[MAX_GROUP];
	unsigned char shared[65536];
	unsigned char *private;	/* MAX_GROUP * PRIVATE_TOTAL, distinct per recipient */
	/* per-point message descriptions, built by build_msgs() */
	struct iovec iov[MAX_GROUP][2];
	struct msghdr msg[MAX_GROUP];
	struct mmsghdr mmsg[MAX_GROUP];
	struct sendgroup_recipient rcpt[MAX_GROUP];
	struct sendgroup_member member[MAX_GROUP];
	int group_fd;		/* kernel-resident group of the current point, or -1 */
	__u64 sg_features;	/* SENDGROUP_IOC_INFO features */
	struct io_uring ring;
	bool ring_ok;
	/* clone-floor: the program, the frame it clones, the device the clones go to */
	struct bpf_object *floor_obj;
	int floor_prog;		/* or -1 */
	const char *floor_why;	/* why clone-floor is unavailable */
	int floor_ifindex;
	int floor_burst;	/* copies per BPF_PROG_TEST_RUN, 0: the group size */
	unsigned char frame[ETH_HLEN + sizeof(struct iphdr) + sizeof(struct udphdr) + MAX_PAYLOAD];
	unsigned int frame_len;
	unsigned ring_flags;
	const struct point *pt;
	uint64_t packets;	/* datagrams reported sent, all methods, calibration included */
	uint64_t errors;	/* datagrams whose send failed */
	int first_errno;
};

static void note_error(struct ctx *c, int err)
{
	c->errors++;
	if (!c->first_errno)
		c->first_errno = err;
}

/* ---------- methods ---------- */

/* Each run() sends `iters` group sends of the current point. */
struct method {
	const char *name;
	bool needs_module;
	const char *(*available)(struct ctx *c);	/* NULL if usable, else why not */
	void (*run)(struct ctx *c, long iters);
	void (*setup)(struct ctx *c);		/* per point, untimed; may be NULL */
	void (*teardown)(struct ctx *c);	/* per point, untimed; may be NULL */
};

static const char *always(struct ctx *c) { (void)c; return NULL; }

static void run_sendmsg(struct ctx *c, long iters)
{
	int g = c->pt->group;

	for (long it = 0; it < iters; it++)
		for (int i = 0; i < g; i++) {
			ssize_t n = sendmsg(c->fd, &c->msg[i], 0);

			if (n < 0)
				note_error(c, errno);
			else
				c->packets++;
		}
}

static void run_sendmmsg(struct ctx *c, long iters)
{
	int g = c->pt->group;

	for (long it = 0; it < iters; it++) {
		int done = 0;

		while (done < g) {
			int n = sendmmsg(c->fd, c->mmsg + done, g - done, 0);

			if (n < 0) {	/* the first datagram of the batch failed */
				note_error(c, errno);
				done++;
				continue;
			}
			c->packets += n;
			done += n;
		}
	}
}

static const char *uring_available(struct ctx *c)
{
	return c->ring_ok ? NULL : "io_uring_queue_init failed";
}

static void run_uring(struct ctx *c, long iters)
{
	int g = c->pt->group;
	struct io_uring *ring = &c->ring;

	for (long it = 0; it < iters; it++) {
		for (int i = 0; i < g; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			io_uring_prep_sendmsg(sqe, 0 /* fixed file 0 */, &c->msg[i], 0);
			sqe->flags |= IOSQE_FIXED_FILE;
			sqe->user_data = i;
		}
		int ret = io_uring_submit_and_wait(ring, g);

		if (ret < 0) {
			fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-ret));
			exit(1);
		}
		int seen = 0;

		while (seen < g) {
			struct io_uring_cqe *cqe;
			unsigned head, n = 0;

			if (io_uring_wait_cqe(ring, &cqe) < 0) {
				fprintf(stderr, "io_uring_wait_cqe failed\n");
				exit(1);
			}
			io_uring_for_each_cqe(ring, head, cqe) {
				if (cqe->res < 0)
					note_error(c, -cqe->res);
				else
					c->packets++;
				n++;
			}
			io_uring_cq_advance(ring, n);
			seen += n;
		}
	}
}

/*
 * Counts one sendgroup ioctl to @g recipients that returned @n: all @g failed
 * with errno when it refused the call, else @n were sent and the rest failed
 * (results[] is not requested, so their errno is unknown: EIO).
 */
static void count_group_send(struct ctx *c, int n, int g)
{
	if (n < 0) {
		note_error(c, errno);
		c->errors += g - 1;
		return;
	}
	c->packets += n;
	for (int i = n; i < g; i++)
		note_error(c, EIO);
}

static const char *sendgroup_available(struct ctx *c)
{
	return c->sg >= 0 ? NULL : "/dev/sendgroup not present (module not loaded)";
}

static void run_sendgroup(struct ctx *c, long iters)
{
	int g = c->pt->group;
	struct sendgroup_send_args a = {
		.size = sizeof(a),
		.fd = c->fd,
		.shared = (uintptr_t)c->shared,
		.shared_len = c->pt->shared,
		.recipient_size = sizeof(struct sendgroup_recipient),
		.recipients = (uintptr_t)c->rcpt,
		.recipient_count = g,
	};

	for (long it = 0; it < iters; it++)
		count_group_send(c, ioctl(c->sg, SENDGROUP_IOC_SEND, &a), g);
}

static const char *group_available(struct ctx *c)
{
	if (c->sg < 0)
		return "/dev/sendgroup not present (module not loaded)";
	if (!(c->sg_features & SENDGROUP_FEATURE_GROUPS))
		return "the loaded module has no kernel-resident groups";
	return NULL;
}

static void group_setup(struct ctx *c)
{
	struct sendgroup_group_create_args ca = { .size = sizeof(ca), .fd = c->fd };
	int g = c->pt->group;

	c->group_fd = ioctl(c->sg, SENDGROUP_IOC_GROUP_CREATE, &ca);
	if (c->group_fd < 0) {
		perror("SENDGROUP_IOC_GROUP_CREATE");
		exit(1);
	}
	for (int i = 0; i < g; i++) {
		c->member[i].id = i;
		c->member[i].recipient = c->rcpt[i];	/* prepend copied into the kernel */
	}
	struct sendgroup_members_args ma = {
		.size = sizeof(ma), .members = (uintptr_t)c->member, .count = g,
		.member_size = sizeof(struct sendgroup_member),
	};
	if (ioctl(c->group_fd, SENDGROUP_GROUP_IOC_ADD, &ma) < 0) {
		perror("SENDGROUP_GROUP_IOC_ADD");
		exit(1);
	}
}

static void group_teardown(struct ctx *c)
{
	close(c->group_fd);
	c->group_fd = -1;
}

static void run_group(struct ctx *c, long iters)
{
	int g = c->pt->group;
	struct sendgroup_payload pl = { .data = (uintptr_t)c->shared, .len = c->pt->shared };
	struct sendgroup_group_send_args a = {
		.size = sizeof(a), .payload_count = 1, .payloads = (uintptr_t)&pl,
	};

	for (long it = 0; it < iters; it++) {
		a.failure_count = 0;
		count_group_send(c, ioctl(c->group_fd, SENDGROUP_GROUP_IOC_SEND, &a), g);
	}
}

/* ---------- clone-floor ---------- */

static const char *floor_available(struct ctx *c)
{
	return c->floor_prog >= 0 ? NULL : c->floor_why;
}

static uint16_t ip_checksum(const void *hdr, size_t len)
{
	const uint16_t *w = hdr;
	uint32_t sum = 0;

	for (size_t i = 0; i < len / 2; i++)
		sum += w[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* The datagram the other methods send to recipient 0, as a frame (checksum-less UDP). */
static void floor_setup(struct ctx *c)
{
	const struct point *p = c->pt;
	struct ethhdr *eth = (void *)c->frame;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	unsigned int body = p->private_len + p->shared;

	memset(c->frame, 0, sizeof(c->frame));
	memset(eth->h_dest, 0x02, ETH_ALEN);
	memset(eth->h_source, 0x04, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*udp) + body);
	ip->saddr = c->src.s_addr;
	ip->daddr = c->dst[0].sin_addr.s_addr;
	ip->check = ip_checksum(ip, sizeof(*ip));
	udp->source = htons(PORT_BASE);
	udp->dest = c->dst[0].sin_port;
	udp->len = htons(sizeof(*udp) + body);
	memcpy(udp + 1, c->private, p->private_len);
	memcpy((unsigned char *)(udp + 1) + p->private_len, c->shared, p->shared);
	c->frame_len = sizeof(*eth) + sizeof(*ip) + sizeof(*udp) + body;
}

/*
 * One BPF_PROG_TEST_RUN per --floor-burst copies (default: the whole group):
 * the program runs with bottom halves off, so a device that queues (veth's
 * 256-frame ring towards its peer) is drained only between runs.
 */
static void run_floor(struct ctx *c, long iters)
{
	int g = c->pt->group;
	struct __sk_buff skb = { .cb = { 0, c->floor_ifindex } };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		    .data_in = c->frame, .data_size_in = c->frame_len,
		    .ctx_in = &skb, .ctx_size_in = sizeof(skb), .repeat = 1);

	for (long it = 0; it < iters; it++) {
		for (int done = 0; done < g; done += skb.cb[0]) {
			skb.cb[0] = c->floor_burst && c->floor_burst < g - done ? c->floor_burst : g - done;
			if (bpf_prog_test_run_opts(c->floor_prog, &opts) < 0) {
				note_error(c, errno);
				c->errors += skb.cb[0] - 1;
				continue;
			}
			count_group_send(c, skb.cb[0] - (int)opts.retval, skb.cb[0]);
		}
	}
}

/* Load clone_floor.bpf.o from beside this executable; on failure say why in c->floor_why. */
static void setup_floor(struct ctx *c, const char *count_dev)
{
	static char why[4096 + 64];
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	struct bpf_program *prog;

	c->floor_prog = -1;
	c->floor_why = why;
	if (!count_dev) {
		snprintf(why, sizeof(why), "needs --count-dev (the device the copies go to)");
		return;
	}
	c->floor_ifindex = if_nametoindex(count_dev);
	if (!c->floor_ifindex) {
		snprintf(why, sizeof(why), "no device %s", count_dev);
		return;
	}
	if (n < 0) {
		snprintf(why, sizeof(why), "readlink /proc/self/exe: %s", strerror(errno));
		return;
	}
	path[n] = 0;
	strcpy(strrchr(path, '/') + 1, "clone_floor.bpf.o");
	c->floor_obj = bpf_object__open_file(path, NULL);
	if (!c->floor_obj) {
		snprintf(why, sizeof(why), "cannot open %s: %s", path, strerror(errno));
		return;
	}
	if (bpf_object__load(c->floor_obj)) {
		snprintf(why, sizeof(why), "cannot load %s: %s", path, strerror(errno));
		bpf_object__close(c->floor_obj);
		c->floor_obj = NULL;
		return;
	}
	prog = bpf_object__find_program_by_name(c->floor_obj, "clone_floor");
	c->floor_prog = prog ? bpf_program__fd(prog) : -1;
	if (c->floor_prog < 0)
		snprintf(why, sizeof(why), "no program clone_floor in %s", path);
}

static const struct method methods[] = {
	{ "sendmsg",         false, always,              run_sendmsg,   NULL, NULL },
	{ "sendmmsg",        false, always,              run_sendmmsg,  NULL, NULL },
	{ "uring",           false, uring_available,     run_uring,     NULL, NULL },
	{ "sendgroup",       true,  sendgroup_available, run_sendgroup, NULL, NULL },
	{ "sendgroup-group", true,  group_available,     run_group,     group_setup, group_teardown },
	{ "clone-floor",     false, floor_available,     run_floor,     floor_setup, NULL },
};
#define NMETHODS (int)(sizeof(methods) / sizeof(methods[0]))

/* ---------- setup ---------- */

static void build_msgs(struct ctx *c, const struct point *p)
{
	c->pt = p;
	for (int i = 0; i < p->group; i++) {
		unsigned char *priv = c->private + (size_t)i * PRIVATE_TOTAL;
		int k = 0;

		if (p->private_len) {
			c->iov[i][k].iov_base = priv;
			c->iov[i][k++].iov_len = p->private_len;
		}
		if (p->shared) {
			c->iov[i][k].iov_base = c->shared;
			c->iov[i][k++].iov_len = p->shared;
		}
		c->msg[i] = (struct msghdr){
			.msg_name = &c->dst[i], .msg_namelen = sizeof(c->dst[i]),
			.msg_iov = c->iov[i], .msg_iovlen = k,
		};
		c->mmsg[i].msg_hdr = c->msg[i];
		c->mmsg[i].msg_len = 0;
		struct sendgroup_recipient *r = &c->rcpt[i];

		memset(r, 0, sizeof(*r));
		r->family = AF_INET;
		r->port = ntohs(c->dst[i].sin_port);
		memcpy(r->addr, &c->dst[i].sin_addr, 4);
		r->prepend = p->private_len ? (uintptr_t)priv : 0;
		r->prepend_len = p->private_len;
	}
}

static void setup_ring(struct ctx *c)
{
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	for (unsigned i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p = { .flags = flag_sets[i] };

		if (io_uring_queue_init_params(MAX_GROUP, &c->ring, &p) == 0) {
			if (io_uring_register_files(&c->ring, &c->fd, 1) < 0) {
				io_uring_queue_exit(&c->ring);
				return;
			}
			c->ring_ok = true;
			c->ring_flags = flag_sets[i];
			return;
		}
	}
}

/* ---------- measurement ---------- */

struct sample {
	double wall_ns, cpu_ns, user_ns, sys_ns;
	double run_ns, delay_ns;	/* this thread's on-CPU and runqueue-wait time (schedstat) */
	long nivcsw, nvcsw;
	uint64_t packets, errors;
};

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static double tv_ns(struct timeval t) { return t.tv_sec * 1e9 + t.tv_usec * 1e3; }

static double process_cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* /proc/thread-self/schedstat: time on CPU, time waiting on a runqueue (ns). */
static void schedstat(double *run, double *delay)
{
	unsigned long long r = 0, d = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");

	if (f) {
		if (fscanf(f, "%llu %llu", &r, &d) != 2)
			r = d = 0;
		fclose(f);
	}
	*run = r;
	*delay = d;
}

static struct sample measure(struct ctx *c, const struct method *m, long iters)
{
	struct rusage r0, r1;
	uint64_t p0 = c->packets, e0 = c->errors;
	double run0, delay0, run1, delay1;

	schedstat(&run0, &delay0);
	getrusage(RUSAGE_SELF, &r0);
	double c0 = process_cpu_ns();
	double t0 = now_ns();

	m->run(c, iters);
	double t1 = now_ns();
	double c1 = process_cpu_ns();

	getrusage(RUSAGE_SELF, &r1);
	schedstat(&run1, &delay1);
	return (struct sample){
		.wall_ns = t1 - t0,
		.cpu_ns = c1 - c0,
		.run_ns = run1 - run0,
		.delay_ns = delay1 - delay0,
		.user_ns = tv_ns(r1.ru_utime) - tv_ns(r0.ru_utime),
		.sys_ns = tv_ns(r1.ru_stime) - tv_ns(r0.ru_stime),
		.nivcsw = r1.ru_nivcsw - r0.ru_nivcsw,
		.nvcsw = r1.ru_nvcsw - r0.ru_nvcsw,
		.packets = c->packets - p0,
		.errors = c->errors - e0,
	};
}

/* Group sends needed for one measurement to last about `seconds`. */
static long calibrate(struct ctx *c, const struct method *m, double seconds)
{
	long iters = 1;

	m->run(c, 1);	/* warm up: page faults, route and neighbour lookups */
	for (;;) {
		struct sample s = measure(c, m, iters);

		if (s.wall_ns >= 2e6 || iters >= (1L << 30)) {
			double want = seconds * 1e9 / (s.wall_ns / iters);

			return want < 1 ? 1 : (long)want;
		}
		iters *= 4;
	}
}

/* ---------- statistics ---------- */

static void mean_sd(const double *x, int n, double *mean, double *sd)
{
	double s = 0, v = 0;

	for (int i = 0; i < n; i++)
		s += x[i];
	*mean = s / n;
	for (int i = 0; i < n; i++)
		v += (x[i] - *mean) * (x[i] - *mean);
	*sd = n > 1 ? sqrt(v / (n - 1)) : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *x, int n)
{
	double t[MAX_REPS];

	memcpy(t, x, n * sizeof(*t));
	qsort(t, n, sizeof(*t), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ---------- output ---------- */

/* A double as a JSON number, or null when it is not finite (rotating buffers). */
static const char *jnum(double v)
{
	static char buf[16][32];
	static int i;
	char *b = buf[i++ % 16];

	if (isfinite(v))
		snprintf(b, sizeof(buf[0]), "%.4f", v);
	else
		snprintf(b, sizeof(buf[0]), "null");
	return b;
}

static FILE *json, *csv;
static bool json_first_row = true, json_first_sum = true;
static char *json_summaries;	/* buffered summary objects, written after the rows */
static size_t json_summaries_len;

static void sum_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);

	va_end(ap);
	if (n < 0)
		exit(1);
	json_summaries = realloc(json_summaries, json_summaries_len + n + 1);
	memcpy(json_summaries + json_summaries_len, s, n + 1);
	json_summaries_len += n;
	free(s);
}

static void read_loadavg(double *l1)
{
	FILE *f = fopen("/proc/loadavg", "r");

	*l1 = -1;
	if (f) {
		if (fscanf(f, "%lf", l1) != 1)
			*l1 = -1;
		fclose(f);
	}
}

static int read_dev_counter(const char *dev, const char *name, uint64_t *v)
{
	char path[256];
	unsigned long long x;

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", dev, name);
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	int ok = fscanf(f, "%llu", &x) == 1;

	fclose(f);
	*v = x;
	return ok ? 0 : -1;
}

/* ---------- the run ---------- */

struct opts {
	const char *sweeps, *methods, *json, *csv, *label, *count_dev;
	int floor_burst;
	struct in_addr src, dst_net;
	int reps;
	double seconds;
	bool quick, progress;
};

static bool method_selected(const struct opts *o, const char *name)
{
	const char *s = o->methods;
	size_t n = strlen(name);

	if (!strcmp(s, "all"))
		return true;
	while (*s) {
		const char *e = strchrnul(s, ',');

		if ((size_t)(e - s) == n && !strncmp(s, name, n))
			return true;
		s = *e ? e + 1 : e;
	}
	return false;
}

static int make_points(const struct opts *o, struct point *pts)
{
	int n = 0;
	bool all = !strcmp(o->sweeps, "all");

	if (all || strstr(o->sweeps, "group")) {
		static const int quick[] = { 1, 8, 64, 1024 };

		if (o->quick)
			for (unsigned i = 0; i < sizeof(quick) / sizeof(*quick); i++)
				pts[n++] = (struct point){ "group", quick[i], 300, 0, 0 };
		else
			for (int g = 1; g <= MAX_GROUP; g *= 2)
				pts[n++] = (struct point){ "group", g, 300, 0, 0 };
	}
	if (all || strstr(o->sweeps, "payload")) {
		for (int b = 100; b <= MAX_PAYLOAD; b += o->quick ? 1300 : 100)
			pts[n++] = (struct point){ "payload", 1000, b, 0, 0 };
	}
	if (all || strstr(o->sweeps, "private")) {
		for (int pct = 0; pct <= 100; pct += o->quick ? 50 : 10) {
			int priv = PRIVATE_TOTAL * pct / 100;

			pts[n++] = (struct point){ "private", 1000, PRIVATE_TOTAL - priv, priv, pct };
		}
	}
	/*
	 * The issue's performance goal: one recipient, and 1000 recipients, at
	 * 1000 B; goal-1 or goal-1000 measures one of the two (for profiling).
	 */
	if (strstr(o->sweeps, "goal")) {
		bool only1000 = strstr(o->sweeps, "goal-1000");
		bool only1 = !only1000 && strstr(o->sweeps, "goal-1");

		if (!only1000)
			pts[n++] = (struct point){ "goal", 1, 1000, 0, 0 };
		if (!only1)
			pts[n++] = (struct point){ "goal", 1000, 1000, 0, 0 };
	}
	return n;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: sendbench --src A.B.C.D --dst-net A.B.C.0 [--sweeps all|group,payload,private,goal|goal-1|goal-1000]\n"
		"                 [--methods all|sendmsg,sendmmsg,uring,sendgroup,sendgroup-group,clone-floor] [--reps N] [--time SEC]\n"
		"                 [--quick] [--json FILE] [--csv FILE] [--label TEXT] [--count-dev DEV]\n"
		"                 [--floor-burst N]  (clone-floor: copies per BPF_PROG_TEST_RUN, default the group)\n");
	exit(1);
}

int main(int argc, char **argv)
{
	struct opts o = { .sweeps = "all", .methods = "all", .reps = 10, .seconds = 0.1,
			  .label = "", .progress = isatty(2) };
	static const struct option lo[] = {
		{ "src", 1, 0, 's' }, { "dst-net", 1, 0, 'd' }, { "sweeps", 1, 0, 'w' },
		{ "methods", 1, 0, 'm' }, { "reps", 1, 0, 'r' }, { "time", 1, 0, 't' },
		{ "quick", 0, 0, 'q' }, { "json", 1, 0, 'j' }, { "csv", 1, 0, 'c' },
		{ "label", 1, 0, 'l' }, { "count-dev", 1, 0, 'D' }, { "floor-burst", 1, 0, 'B' }, { 0 }
	};
	bool have_src = false, have_dst = false, reps_set = false, time_set = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 's': have_src = inet_pton(AF_INET, optarg, &o.src) == 1; break;
		case 'd': have_dst = inet_pton(AF_INET, optarg, &o.dst_net) == 1; break;
		case 'w': o.sweeps = optarg; break;
		case 'm': o.methods = optarg; break;
		case 'r': o.reps = atoi(optarg); reps_set = true; break;
		case 't': o.seconds = atof(optarg); time_set = true; break;
		case 'q': o.quick = true; break;
		case 'j': o.json = optarg; break;
		case 'c': o.csv = optarg; break;
		case 'l': o.label = optarg; break;
		case 'D': o.count_dev = optarg; break;
		case 'B': o.floor_burst = atoi(optarg); break;
		default: usage();
		}
	}
	if (!have_src || !have_dst || optind != argc)
		usage();
	if (o.quick) {
		if (!reps_set)
			o.reps = 2;
		if (!time_set)
			o.seconds = 0.01;
	}
	if (o.reps < 1 || o.reps > MAX_REPS || o.seconds <= 0 || o.floor_burst < 0)
		usage();

	static struct ctx c;

	c.private = malloc((size_t)MAX_GROUP * PRIVATE_TOTAL);
	if (!c.private)
		return 1;
	srandom(42);
	for (size_t i = 0; i < sizeof(c.shared); i++)
		c.shared[i] = random();
	for (size_t i = 0; i < (size_t)MAX_GROUP * PRIVATE_TOTAL; i++)
		c.private[i] = random();
	uint32_t net = ntohl(o.dst_net.s_addr) & 0xffffff00u;

	for (int i = 0; i < MAX_GROUP; i++) {
		c.dst[i].sin_family = AF_INET;
		c.dst[i].sin_addr.s_addr = htonl(net | (2 + i % DST_HOSTS));
		c.dst[i].sin_port = htons(PORT_BASE + i);
	}

	c.fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = o.src };
	int sndbuf = 16 << 20;

	if (c.fd < 0 || bind(c.fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		perror("socket/bind --src");
		return 1;
	}
	/* Room for a whole group in flight: a full send buffer would make the
	 * blocking methods sleep (wall time that is not send cost). */
	if (setsockopt(c.fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
		setsockopt(c.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	c.sg = open(SENDGROUP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	c.group_fd = -1;
	if (c.sg >= 0) {
		struct sendgroup_info info = { .size = sizeof(info) };

		if (ioctl(c.sg, SENDGROUP_IOC_INFO, &info) == 0)
			c.sg_features = info.features;
	}
	setup_ring(&c);
	c.src = o.src;
	c.floor_burst = o.floor_burst;
	setup_floor(&c, o.count_dev);

	bool usable[NMETHODS];
	int nm = 0, baseline = -1;

	for (int m = 0; m < NMETHODS; m++) {
		usable[m] = false;
		if (!method_selected(&o, methods[m].name))
			continue;
		const char *why = methods[m].available(&c);

		if (why) {
			fprintf(stderr, "sendbench: skipping %s: %s\n", methods[m].name, why);
			continue;
		}
		usable[m] = true;
		nm++;
		if (!strcmp(methods[m].name, "sendmsg"))
			baseline = m;
	}
	if (!nm) {
		fprintf(stderr, "sendbench: no usable method selected\n");
		return 1;
	}

	struct point pts[64];
	int npts = make_points(&o, pts);

	if (!npts)
		usage();

	struct utsname u;

	uname(&u);
	uint64_t dev_tx0 = 0, dev_drop0 = 0;
	bool dev_ok = o.count_dev &&
		      !read_dev_counter(o.count_dev, "tx_packets", &dev_tx0) &&
		      !read_dev_counter(o.count_dev, "tx_dropped", &dev_drop0);
	if (o.count_dev && !dev_ok) {
		fprintf(stderr, "sendbench: cannot read counters of %s\n", o.count_dev);
		return 1;
	}

	if (o.json) {
		json = fopen(o.json, "w");
		if (!json) {
			perror(o.json);
			return 1;
		}
		double l1;

		read_loadavg(&l1);
		fprintf(json, "{\n\"meta\": {\"label\": \"%s\", \"kernel\": \"%s\", \"machine\": \"%s\", "
			"\"cpus_online\": %ld, \"reps\": %d, \"seconds_per_measurement\": %g, \"quick\": %s, "
			"\"io_uring_setup_flags\": %u, \"sendgroup_device\": %s, \"sendgroup_features\": %llu, \"loadavg_start\": %.2f, "
			"\"methods\": [",
			o.label, u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN), o.reps, o.seconds,
			o.quick ? "true" : "false", c.ring_flags, c.sg >= 0 ? "true" : "false",
			(unsigned long long)c.sg_features, l1);
		for (int m = 0, k = 0; m < NMETHODS; m++)
			if (usable[m])
				fprintf(json, "%s\"%s\"", k++ ? ", " : "", methods[m].name);
		fprintf(json, "]},\n\"rows\": [\n");
	}
	if (o.csv) {
		csv = fopen(o.csv, "w");
		if (!csv) {
			perror(o.csv);
			return 1;
		}
		fprintf(csv, "label,kernel,sweep,group,shared,private,private_pct,method,rep,iters,"
			     "packets,errors,wall_ns,cpu_ns,user_ns,sys_ns,run_ns,delay_ns,nivcsw,nvcsw\n");
	}

	printf("# sendbench %s on %s (%ld CPUs online), %d reps x %.3g s per measurement%s\n",
	       o.label, u.release, sysconf(_SC_NPROCESSORS_ONLN), o.reps, o.seconds,
	       o.quick ? " (quick)" : "");
	printf("# ns/pkt = wall time per datagram; cpu = process CPU time (user+sys) per datagram; x = sendmsg's ns/pkt / this (same rep);\n"
	       "# rq-wait = time runnable but not running (other load), per datagram; ivcsw/vcsw = context switches\n");
	printf("%-8s %5s %5s %5s  %-15s %10s %8s %10s %8s %7s %6s %8s %7s %6s\n", "sweep", "group", "shared",
	       "priv", "method", "ns/pkt", "sd", "cpu ns/pkt", "x", "sd", "x cpu", "rq-wait", "ivcsw", "vcsw");

	for (int pi = 0; pi < npts; pi++) {
		const struct point *p = &pts[pi];
		long iters[NMETHODS];
		struct sample s[NMETHODS][MAX_REPS];
		double l_before, l_after;

		build_msgs(&c, p);
		read_loadavg(&l_before);
		for (int m = 0; m < NMETHODS; m++)
			if (usable[m] && methods[m].setup)
				methods[m].setup(&c);
		for (int m = 0; m < NMETHODS; m++)
			if (usable[m])
				iters[m] = calibrate(&c, &methods[m], o.seconds);
		for (int r = 0; r < o.reps; r++) {
			/* Interleave, rotating the order every repetition. */
			for (int k = 0; k < NMETHODS; k++) {
				int m = (k + r) % NMETHODS;

				if (!usable[m])
					continue;
				if (o.progress)
					fprintf(stderr, "\r[%2d/%d] %-7s group %4d shared %4d private %4d  rep %d/%d  %-10s",
						pi + 1, npts, p->sweep, p->group, p->shared, p->private_len,
						r + 1, o.reps, methods[m].name);
				s[m][r] = measure(&c, &methods[m], iters[m]);
			}
		}
		if (o.progress)
			fprintf(stderr, "\r%100s\r", "");
		for (int m = 0; m < NMETHODS; m++)
			if (usable[m] && methods[m].teardown)
				methods[m].teardown(&c);
		read_loadavg(&l_after);

		for (int m = 0; m < NMETHODS; m++) {
			if (!usable[m])
				continue;
			double ns[MAX_REPS], cpu[MAX_REPS], x[MAX_REPS], xc[MAX_REPS];
			long ivcsw = 0, vcsw = 0;
			double wait = 0, pk_all = 0;

			for (int r = 0; r < o.reps; r++) {
				struct sample *q = &s[m][r];
				double pk = q->packets ? (double)q->packets : NAN;

				ns[r] = q->wall_ns / pk;
				cpu[r] = q->cpu_ns / pk;
				ivcsw += q->nivcsw;
				vcsw += q->nvcsw;
				wait += q->delay_ns;
				pk_all += q->packets;
				if (baseline >= 0) {
					struct sample *b = &s[baseline][r];

					x[r] = (b->wall_ns / b->packets) / ns[r];
					xc[r] = (b->cpu_ns / b->packets) / cpu[r];
				} else {
					x[r] = xc[r] = NAN;
				}
				if (json)
					fprintf(json, "%s{\"sweep\": \"%s\", \"group\": %d, \"shared\": %d, "
						"\"private\": %d, \"private_pct\": %d, \"method\": \"%s\", "
						"\"rep\": %d, \"iters\": %ld, \"packets\": %llu, \"errors\": %llu, "
						"\"wall_ns\": %.0f, \"cpu_ns\": %.0f, \"user_ns\": %.0f, \"sys_ns\": %.0f, \"run_ns\": %.0f, \"delay_ns\": %.0f, \"nivcsw\": %ld, \"nvcsw\": %ld}",
						json_first_row ? "" : ",\n", p->sweep, p->group, p->shared,
						p->private_len, p->private_pct, methods[m].name, r, iters[m],
						(unsigned long long)q->packets, (unsigned long long)q->errors,
						q->wall_ns, q->cpu_ns, q->user_ns, q->sys_ns, q->run_ns, q->delay_ns, q->nivcsw, q->nvcsw);
				json_first_row = false;
				if (csv)
					fprintf(csv, "%s,%s,%s,%d,%d,%d,%d,%s,%d,%ld,%llu,%llu,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%ld,%ld\n",
						o.label, u.release, p->sweep, p->group, p->shared, p->private_len,
						p->private_pct, methods[m].name, r, iters[m],
						(unsigned long long)q->packets, (unsigned long long)q->errors,
						q->wall_ns, q->cpu_ns, q->user_ns, q->sys_ns, q->run_ns, q->delay_ns,
						q->nivcsw, q->nvcsw);
			}
			double ns_m, ns_sd, cpu_m, cpu_sd, x_m, x_sd, xc_m, xc_sd;

			mean_sd(ns, o.reps, &ns_m, &ns_sd);
			mean_sd(cpu, o.reps, &cpu_m, &cpu_sd);
			mean_sd(x, o.reps, &x_m, &x_sd);
			mean_sd(xc, o.reps, &xc_m, &xc_sd);
			printf("%-8s %5d %5d %5d  %-15s %10.1f %8.1f %10.1f %8.3f %7.3f %6.3f %8.1f %7ld %6ld\n",
			       p->sweep, p->group, p->shared, p->private_len, methods[m].name,
			       ns_m, ns_sd, cpu_m, x_m, x_sd, xc_m, wait / pk_all, ivcsw, vcsw);
			if (json) {
				/* A CPU time of 0 (coarse guest clocks under TCG) makes a
				 * factor infinite or NaN: JSON gets null, not "inf". */
				sum_printf("%s{\"sweep\": \"%s\", \"group\": %d, \"shared\": %d, \"private\": %d, "
					   "\"private_pct\": %d, \"method\": \"%s\", \"reps\": %d, "
					   "\"ns_per_pkt\": %s, \"ns_per_pkt_sd\": %s, "
					   "\"cpu_ns_per_pkt\": %s, \"cpu_ns_per_pkt_sd\": %s, "
					   "\"factor\": %s, \"factor_sd\": %s, \"factor_median\": %s, "
					   "\"factor_cpu\": %s, \"factor_cpu_sd\": %s, \"factor_cpu_median\": %s, "
					   "\"runqueue_wait_ns_per_pkt\": %s, \"nivcsw\": %ld, \"nvcsw\": %ld, "
					   "\"loadavg_before\": %.2f, \"loadavg_after\": %.2f}",
					   json_first_sum ? "" : ",\n", p->sweep, p->group, p->shared,
					   p->private_len, p->private_pct, methods[m].name, o.reps,
					   jnum(ns_m), jnum(ns_sd), jnum(cpu_m), jnum(cpu_sd),
					   jnum(x_m), jnum(x_sd), jnum(median(x, o.reps)),
					   jnum(xc_m), jnum(xc_sd), jnum(median(xc, o.reps)),
					   jnum(wait / pk_all), ivcsw, vcsw, l_before, l_after);
				json_first_sum = false;
			}
		}
		fflush(stdout);
	}

	int status = 0;
	uint64_t dev_tx1 = 0, dev_drop1 = 0;

	if (dev_ok) {
		read_dev_counter(o.count_dev, "tx_packets", &dev_tx1);
		read_dev_counter(o.count_dev, "tx_dropped", &dev_drop1);
	}
	uint64_t tx = dev_tx1 - dev_tx0, dropped = dev_drop1 - dev_drop0;

	printf("# datagrams sent: %llu, failed sends: %llu%s%s\n", (unsigned long long)c.packets,
	       (unsigned long long)c.errors, c.first_errno ? ", first error: " : "",
	       c.first_errno ? strerror(c.first_errno) : "");
	if (dev_ok) {
		printf("# %s: tx_packets +%llu, tx_dropped +%llu\n", o.count_dev,
		       (unsigned long long)tx, (unsigned long long)dropped);
		if (tx + dropped != c.packets) {
			printf("# MISMATCH: %s counted %llu datagrams, sendbench sent %llu\n", o.count_dev,
			       (unsigned long long)(tx + dropped), (unsigned long long)c.packets);
			status = 3;
		}
	}
	if (c.errors)
		status = 3;
	if (json) {
		double l1;

		read_loadavg(&l1);
		fprintf(json, "\n],\n\"summary\": [\n%s\n],\n\"totals\": {\"packets\": %llu, \"errors\": %llu, "
			"\"dev\": \"%s\", \"dev_tx_packets\": %llu, \"dev_tx_dropped\": %llu, "
			"\"loadavg_end\": %.2f}\n}\n",
			json_summaries ? json_summaries : "", (unsigned long long)c.packets,
			(unsigned long long)c.errors, o.count_dev ? o.count_dev : "",
			(unsigned long long)tx, (unsigned long long)dropped, l1);
		fclose(json);
	}
	if (csv)
		fclose(csv);
	return status;
}
