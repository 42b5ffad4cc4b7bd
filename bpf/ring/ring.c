// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ring.c - the AF_XDP ring backend of the SFU (groupcast_ring.h, Docs/ring.md).
 *
 * The raw AF_XDP uAPI (linux/if_xdp.h) rather than libxdp's xsk API: libbpf
 * 1.1 dropped xsk.h, libxdp would bring its multi-program dispatcher while we
 * load our own program from a skeleton and own the XSKMAP, and the part we
 * need - four mmapped rings and their producer/consumer indices - is a page
 * of code that also lets the accounting test run the core against rings in
 * ordinary memory.
 *
 * Frame ownership, per port (interface): every UMEM frame is in exactly one
 * of three places, counted by n_free + n_fill + n_tx == n_frames:
 *   free  user space's stack of unused frames;
 *   fill  handed to the kernel: in the fill ring, or received into RX and
 *         not yet passed on (a received frame stays "fill" until it is moved
 *         to TX as the echo or returned to the free stack);
 *   tx    in the TX ring or sent and not yet returned through completion.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "groupcast_ring.h"
#include "../loader/internal.h"
#include "../generated/ring.skel.h"

/* The BPF parser (bpf/parsing.h), run here in user space over the frame in
 * the UMEM: the same checks as the program in front of the ring. It needs
 * only bpf_endian.h; keep bpf_helpers.h (BPF helper declarations) out. */
#define __BPF_HELPERS__
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"	/* #pragma unroll, for clang -target bpf */
#include "../parsing.h"
#pragma GCC diagnostic pop

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif
/* Linux 5.11 (asm-generic/socket.h); a kernel without them says ENOPROTOOPT. */
#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif

struct ring_port {
	struct gc_ring_port_info info;
	int fd;				/* -1: simulated */
	struct groupcast_ring *skel;
	__u32 xdp_flags;
	int attached;

	void *umem;
	size_t umem_size;
	void *maps[4];			/* mmapped rings: rx, tx, fill, comp */
	size_t map_len[4];
	struct gc_xsk_ring rx, tx, fill, comp;

	__u64 *free;			/* stack of frame addresses */
	__u32 n_free, n_fill, n_tx, n_frames;
	__u64 frame_mask;		/* frame address -> the frame's first byte */
	__u32 tx_unkicked;		/* descriptors produced on TX since the last kick */
	/* Every address of the interface (read_ip_addresses()): the destinations
	 * served besides info.ipv4/ipv6; none for a simulated port. */
	struct gc_local_addr local[GC_MAX_LOCAL_ADDRS];
	__u32 n_local;
};

struct ring_copy {
	struct gc_subscriber sub;
	int port;			/* index into gc_ring.ports, -1: not reachable by the ring */
};

struct ring_route {
	__u32 ssrc;
	__u8 used;
	__u8 family;
	__u8 stream_type;
	__u16 origin_port;		/* network order */
	__u16 origin_vlan;		/* the VLAN it sends on, 0: untagged */
	__u8 origin_addr[16];
	__u32 first, n_copies;		/* into gc_ring_table.copies */
	int room;			/* into gc_ring_table.rooms, -1: counted in none */
};

/* A room's media, counted per route of it (struct gc_media_counters). */
struct ring_room {
	char name[GC_RING_ROOM_NAME_MAX + 1];
	struct gc_media_counters media;
};

struct gc_ring_table {
	__u32 n_slots;			/* power of two, >= 2 * max_routes */
	__u32 n_routes, max_routes;
	int echo;
	int resolved;			/* ring ports filled in by gc_ring_install() */
	__u64 generation;		/* gc_ring_table_set_generation() */
	struct ring_route *slots;
	struct ring_copy *copies;
	__u32 n_copies, cap_copies;
	struct ring_room *rooms;	/* the counting array once installed */
	__u32 n_rooms, cap_rooms;
};

struct gc_ring {
	struct gc_ring_opts opts;
	struct ring_port *ports;
	int n_ports;
	struct gc_ring_table *table;
	gc_ring_kick_fn sim_kick;
	void *sim_ctx;
	int shed_level;
	__u32 last_pass;			/* frames the last gc_ring_process() took */
	__u64 last_busy;			/* when the last pass that took frames ended */
	__u64 busy_gap_ns;			/* moving average of the time between such passes */
	int busy;				/* some port busy-polls */
	__u64 last_publish;
	__u64 last_kernel_read;
	struct gc_ring_stats stats;		/* the processing thread's */
	struct gc_ring_stats published;		/* copied under publish_lock */
	struct ring_room *published_rooms;	/* the table's rooms, copied under publish_lock */
	__u32 n_published_rooms, cap_published_rooms;
	atomic_flag publish_lock;
	/* gc_ring_offer() -> gc_ring_adopt(): the table another thread built,
	 * under handover_lock. Offer n is live once adopted >= n. */
	pthread_mutex_t handover_lock;
	pthread_cond_t handover_done;		/* CLOCK_MONOTONIC */
	struct gc_ring_table *offered;
	__u64 offers, adopted;
	int serving;				/* gc_ring_serving(): offers wait for adoption */
	int wake_fd;				/* eventfd in gc_ring_wait()'s poll set */
	int epoll_fd;				/* gc_ring_wait()'s sleep: wake_fd and every socket, for RX */
};

/* ---- errors ---------------------------------------------------------------- */

static int errno_code(int e)
{
	switch (e) {
	case EPERM: case EACCES: return GCFP_ERR_NOT_ROOT;
	case ENODEV: case ENXIO: return GCFP_ERR_NO_DEVICE;
	case EBUSY: case EEXIST: return GCFP_ERR_BUSY;
	case EINVAL: return GCFP_ERR_INVALID;
	default: return GCFP_ERR_SYSTEM;
	}
}

/* ---- rings ----------------------------------------------------------------- */

/* Producer side (fill, TX): free slots, refreshing the consumer index only
 * when the cached view is short (cached_cons holds consumer + size). */
static inline __u32 prod_free(struct gc_xsk_ring *r, __u32 want)
{
	__u32 free = r->cached_cons - r->cached_prod;

	if (free >= want)
		return free;
	r->cached_cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE) + r->size;
	return r->cached_cons - r->cached_prod;
}

static inline void prod_submit(struct gc_xsk_ring *r)
{
	__atomic_store_n(r->producer, r->cached_prod, __ATOMIC_RELEASE);
}

/* Consumer side (RX, completion): entries ready, at most @max. */
static inline __u32 cons_avail(struct gc_xsk_ring *r, __u32 max)
{
	__u32 n = r->cached_prod - r->cached_cons;

	if (n == 0) {
		r->cached_prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
		n = r->cached_prod - r->cached_cons;
	}
	return n < max ? n : max;
}

static inline void cons_release(struct gc_xsk_ring *r, __u32 n)
{
	r->cached_cons += n;
	__atomic_store_n(r->consumer, r->cached_cons, __ATOMIC_RELEASE);
}

static inline __u64 *ring_addr(struct gc_xsk_ring *r, __u32 idx)
{
	return &((__u64 *)r->descs)[idx & r->mask];
}

static inline struct xdp_desc *ring_desc(struct gc_xsk_ring *r, __u32 idx)
{
	return &((struct xdp_desc *)r->descs)[idx & r->mask];
}

static void ring_init_prod(struct gc_xsk_ring *r)
{
	r->cached_prod = *r->producer;
	r->cached_cons = *r->consumer + r->size;
}

static void ring_init_cons(struct gc_xsk_ring *r)
{
	r->cached_prod = *r->producer;
	r->cached_cons = *r->consumer;
}

/* ---- time, delay histogram (gc_delay_bucket, groupcast_layout.h) ------------ */

static inline __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline void delay_record(struct gc_ring_stats *s, __u64 v)
{
	s->delay_buckets[gc_delay_bucket(v)]++;
	s->delay_count++;
	s->delay_sum += v;
	if (v < s->delay_min)
		s->delay_min = v;
	if (v > s->delay_max)
		s->delay_max = v;
}

/* ---- frames ---------------------------------------------------------------- */

static inline __u64 frame_base(const struct gc_ring *ring, __u64 addr)
{
	return addr & ~(__u64)(ring->opts.frame_size - 1);
}

static inline void frame_free(struct ring_port *p, __u64 base)
{
	p->free[p->n_free++] = base;
}

/* Completions: sent frames back to the free stack. */
static void reap(struct ring_port *p)
{
	__u32 n = cons_avail(&p->comp, p->comp.size), i;

	for (i = 0; i < n; i++)
		p->free[p->n_free++] = *ring_addr(&p->comp, p->comp.cached_cons + i) & p->frame_mask;
	if (n) {
		cons_release(&p->comp, n);
		p->n_tx -= n;
	}
}

/* Top the fill ring up, keeping a TX ring's worth of frames for copies. */
static void refill(struct gc_ring *ring, struct ring_port *p)
{
	__u32 reserve = p->tx.size, n, i;

	if (p->n_free <= reserve)
		return;
	n = prod_free(&p->fill, p->n_free - reserve);
	if (n > p->n_free - reserve)
		n = p->n_free - reserve;
	for (i = 0; i < n; i++)
		*ring_addr(&p->fill, p->fill.cached_prod + i) = p->free[--p->n_free];
	if (!n)
		return;
	p->fill.cached_prod += n;
	prod_submit(&p->fill);
	p->n_fill += n;
	/* Zero-copy drivers may sleep until told the fill ring has buffers. */
	if (p->fd >= 0 && (*p->fill.flags & XDP_RING_NEED_WAKEUP)) {
		recvfrom(p->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		ring->stats.wakeups++;
	}
}

/* Start transmission of what is in TX. Copy mode sends at most 32 frames per
 * sendto() (TX_BATCH_SIZE in net/xdp/xsk.c) and says -EAGAIN while more wait,
 * and stops when the completion ring is full: reap before each call. */
static int kick(struct gc_ring *ring, int index)
{
	struct ring_port *p = &ring->ports[index];
	int rounds = p->tx.size / 32 + 2, ret = 0;

	if (!p->tx_unkicked)
		return 0;
	if (p->fd < 0) {
		reap(p);
		ring->stats.kicks++;
		ret = ring->sim_kick ? ring->sim_kick(ring->sim_ctx, index) : 0;
		reap(p);
		if (ret == 0)
			p->tx_unkicked = 0;
		return ret;
	}
	if (p->info.zerocopy && !(*p->tx.flags & XDP_RING_NEED_WAKEUP)) {
		p->tx_unkicked = 0;
		return 0;
	}
	while (rounds--) {
		reap(p);
		ring->stats.kicks++;
		if (sendto(p->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) {
			ret = 0;
		} else if (errno == EAGAIN || errno == EBUSY || errno == ENOBUFS) {
			/* EBUSY: the device dropped one frame (it was completed). */
			ret = -EAGAIN;
		} else {
			ret = -errno;
			break;
		}
		if (__atomic_load_n(p->tx.consumer, __ATOMIC_ACQUIRE) == p->tx.cached_prod) {
			ret = 0;
			break;
		}
	}
	reap(p);
	if (ret == 0)
		p->tx_unkicked = 0;
	return ret;
}

/* Most frames one copy-mode transmit call sends per socket (TX_BATCH_SIZE in
 * net/xdp/xsk.c). */
#define XSK_COPY_TX_BATCH 32

/* Start transmission on every TX ring with descriptors not yet kicked, and no
 * other: with as few system calls as the kernel allows. A copy-mode socket
 * transmits in xsk_poll() as in sendmsg() (both run xsk_generic_xmit(): the
 * TX ring's need_wakeup flag never clears in copy mode), so one poll() with
 * a zero timeout over the sockets that got frames does the work of a sendto()
 * per socket. A socket with more than a call sends, or one the poll left
 * frames on (completion ring full, device busy or dropping), gets kick(), as
 * do zero-copy sockets (which kick() skips unless the driver asks) and
 * simulated ports; a single socket gets its sendto(). */
static void kick_all(struct gc_ring *ring)
{
	struct pollfd pfds[GC_RING_MAX_PORTS];
	int polled[GC_RING_MAX_PORTS];
	int k, i, n = 0;

	for (k = 0; k < ring->n_ports; k++) {
		struct ring_port *p = &ring->ports[k];

		if (!p->tx_unkicked)
			continue;
		if (p->fd < 0 || p->info.zerocopy ||
		    p->tx.cached_prod - __atomic_load_n(p->tx.consumer, __ATOMIC_ACQUIRE) > XSK_COPY_TX_BATCH) {
			kick(ring, k);
			continue;
		}
		pfds[n].fd = p->fd;
		pfds[n].events = 0;
		pfds[n].revents = 0;
		polled[n++] = k;
	}
	if (n == 1) {
		kick(ring, polled[0]);
		return;
	}
	if (n == 0)
		return;
	ring->stats.tx_polls++;
	if (poll(pfds, n, 0) < 0) {
		for (i = 0; i < n; i++)
			kick(ring, polled[i]);
		return;
	}
	for (i = 0; i < n; i++) {
		struct ring_port *p = &ring->ports[polled[i]];

		if (__atomic_load_n(p->tx.consumer, __ATOMIC_ACQUIRE) == p->tx.cached_prod)
			p->tx_unkicked = 0;
		else
			kick(ring, polled[i]);
	}
}

/* Wait until port @index has a TX slot and (@need_frame) a free frame: the
 * paper's "wait for NTX buffers", counted as stall time. 0, or -1 when it
 * cannot come (no frames in flight), on stop or after a second. */
static int wait_tx_space(struct gc_ring *ring, int index, int need_frame, const volatile int *stop)
{
	struct ring_port *p = &ring->ports[index];
	__u64 start = now_ns(), now = start;
	int ret = 0;

	ring->stats.tx_stalls++;
	for (;;) {
		kick(ring, index);
		reap(p);
		if (prod_free(&p->tx, 1) >= 1 && (!need_frame || p->n_free > 0))
			break;
		if (need_frame && p->n_free == 0 && p->n_tx == 0) {
			ret = -1;	/* every frame is in the fill ring: none will come back */
			break;
		}
		now = now_ns();
		if ((stop && *stop) || now - start > 1000000000ull) {
			ret = -1;
			break;
		}
		if (p->fd >= 0) {
			struct pollfd pfd = { .fd = p->fd, .events = POLLOUT };

			poll(&pfd, 1, 1);
		}
	}
	ring->stats.tx_stall_ns += now_ns() - start;
	return ret;
}

static inline void tx_push(struct ring_port *p, __u64 addr, __u32 len)
{
	struct xdp_desc *d = ring_desc(&p->tx, p->tx.cached_prod++);

	d->addr = addr;
	d->len = len;
	d->options = 0;
	prod_submit(&p->tx);
	p->n_tx++;
	p->tx_unkicked++;
}

/* ---- checksums ------------------------------------------------------------- */

/* RFC 1624 incremental update of the 16-bit one's complement sum at @csum for
 * a field changing from @old to @new (@len even). Byte order does not matter
 * to a one's complement sum as long as it is the same throughout. */
static inline void csum_replace(__u16 *csum, const void *old, const void *new, size_t len)
{
	const __u16 *o = old, *n = new;
	__u32 sum = (__u16)~*csum;
	size_t i;

	for (i = 0; i < len / 2; i++) {
		sum += (__u16)~o[i];
		sum += n[i];
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	*csum = (__u16)~sum;
}

/* ---- routing table ---------------------------------------------------------- */

struct gc_ring_table *gc_ring_table_new(__u32 max_routes, int echo)
{
	struct gc_ring_table *t = calloc(1, sizeof(*t));
	__u32 slots = 16;

	if (!t)
		return NULL;
	while (slots < 2 * max_routes)
		slots <<= 1;
	t->n_slots = slots;
	t->max_routes = max_routes;
	t->echo = echo;
	t->slots = calloc(slots, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return NULL;
	}
	return t;
}

void gc_ring_table_set_generation(struct gc_ring_table *t, __u64 generation)
{
	t->generation = generation;
}

__u64 gc_ring_installed_generation(const struct gc_ring *ring)
{
	return ring->table ? ring->table->generation : 0;
}

void gc_ring_table_free(struct gc_ring_table *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t->copies);
	free(t->rooms);
	free(t);
}

static inline __u32 ssrc_hash(__u32 ssrc)
{
	return ssrc * 2654435761u;	/* Knuth's multiplicative hash */
}

static inline const struct ring_route *table_lookup(const struct gc_ring_table *t, __u32 ssrc)
{
	__u32 i = ssrc_hash(ssrc) & (t->n_slots - 1);

	for (;;) {
		const struct ring_route *r = &t->slots[i];

		if (!r->used)
			return NULL;
		if (r->ssrc == ssrc)
			return r;
		i = (i + 1) & (t->n_slots - 1);
	}
}

int gc_ring_table_add(struct gc_ring_table *t, __u32 ssrc, __u8 family, __u8 stream_type,
		      const __u8 origin_addr[16], __u16 origin_port_be, __u16 origin_vlan,
		      const struct gc_subscriber *subs, __u32 n_subs)
{
	struct ring_route *r;
	__u32 i;

	if ((family != GC_FAMILY_IPV4 && family != GC_FAMILY_IPV6) || origin_vlan > GC_VLAN_ID_MAX)
		return -GCFP_ERR_INVALID;
	for (i = 0; i < n_subs; i++)
		if (subs[i].vlan_id > GC_VLAN_ID_MAX)
			return -GCFP_ERR_INVALID;
	if (t->n_routes >= t->max_routes)
		return -GCFP_ERR_ROUTES_FULL;
	if (table_lookup(t, ssrc))
		return -GCFP_ERR_INVALID;
	if (t->n_copies + n_subs > t->cap_copies) {
		__u32 cap = t->cap_copies ? t->cap_copies : 64;
		struct ring_copy *c;

		while (cap < t->n_copies + n_subs)
			cap *= 2;
		c = realloc(t->copies, cap * sizeof(*c));
		if (!c)
			return -GCFP_ERR_SYSTEM;
		t->copies = c;
		t->cap_copies = cap;
	}
	for (i = ssrc_hash(ssrc) & (t->n_slots - 1); t->slots[i].used; i = (i + 1) & (t->n_slots - 1))
		;
	r = &t->slots[i];
	r->used = 1;
	r->ssrc = ssrc;
	r->family = family;
	r->stream_type = stream_type;
	r->origin_port = origin_port_be;
	r->origin_vlan = origin_vlan;
	memcpy(r->origin_addr, origin_addr, 16);
	r->first = t->n_copies;
	r->n_copies = n_subs;
	r->room = -1;
	for (i = 0; i < n_subs; i++) {
		t->copies[t->n_copies].sub = subs[i];
		t->copies[t->n_copies].port = -1;
		t->n_copies++;
	}
	t->n_routes++;
	return 0;
}

int gc_ring_table_add_room(struct gc_ring_table *t, const char *name)
{
	size_t len = name ? strlen(name) : 0;
	__u32 i;

	if (!len || len > GC_RING_ROOM_NAME_MAX)
		return -GCFP_ERR_INVALID;
	for (i = 0; i < t->n_rooms; i++)
		if (!strcmp(t->rooms[i].name, name))
			return -GCFP_ERR_INVALID;
	if (t->n_rooms == t->cap_rooms) {
		__u32 cap = t->cap_rooms ? 2 * t->cap_rooms : 8;
		struct ring_room *rooms = realloc(t->rooms, cap * sizeof(*rooms));

		if (!rooms)
			return -GCFP_ERR_SYSTEM;
		t->rooms = rooms;
		t->cap_rooms = cap;
	}
	memset(&t->rooms[t->n_rooms], 0, sizeof(t->rooms[0]));
	memcpy(t->rooms[t->n_rooms].name, name, len);
	return t->n_rooms++;
}

int gc_ring_table_route_room(struct gc_ring_table *t, __u32 ssrc, int room)
{
	struct ring_route *r = (struct ring_route *)table_lookup(t, ssrc);

	if (!r || room < 0 || (__u32)room >= t->n_rooms)
		return -GCFP_ERR_INVALID;
	r->room = room;
	return 0;
}

/* Every room of @t that the installed table has too continues its counts
 * (found by name); the others start from zero, and rooms not in @t are gone. */
static void carry_rooms(const struct gc_ring_table *old, struct gc_ring_table *t)
{
	__u32 i, j;

	for (i = 0; old && i < t->n_rooms; i++)
		for (j = 0; j < old->n_rooms; j++)
			if (!strcmp(t->rooms[i].name, old->rooms[j].name)) {
				t->rooms[i].media = old->rooms[j].media;
				break;
			}
}

void gc_ring_install(struct gc_ring *ring, struct gc_ring_table *t)
{
	__u32 i;
	int k;

	if (t)
		carry_rooms(ring->table, t);
	for (i = 0; t && i < t->n_copies; i++) {
		struct ring_copy *c = &t->copies[i];

		c->port = -1;
		for (k = 0; k < ring->n_ports; k++)
			if (c->sub.ifindex && c->sub.ifindex == ring->ports[k].info.ifindex)
				c->port = k;
	}
	gc_ring_table_free(ring->table);
	ring->table = t;
}

int gc_ring_offer(struct gc_ring *ring, struct gc_ring_table *t, int timeout_ms)
{
	static const __u64 one = 1;
	struct timespec deadline;
	__u64 ticket;
	ssize_t woken;
	int ret = GC_RING_ADOPTED;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&ring->handover_lock);
	/* One the processing thread has not taken yet was never used: replaced. */
	gc_ring_table_free(ring->offered);
	__atomic_store_n(&ring->offered, t, __ATOMIC_RELEASE);
	ticket = ++ring->offers;
	/* Fails only with the counter at 2^64 - 2, unread: then adoption
	 * waits for gc_ring_wait()'s timeout instead. */
	woken = write(ring->wake_fd, &one, sizeof(one));
	(void)woken;
	while (ring->adopted < ticket) {
		if (!ring->serving) {
			ret = GC_RING_PENDING;
			break;
		}
		if (pthread_cond_timedwait(&ring->handover_done, &ring->handover_lock, &deadline) == ETIMEDOUT &&
		    ring->adopted < ticket) {
			ret = GC_RING_TIMED_OUT;
			break;
		}
	}
	pthread_mutex_unlock(&ring->handover_lock);
	return ret;
}

int gc_ring_adopt(struct gc_ring *ring)
{
	struct gc_ring_table *t;
	__u64 ticket;

	/* The common case, nothing offered, without the lock. */
	if (!__atomic_load_n(&ring->offered, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&ring->handover_lock);
	t = ring->offered;
	ring->offered = NULL;
	ticket = ring->offers;
	pthread_mutex_unlock(&ring->handover_lock);
	if (!t)
		return 0;
	/* The previous table is freed here, by the only thread that reads it. */
	gc_ring_install(ring, t);
	pthread_mutex_lock(&ring->handover_lock);
	ring->adopted = ticket;
	pthread_cond_broadcast(&ring->handover_done);
	pthread_mutex_unlock(&ring->handover_lock);
	return 1;
}

void gc_ring_serving(struct gc_ring *ring, int serving)
{
	pthread_mutex_lock(&ring->handover_lock);
	ring->serving = serving;
	/* Stopped: offerers stop waiting (what they offered stays until
	 * gc_ring_close() or the next gc_ring_serving(ring, 1) and adoption). */
	pthread_cond_broadcast(&ring->handover_done);
	pthread_mutex_unlock(&ring->handover_lock);
}

/* ---- forwarding ------------------------------------------------------------ */

/* A tagged frame's VLAN has a VLAN device on the port (as groupcast.bpf.c's
 * gc_vlan_served()): 802.1Q, and VLAN id 0 (a priority tag) or one the
 * port's address list marks as served. */
static int vlan_served(const struct ring_port *p, const struct gc_pkt *pkt)
{
	if (pkt->vlan != GC_VLAN_TAG_8021Q)
		return 0;
	if (pkt->vlan_id == 0)
		return 1;
	for (__u32 i = 0; i < p->n_local; i++)
		if (p->local[i].family == GC_FAMILY_VLAN && p->local[i].vlan_id == pkt->vlan_id)
			return 1;
	return 0;
}

/* Sent to this host: to the port's MAC, to its address on the VLAN the frame
 * came on, from a unicast source (as groupcast.bpf.c's gc_for_this_host()). */
static int for_this_port(const struct ring_port *p, const struct gc_pkt *pkt)
{
	static const __u8 zero[16];
	/* lo (no MAC) carries loopback addresses; anywhere else they are martians. */
	int loopback = !memcmp(p->info.mac, zero, 6);

	if (memcmp(pkt->eth_dst, p->info.mac, 6) ||
	    (!loopback && (gc_addr_martian(pkt->family, pkt->saddr) ||
			   gc_addr_martian(pkt->family, pkt->daddr))))
		return 0;
	for (__u32 i = 0; i < p->n_local; i++)
		if (p->local[i].family == pkt->family && p->local[i].vlan_id == pkt->vlan_id &&
		    !memcmp(p->local[i].addr, pkt->daddr, pkt->family == GC_FAMILY_IPV4 ? 4 : 16))
			return 1;
	if (p->n_local || p->fd >= 0 || pkt->vlan_id)
		return 0;	/* a simulated port without a list: info's addresses, untagged */
	if (pkt->family == GC_FAMILY_IPV4)
		return memcmp(p->info.ipv4, zero, 4) && !memcmp(pkt->daddr, p->info.ipv4, 4);
	return memcmp(p->info.ipv6, zero, 16) && !memcmp(pkt->daddr, p->info.ipv6, 16);
}

static inline int from_origin(const struct ring_route *r, const struct gc_pkt *pkt)
{
	if (r->family != pkt->family || r->origin_port != pkt->sport ||
	    r->origin_vlan != pkt->vlan_id)
		return 0;
	return memcmp(r->origin_addr, pkt->saddr, pkt->family == GC_FAMILY_IPV4 ? 4 : 16) == 0;
}

/* Write one copy of the frame [data, data + len) into a TX slot of port
 * @q, addressed to @c, with its next hop's VLAN tag (none, or the
 * subscriber's: the received one, if any, is not kept), and rewrite its
 * headers. The copy's source is the address the origin sent to, which
 * for_this_port() found to be one the SFU serves. */
static int place_copy(struct gc_ring *ring, const __u8 *data, __u32 len, const struct gc_pkt *pkt,
		      const struct ring_copy *c, const volatile int *stop)
{
	struct ring_port *q = &ring->ports[c->port];
	__u32 l3 = ETH_HLEN + (c->sub.vlan_id ? 4 : 0), l4 = pkt->l4_off - pkt->l3_off + l3;
	__u8 *out;
	__u64 base;

	if (c->sub.family != pkt->family)
		return -1;
	if ((prod_free(&q->tx, 1) < 1 || q->n_free == 0) && wait_tx_space(ring, c->port, 1, stop))
		return -1;
	base = q->free[--q->n_free];
	out = (__u8 *)q->umem + base;
	/* From the EtherType on; a frame fit a UMEM frame with its headroom,
	 * so it does with a tag (4 bytes) instead. */
	memcpy(out + l3 - 2, data + pkt->l3_off - 2, len - (pkt->l3_off - 2));
	len = len - pkt->l3_off + l3;
	memcpy(out, c->sub.dst_mac, 6);
	memcpy(out + 6, q->info.mac, 6);
	if (c->sub.vlan_id) {
		out[12] = ETH_P_8021Q >> 8;
		out[13] = ETH_P_8021Q & 0xff;
		out[14] = c->sub.vlan_id >> 8;
		out[15] = c->sub.vlan_id & 0xff;
	}
	if (pkt->family == GC_FAMILY_IPV4) {
		struct iphdr *ip = (struct iphdr *)(out + l3);
		struct udphdr *udp = (struct udphdr *)(out + l4);
		__u32 saddr = ip->daddr, daddr;	/* the address the origin sent to */
		__u16 sport = pkt->dport;

		memcpy(&daddr, c->sub.addr, 4);
		if (udp->check) {
			csum_replace(&udp->check, &ip->saddr, &saddr, 4);
			csum_replace(&udp->check, &ip->daddr, &daddr, 4);
			csum_replace(&udp->check, &udp->source, &sport, 2);
			csum_replace(&udp->check, &udp->dest, &c->sub.port, 2);
			if (!udp->check)
				udp->check = 0xffff;
		}
		csum_replace(&ip->check, &ip->saddr, &saddr, 4);
		csum_replace(&ip->check, &ip->daddr, &daddr, 4);
		ip->saddr = saddr;
		ip->daddr = daddr;
		udp->source = sport;
		udp->dest = c->sub.port;
	} else {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)(out + l3);
		struct udphdr *udp = (struct udphdr *)(out + l4);
		__u8 saddr[16];
		__u16 sport = pkt->dport;

		memcpy(saddr, &ip6->daddr, 16);	/* the address the origin sent to */
		csum_replace(&udp->check, &ip6->saddr, saddr, 16);
		csum_replace(&udp->check, &ip6->daddr, c->sub.addr, 16);
		csum_replace(&udp->check, &udp->source, &sport, 2);
		csum_replace(&udp->check, &udp->dest, &c->sub.port, 2);
		if (!udp->check)
			udp->check = 0xffff;
		memcpy(&ip6->saddr, saddr, 16);
		memcpy(&ip6->daddr, c->sub.addr, 16);
		udp->source = sport;
		udp->dest = c->sub.port;
	}
	tx_push(q, base, len);
	return 0;
}

/* The echo: the received buffer itself, addressed back to its origin (every
 * address and port swapped: the checksums stay valid), moved to TX. */
static int place_echo(struct gc_ring *ring, int index, __u64 addr, __u8 *data, __u32 len,
		      const struct gc_pkt *pkt, const volatile int *stop)
{
	struct ring_port *p = &ring->ports[index];
	struct udphdr *udp = (struct udphdr *)(data + pkt->l4_off);
	__u8 mac[6];
	__u16 port;

	if (prod_free(&p->tx, 1) < 1 && wait_tx_space(ring, index, 0, stop))
		return -1;
	memcpy(mac, data, 6);
	memcpy(data, data + 6, 6);
	memcpy(data + 6, mac, 6);
	if (pkt->family == GC_FAMILY_IPV4) {
		struct iphdr *ip = (struct iphdr *)(data + pkt->l3_off);
		__u32 a = ip->saddr;

		ip->saddr = ip->daddr;
		ip->daddr = a;
	} else {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)(data + pkt->l3_off);
		struct in6_addr a = ip6->saddr;

		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
	}
	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;
	p->n_fill--;		/* received frame: from "fill" to "tx" */
	tx_push(p, addr, len);
	return 0;
}

/* The IP length of the frame at @data made to end where its UDP datagram
 * does (the parser checked UDP length <= IP payload; RTP has no IPv6
 * extension headers here: those go to the stack). */
static void trim_ip_length(__u8 *data, const struct gc_pkt *pkt)
{
	__u16 want = htons(pkt->l4_off - pkt->l3_off + pkt->udp_len);

	if (pkt->family == GC_FAMILY_IPV4) {
		struct iphdr *ip = (struct iphdr *)(data + pkt->l3_off);

		if (ip->tot_len != want) {
			csum_replace(&ip->check, &ip->tot_len, &want, 2);
			ip->tot_len = want;
		}
	} else {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)(data + pkt->l3_off);

		ip6->payload_len = htons(pkt->udp_len);
	}
}

/* The drop reason of what the fast path passes to the stack (a GC_STAT_PASS_*):
 * the ring has no stack behind it. */
static int pass_reason(int stat)
{
	switch (stat) {
	case GC_STAT_PASS_RTCP:
		return GC_DROP_RTCP;
	case GC_STAT_PASS_IP_OPTIONS:
		return GC_DROP_IP_OPTIONS;
	case GC_STAT_PASS_IPV6_EXT:
		return GC_DROP_IPV6_EXT;
	case GC_STAT_PASS_UDP_CSUM:
		return GC_DROP_UDP_CSUM;
	default:
		return GC_DROP_NOT_LOCAL;
	}
}

/* One received frame. Returns 1 when a delay sample was taken. */
static int handle_frame(struct gc_ring *ring, int index, const struct xdp_desc *desc,
			__u64 *pickup, const volatile int *stop)
{
	struct ring_port *p = &ring->ports[index];
	struct gc_ring_stats *s = &ring->stats;
	const struct gc_ring_table *t = ring->table;
	__u8 *data = (__u8 *)p->umem + desc->addr;
	const struct ring_route *r = NULL;
	struct gc_media_counters uncounted = {}, *media = NULL;
	struct gc_pkt pkt = {};
	__u32 i, len = desc->len, bytes;
	int kind, reason = -1;
	__u64 done;

	/* The fast path's parser (bpf/parsing.h): the same rules and the same
	 * drop reasons, the full RTP header check included. What the fast path
	 * leaves to the stack (IPv4 options, IPv6 extension headers,
	 * a UDP checksum that does not verify, frames not for this host) has no
	 * stack to go to here: dropped under its own reason. A local sender's
	 * offloaded checksum (the pseudo-header sum only) cannot be told from a
	 * forged one: senders over veth on this host turn TX checksum offload
	 * off (Docs/ring.md). */
	kind = gc_parse(data, data + len, htons(ring->opts.port), &pkt, NULL, GC_CTX_USER);
	if (kind != GC_PARSE_OTHER && pkt.to_port && pkt.vlan && !vlan_served(p, &pkt))
		reason = GC_DROP_VLAN;			/* no VLAN device here: whatever is inside */
	else if (kind == GC_PARSE_DROP)
		reason = pkt.drop;
	else if (kind == GC_PARSE_PASS)
		reason = pass_reason(pkt.reason);
	else if (kind != GC_PARSE_RTP)
		reason = GC_DROP_TRUNCATED;		/* the program redirected what the parser cannot read */
	else if (!for_this_port(p, &pkt))
		reason = GC_DROP_NOT_LOCAL;		/* not for this host: never replicated */
	else if (!t || !(r = table_lookup(t, pkt.ssrc)))
		reason = GC_DROP_UNKNOWN_SSRC;
	else if (!from_origin(r, &pkt))
		reason = GC_DROP_SPOOFED;
	/* From here on the datagram is the route's room's media (a room
	 * nobody counts in: a scratch entry). */
	if (reason < 0) {
		media = r->room >= 0 ? &t->rooms[r->room].media : &uncounted;
		media->received++;
		media->received_bytes += pkt.udp_len - sizeof(struct udphdr);
		if (r->stream_type == GC_STREAM_VHQ && ring->shed_level >= 1)
			reason = GC_DROP_SHED_VHQ;
		else if (r->stream_type == GC_STREAM_VSQ && ring->shed_level >= 2)
			reason = GC_DROP_SHED_VSQ;
		if (reason >= 0)
			media->dropped++;
	}
	if (reason >= 0) {
		s->drops[reason]++;
		p->n_fill--;
		frame_free(p, frame_base(ring, desc->addr));
		return 0;
	}

	/* Ethernet padding of short frames is not part of the datagram, nor is
	 * what follows a UDP length below the IP payload (udp_rcv() trims it):
	 * copies and echo carry the datagram, and their IP length says so. */
	len = pkt.l4_off + pkt.udp_len;
	bytes = pkt.udp_len - sizeof(struct udphdr);
	trim_ip_length(data, &pkt);
	for (i = 0; i < r->n_copies; i++) {
		const struct ring_copy *c = &t->copies[r->first + i];

		if (c->port < 0 || place_copy(ring, data, len, &pkt, c, stop)) {
			s->drops[GC_DROP_SEND_FAILED]++;
			media->dropped++;
		} else {
			s->forwarded++;
			media->forwarded++;
			media->forwarded_bytes += bytes;
		}
	}
	if (!t->echo) {
		p->n_fill--;
		frame_free(p, frame_base(ring, desc->addr));
	} else if (place_echo(ring, index, desc->addr, data, len, &pkt, stop)) {
		s->drops[GC_DROP_SEND_FAILED]++;
		media->dropped++;
		p->n_fill--;
		frame_free(p, frame_base(ring, desc->addr));
	} else {
		s->echoed++;
		media->echoed++;
		media->echoed_bytes += bytes;
	}
	done = now_ns();
	delay_record(s, done - *pickup);
	*pickup = done;
	return 1;
}

/* The published snapshot's lock: held for a copy only, so a spin. */
static void lock_published(struct gc_ring *ring)
{
	while (atomic_flag_test_and_set_explicit(&ring->publish_lock, memory_order_acquire))
		;
}

static void unlock_published(struct gc_ring *ring)
{
	atomic_flag_clear_explicit(&ring->publish_lock, memory_order_release);
}

static void publish(struct gc_ring *ring)
{
	const struct gc_ring_table *t = ring->table;
	__u32 n_rooms = t ? t->n_rooms : 0;
	struct ring_room *grown = NULL;

	/* Room for the table's rooms, allocated outside the lock (only when
	 * a table brings more rooms than ever before). */
	if (n_rooms > ring->cap_published_rooms)
		grown = calloc(n_rooms, sizeof(*grown));
	lock_published(ring);
	memcpy(&ring->published, &ring->stats, sizeof(ring->stats));
	if (grown) {
		free(ring->published_rooms);
		ring->published_rooms = grown;
		ring->cap_published_rooms = n_rooms;
	}
	if (n_rooms > ring->cap_published_rooms)
		n_rooms = ring->cap_published_rooms;	/* allocation failed: the first ones */
	if (n_rooms)
		memcpy(ring->published_rooms, t->rooms, n_rooms * sizeof(*t->rooms));
	ring->n_published_rooms = n_rooms;
	unlock_published(ring);
}

int gc_ring_room_media(struct gc_ring *ring, int index, char name[GC_RING_ROOM_NAME_MAX + 1],
		       struct gc_media_counters *media)
{
	int n;

	lock_published(ring);
	n = (int)ring->n_published_rooms;
	if (index >= 0 && index < n) {
		memcpy(name, ring->published_rooms[index].name, GC_RING_ROOM_NAME_MAX + 1);
		*media = ring->published_rooms[index].media;
	}
	unlock_published(ring);
	return n;
}

void gc_ring_stats(struct gc_ring *ring, struct gc_ring_stats *stats)
{
	lock_published(ring);
	memcpy(stats, &ring->published, sizeof(*stats));
	unlock_published(ring);
}

/* The kernel's counters: XDP_STATISTICS of each socket, the program's. */
static void read_kernel_counters(struct gc_ring *ring)
{
	__u64 dropped = 0, too_big = 0;
	int k, ncpus = libbpf_num_possible_cpus();

	for (k = 0; k < ring->n_ports; k++) {
		struct ring_port *p = &ring->ports[k];
		struct xdp_statistics xs;
		socklen_t len = sizeof(xs);
		__u32 key = GC_RING_STAT_TOO_BIG;

		if (p->fd >= 0 && getsockopt(p->fd, SOL_XDP, XDP_STATISTICS, &xs, &len) == 0)
			dropped += xs.rx_dropped + xs.rx_ring_full;
		if (p->skel && ncpus > 0 && ncpus <= 1024) {
			__u64 values[ncpus];

			if (!bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.gc_ring_stats), &key, values))
				for (int c = 0; c < ncpus; c++)
					too_big += values[c];
		}
	}
	ring->stats.rx_ring_dropped = dropped;
	ring->stats.too_big = too_big;
}

int gc_ring_process(struct gc_ring *ring, const volatile int *stop)
{
	__u32 batch = ring->opts.batch, total = 0;
	int k;

	for (k = 0; k < ring->n_ports; k++) {
		struct ring_port *p = &ring->ports[k];
		__u32 n, i, fill_permille;
		__u64 pickup;

		reap(p);
		n = cons_avail(&p->rx, batch);
		if (!n)
			continue;
		/* Overload: how full the RX ring is (the socket backends read the
		 * receive queue's fill). */
		fill_permille = (__u32)(((__u64)(p->rx.cached_prod - p->rx.cached_cons)) * 1000 / p->rx.size);
		ring->shed_level = fill_permille > ring->opts.shed_vsq_permille ? 2 :
				   fill_permille > ring->opts.shed_vhq_permille ? 1 : 0;
		ring->stats.batches++;
		ring->stats.received += n;
		pickup = now_ns();
		for (i = 0; i < n; i++)
			handle_frame(ring, k, ring_desc(&p->rx, p->rx.cached_cons + i), &pickup, stop);
		cons_release(&p->rx, n);
		total += n;
	}
	ring->last_pass = total;
	if (total) {
		/* How often frames come: a moving average (1/4) of the time between
		 * passes that found some, each gap counted as at most a second. */
		__u64 now = now_ns(), gap = now - ring->last_busy;

		if (gap > 1000000000ull)
			gap = 1000000000ull;
		ring->busy_gap_ns = ring->busy_gap_ns - ring->busy_gap_ns / 4 + gap / 4;
		ring->last_busy = now;
	}
	/* Kick the TX rings that got frames (one system call for all of them
	 * where copy mode allows it), then recycle. */
	kick_all(ring);
	for (k = 0; k < ring->n_ports; k++) {
		reap(&ring->ports[k]);
		refill(ring, &ring->ports[k]);
	}
	if (total || now_ns() - ring->last_publish > 50000000ull) {
		__u64 now = now_ns();

		/* Two system calls per port: when idle, or every 100 ms. */
		if (!total || now - ring->last_kernel_read > 100000000ull) {
			read_kernel_counters(ring);
			ring->last_kernel_read = now;
		}
		ring->last_publish = now;
		publish(ring);
	}
	return total;
}

/* Any port with received frames: 1. */
static int rx_pending(struct gc_ring *ring)
{
	for (int k = 0; k < ring->n_ports; k++)
		if (cons_avail(&ring->ports[k].rx, 1))
			return 1;
	return 0;
}

int gc_ring_wait(struct gc_ring *ring, int timeout_ms)
{
	struct pollfd pfds[GC_RING_MAX_PORTS + 1];
	int k, n = 0, ret, tx_left = 0, woken = 0;

	/* Coalescing: the last pass was busy but short of a batch, and frames
	 * have been coming more often than the coalescing time: let more arrive
	 * before the next pass. Otherwise the sleep would only add a wake-up
	 * (the next frame is likely later than it), and an idle ring goes
	 * straight to poll(). */
	if (ring->opts.coalesce_us && ring->last_pass && ring->last_pass < ring->opts.batch &&
	    ring->busy_gap_ns < (__u64)ring->opts.coalesce_us * 1000) {
		struct timespec ts = { .tv_nsec = (long)ring->opts.coalesce_us * 1000 };

		ring->last_pass = 0;
		ring->stats.coalesce_sleeps++;
		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	}
	/* Busy polling: run each port's NAPI here, once (non-blocking: one
	 * pass of up to SO_BUSY_POLL_BUDGET frames), before sleeping. */
	if (ring->busy && !rx_pending(ring)) {
		for (k = 0; k < ring->n_ports; k++) {
			struct ring_port *p = &ring->ports[k];

			if (p->fd < 0 || !p->info.busy_poll_us)
				continue;
			recvfrom(p->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
			ring->stats.busy_polls++;
		}
	}
	for (k = 0; k < ring->n_ports; k++) {
		struct ring_port *p = &ring->ports[k];

		if (cons_avail(&p->rx, 1))
			return 1;
		if (p->fd >= 0 && p->tx_unkicked)
			tx_left = 1;
	}
	ring->stats.waits++;
	if (!tx_left) {
		/* The usual sleep: for received frames or an offer. epoll, not
		 * poll(): poll() calls every socket's xsk_poll() (each a copy-mode
		 * transmit attempt under the socket's mutex) before sleeping and
		 * again after, and puts itself on every wait queue and takes
		 * itself off; epoll_wait() stays registered and polls only the
		 * sockets that woke it. */
		struct epoll_event evs[GC_RING_MAX_PORTS + 1];

		ret = epoll_wait(ring->epoll_fd, evs, GC_RING_MAX_PORTS + 1, timeout_ms);
		if (ret < 0)
			return errno == EINTR ? 0 : -errno;
		for (k = 0; k < ret; k++)
			if (evs[k].data.u32 == GC_RING_MAX_PORTS)
				woken = 1;
	} else {
		/* A TX ring kick() could not empty: poll() for room as well
		 * (its xsk_poll() transmits in copy mode). */
		for (k = 0; k < ring->n_ports && n < GC_RING_MAX_PORTS; k++) {
			struct ring_port *p = &ring->ports[k];

			if (p->fd < 0)
				continue;
			pfds[n].fd = p->fd;
			pfds[n].events = POLLIN | (p->tx_unkicked ? POLLOUT : 0);
			pfds[n].revents = 0;
			n++;
		}
		/* Last: a table offered (gc_ring_offer()) ends the wait too. */
		pfds[n].fd = ring->wake_fd;
		pfds[n].events = POLLIN;
		pfds[n].revents = 0;
		ret = poll(pfds, n + 1, timeout_ms);
		if (ret < 0)
			return errno == EINTR ? 0 : -errno;
		woken = !!(pfds[n].revents & POLLIN);
	}
	if (woken) {
		__u64 count;

		/* Reset the counter (non-blocking: never waits). */
		if (read(ring->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			return -errno;
	}
	return ret > 0;
}

void gc_ring_frames(const struct gc_ring *ring, struct gc_ring_frames *f)
{
	int k;

	memset(f, 0, sizeof(*f));
	for (k = 0; k < ring->n_ports; k++) {
		const struct ring_port *p = &ring->ports[k];

		f->total += p->n_frames;
		f->free += p->n_free;
		f->fill += p->n_fill;
		f->tx += p->n_tx;
	}
}

/* ---- setup ----------------------------------------------------------------- */

void gc_ring_opts_init(struct gc_ring_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = 7002;
	o->ring_size = 4096;
	o->frame_size = 2048;
	o->batch = 64;
	o->mode = GC_RING_MODE_AUTO;
	o->echo = 1;
	o->shed_vhq_permille = 500;
	o->shed_vsq_permille = 750;
}

static int check_opts(struct gc_ring_opts *o, struct gcfp_error *err)
{
	if (!o->ring_size || (o->ring_size & (o->ring_size - 1)) || o->ring_size > 65536)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "ring size %u: not a power of two up to 65536", o->ring_size);
	if (o->frame_size != 2048 && o->frame_size != 4096)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "frame size %u: 2048 or 4096", o->frame_size);
	/* A full fill ring (hence a full RX ring) plus a TX ring's worth for
	 * copies, plus two batches of slack. */
	if (!o->frame_count)
		o->frame_count = 2 * o->ring_size + 2 * o->batch;
	if (o->frame_count < 2 * o->ring_size + o->batch)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "%u frames: need at least 2 * ring size + batch (%u)",
				 o->frame_count, 2 * o->ring_size + o->batch);
	if (!o->batch || o->batch > o->ring_size)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "batch %u: 1 to the ring size (%u)", o->batch, o->ring_size);
	if (o->mode < GC_RING_MODE_AUTO || o->mode > GC_RING_MODE_ZEROCOPY)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "mode %d: auto, copy or zerocopy", o->mode);
	if (!o->port)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "media port 0");
	if (o->busy_poll_us > GC_RING_MAX_BUSY_POLL_US)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "busy poll %u us: at most %u", o->busy_poll_us,
				 GC_RING_MAX_BUSY_POLL_US);
	if (o->busy_poll_us && o->batch > 65535)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "batch %u: busy polling takes a budget up to 65535", o->batch);
	if (o->coalesce_us > GC_RING_MAX_COALESCE_US)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "coalescing %u us: at most %u", o->coalesce_us,
				 GC_RING_MAX_COALESCE_US);
	return 0;
}

static struct gc_ring *ring_alloc(const struct gc_ring_opts *opts, struct gcfp_error *err)
{
	struct gc_ring *ring = calloc(1, sizeof(*ring));
	pthread_condattr_t attr;

	if (!ring) {
		gcfp_fail(err, GCFP_ERR_SYSTEM, ENOMEM, "gc_ring");
		return NULL;
	}
	ring->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ring->wake_fd < 0) {
		gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "eventfd (table handover)");
		free(ring);
		return NULL;
	}
	ring->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ring->epoll_fd < 0 ||
	    epoll_ctl(ring->epoll_fd, EPOLL_CTL_ADD, ring->wake_fd,
		      &(struct epoll_event){ .events = EPOLLIN, .data.u32 = GC_RING_MAX_PORTS })) {
		gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "epoll (the ring's wait)");
		if (ring->epoll_fd >= 0)
			close(ring->epoll_fd);
		close(ring->wake_fd);
		free(ring);
		return NULL;
	}
	/* Default attributes: neither call can fail. */
	pthread_mutex_init(&ring->handover_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ring->handover_done, &attr);
	pthread_condattr_destroy(&attr);
	ring->opts = *opts;
	ring->busy_gap_ns = 1000000000ull;	/* no traffic seen: no coalescing yet */
	ring->stats.delay_min = UINT64_MAX;
	ring->published.delay_min = UINT64_MAX;
	atomic_flag_clear(&ring->publish_lock);
	return ring;
}

int gc_ring_open(const struct gc_ring_opts *opts, struct gc_ring **out, struct gcfp_error *err)
{
	struct gc_ring_opts o = *opts;
	int ret;

	gcfp_clear_error(err);
	ret = check_opts(&o, err);
	if (ret)
		return ret;
	*out = ring_alloc(&o, err);
	return *out ? 0 : -GCFP_ERR_SYSTEM;
}

static struct ring_port *port_new(struct gc_ring *ring, struct gcfp_error *err)
{
	struct ring_port *ports = realloc(ring->ports, (ring->n_ports + 1) * sizeof(*ports)), *p;

	if (!ports) {
		gcfp_fail(err, GCFP_ERR_SYSTEM, ENOMEM, "port");
		return NULL;
	}
	ring->ports = ports;
	p = &ports[ring->n_ports];
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->n_frames = ring->opts.frame_count;
	p->frame_mask = ~(__u64)(ring->opts.frame_size - 1);
	p->free = calloc(p->n_frames, sizeof(*p->free));
	if (!p->free) {
		gcfp_fail(err, GCFP_ERR_SYSTEM, ENOMEM, "frame stack");
		return NULL;
	}
	return p;
}

/* All frames to the free stack, then the fill ring filled. */
static void port_start(struct gc_ring *ring, struct ring_port *p)
{
	__u32 i;

	ring_init_cons(&p->rx);
	ring_init_prod(&p->tx);
	ring_init_prod(&p->fill);
	ring_init_cons(&p->comp);
	for (i = p->n_frames; i-- > 0;)
		p->free[p->n_free++] = (__u64)i * ring->opts.frame_size;
	refill(ring, p);
}

static void port_release(struct ring_port *p)
{
	int i;

	if (p->attached && p->skel)
		bpf_xdp_detach(p->info.ifindex, p->xdp_flags, NULL);
	if (p->fd >= 0)
		close(p->fd);
	for (i = 0; i < 4; i++)
		if (p->maps[i])
			munmap(p->maps[i], p->map_len[i]);
	if (p->skel)
		groupcast_ring__destroy(p->skel);
	if (p->umem)
		munmap(p->umem, p->umem_size);
	free(p->free);
}

/* Fake rings in ordinary memory: producer, consumer, flags, then entries. */
static void *sim_ring(struct gc_xsk_ring *r, __u32 size, size_t entry)
{
	__u32 *m = calloc(1, 16 + (size_t)size * entry);

	if (!m)
		return NULL;
	r->producer = &m[0];
	r->consumer = &m[1];
	r->flags = &m[2];
	r->descs = &m[4];
	r->size = size;
	r->mask = size - 1;
	return m;
}

int gc_ring_open_simulated(const struct gc_ring_opts *opts, int n_ports,
			   const struct gc_ring_port_info *infos, gc_ring_kick_fn kick_fn, void *ctx,
			   struct gc_ring **out, struct gcfp_error *err)
{
	struct gc_ring *ring;
	int ret, k;

	ret = gc_ring_open(opts, &ring, err);
	if (ret)
		return ret;
	ring->sim_kick = kick_fn;
	ring->sim_ctx = ctx;
	for (k = 0; k < n_ports; k++) {
		struct ring_port *p = port_new(ring, err);
		__u32 size = ring->opts.ring_size;

		if (!p)
			goto fail;
		ring->n_ports++;
		p->info = infos[k];
		p->info.fd = -1;
		p->umem_size = (size_t)p->n_frames * ring->opts.frame_size;
		p->umem = mmap(NULL, p->umem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p->umem == MAP_FAILED) {
			p->umem = NULL;
			gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "UMEM");
			goto fail;
		}
		/* freed by gc_ring_close() through maps[] with map_len 0: use
		 * free() instead, marked by fd == -1 */
		if (!sim_ring(&p->rx, size, sizeof(struct xdp_desc)) || !sim_ring(&p->tx, size, sizeof(struct xdp_desc)) ||
		    !sim_ring(&p->fill, size, 8) || !sim_ring(&p->comp, size, 8)) {
			gcfp_fail(err, GCFP_ERR_SYSTEM, ENOMEM, "rings");
			goto fail;
		}
		port_start(ring, p);
	}
	*out = ring;
	return 0;
fail:
	gc_ring_close(ring);
	return -(err ? err->code : GCFP_ERR_SYSTEM);
}

int gc_ring_sim_set_local(struct gc_ring *ring, int port, const struct gc_local_addr *local,
			  __u32 n)
{
	struct ring_port *p;

	if (port < 0 || port >= ring->n_ports || n > GC_MAX_LOCAL_ADDRS)
		return -GCFP_ERR_INVALID;
	p = &ring->ports[port];
	if (p->fd >= 0)
		return -GCFP_ERR_INVALID;	/* a real port reads its own */
	memcpy(p->local, local, n * sizeof(*local));
	p->n_local = n;
	return 0;
}

int gc_ring_sim_port(struct gc_ring *ring, int port, struct gc_ring_sim_port *v)
{
	struct ring_port *p;

	if (port < 0 || port >= ring->n_ports)
		return -GCFP_ERR_INVALID;
	p = &ring->ports[port];
	v->rx = &p->rx;
	v->tx = &p->tx;
	v->fill = &p->fill;
	v->comp = &p->comp;
	v->umem = p->umem;
	v->umem_size = p->umem_size;
	return 0;
}

static int map_ring(struct ring_port *p, int which, struct gc_xsk_ring *r, const struct xdp_ring_offset *off,
		    __u32 size, size_t entry, off_t pgoff, struct gcfp_error *err)
{
	size_t len = off->desc + (size_t)size * entry;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->fd, pgoff);

	if (m == MAP_FAILED)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "%s: mmap AF_XDP ring", p->info.ifname);
	p->maps[which] = m;
	p->map_len[which] = len;
	r->producer = (__u32 *)((char *)m + off->producer);
	r->consumer = (__u32 *)((char *)m + off->consumer);
	r->flags = (__u32 *)((char *)m + off->flags);
	r->descs = (char *)m + off->desc;
	r->size = size;
	r->mask = size - 1;
	return 0;
}

/* The port's addresses, read again: those served (p->local: the
 * interface's and its VLAN devices', or only the listen address, and the
 * VLANs served, gcfp_local_addrs()); the first untagged IPv4 and global
 * IPv6 address of them also go to info.ipv4/ipv6, zero when it has none. */
static int read_ip_addresses(struct gc_ring *ring, struct ring_port *p, struct gcfp_error *err)
{
	static const __u8 zero[16];
	int n;

	n = gcfp_local_addrs(p->info.ifname, &ring->opts.listen, p->local, GC_MAX_LOCAL_ADDRS);
	if (n < 0)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, -n, "%s: reading its addresses%s", p->info.ifname,
				 n == -E2BIG ? " (more than GC_MAX_LOCAL_ADDRS)" : "");
	p->n_local = n;
	memset(p->info.ipv4, 0, 4);
	memset(p->info.ipv6, 0, 16);
	for (int i = 0; i < n; i++) {
		const struct gc_local_addr *l = &p->local[i];

		if (l->vlan_id)
			continue;
		if (l->family == GC_FAMILY_IPV4 && !memcmp(p->info.ipv4, zero, 4))
			memcpy(p->info.ipv4, l->addr, 4);
		if (l->family == GC_FAMILY_IPV6 && !memcmp(p->info.ipv6, zero, 16) &&
		    !IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)l->addr))
			memcpy(p->info.ipv6, l->addr, 16);
	}
	return 0;
}

int gc_ring_refresh_addresses(struct gc_ring *ring, struct gcfp_error *err)
{
	int k, ret;

	gcfp_clear_error(err);
	for (k = 0; k < ring->n_ports; k++) {
		if (ring->ports[k].fd < 0)
			continue;	/* simulated: the test gave its addresses */
		ret = read_ip_addresses(ring, &ring->ports[k], err);
		if (ret)
			return ret;
	}
	return 0;
}

static int read_addresses(struct gc_ring *ring, struct ring_port *p, struct gcfp_error *err)
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "socket");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", p->info.ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		int e = errno;

		close(fd);
		return gcfp_fail(err, GCFP_ERR_SYSTEM, e, "%s: SIOCGIFHWADDR", p->info.ifname);
	}
	close(fd);
	memcpy(p->info.mac, ifr.ifr_hwaddr.sa_data, 6);
	return read_ip_addresses(ring, p, err);
}

int gc_ring_set_busy_poll(int fd, __u32 usec, __u32 budget, struct gc_ring_port_info *info)
{
	static const struct { int name; const char *label; } opts[] = {
		{ SO_PREFER_BUSY_POLL, "SO_PREFER_BUSY_POLL" },
		{ SO_BUSY_POLL, "SO_BUSY_POLL" },
		{ SO_BUSY_POLL_BUDGET, "SO_BUSY_POLL_BUDGET" },
	};
	int values[3] = { 1, (int)usec, (int)budget }, value, zero = 0, e;
	socklen_t len = sizeof(value);

	info->busy_poll_us = info->busy_poll_budget = 0;
	info->busy_poll_refused[0] = 0;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (setsockopt(fd, SOL_SOCKET, opts[i].name, &values[i], sizeof(values[i]))) {
			e = errno;
			snprintf(info->busy_poll_refused, sizeof(info->busy_poll_refused), "%s", opts[i].label);
			/* Half set is not a mode: back to interrupts (what the kernel
			 * took may not be undone either; it is harmless without
			 * SO_BUSY_POLL, which is what gates busy polling). */
			setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &zero, sizeof(zero));
			setsockopt(fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &zero, sizeof(zero));
			return -e;
		}
	}
	if (!getsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &value, &len))
		info->busy_poll_us = (__u32)value;
	info->busy_poll_budget = budget;	/* taken; the kernel has no getsockopt for it */
	return 0;
}

/* EBUSY: another socket holds the queue - or held it: a closed socket's
 * buffer pool lets go of the queue in deferred work (xp_release_deferred), so
 * an SFU restarted at once may find it busy for a moment. Retry for 2 s. */
static int bind_socket(struct gc_ring *ring, struct ring_port *p, __u16 flags)
{
	struct sockaddr_xdp sxdp = {
		.sxdp_family = AF_XDP,
		.sxdp_ifindex = p->info.ifindex,
		.sxdp_queue_id = ring->opts.queue,
		.sxdp_flags = flags | XDP_USE_NEED_WAKEUP,
	};
	int tries = 100;

	while (bind(p->fd, (struct sockaddr *)&sxdp, sizeof(sxdp))) {
		if (errno != EBUSY || !--tries)
			return -errno;
		usleep(20000);
	}
	return 0;
}

int gc_ring_add_interface(struct gc_ring *ring, const char *ifname, struct gcfp_error *err)
{
	struct xdp_umem_reg reg = {};
	struct xdp_mmap_offsets off;
	socklen_t optlen = sizeof(off);
	struct ring_port *p;
	__u32 size = ring->opts.ring_size, key, fd_value;
	int ret, index, e;

	gcfp_clear_error(err);
	if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "interface name \"%s\"", ifname ? ifname : "");
	if (ring->n_ports >= GC_RING_MAX_PORTS)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "%s: at most %d interfaces", ifname,
				 GC_RING_MAX_PORTS);
	if (ring->opts.queue >= GC_RING_MAX_QUEUES)
		return gcfp_fail(err, GCFP_ERR_INVALID, 0, "queue %u: the XSKMAP has %d entries",
				 ring->opts.queue, GC_RING_MAX_QUEUES);
	p = port_new(ring, err);
	if (!p)
		return -(err ? err->code : GCFP_ERR_SYSTEM);
	index = ring->n_ports++;
	snprintf(p->info.ifname, sizeof(p->info.ifname), "%s", ifname);
	p->info.queue = ring->opts.queue;
	p->info.ifindex = if_nametoindex(ifname);
	if (!p->info.ifindex) {
		ret = gcfp_fail(err, GCFP_ERR_NO_DEVICE, errno, "%s: no such interface", ifname);
		goto fail;
	}
	ret = read_addresses(ring, p, err);
	if (ret)
		goto fail;

	/* UMEM: page-aligned frames, registered once, never allocated again. */
	p->umem_size = (size_t)p->n_frames * ring->opts.frame_size;
	p->umem = mmap(NULL, p->umem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p->umem == MAP_FAILED) {
		p->umem = NULL;
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "%s: mmap UMEM of %zu bytes", ifname, p->umem_size);
		goto fail;
	}
	p->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		e = errno;
		ret = gcfp_fail(err, errno_code(e), e, "%s: socket(AF_XDP)", ifname);
		goto fail;
	}
	reg.addr = (__u64)(uintptr_t)p->umem;
	reg.len = p->umem_size;
	reg.chunk_size = ring->opts.frame_size;
	if (setsockopt(p->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)) ||
	    setsockopt(p->fd, SOL_XDP, XDP_UMEM_FILL_RING, &size, sizeof(size)) ||
	    setsockopt(p->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &size, sizeof(size)) ||
	    setsockopt(p->fd, SOL_XDP, XDP_RX_RING, &size, sizeof(size)) ||
	    setsockopt(p->fd, SOL_XDP, XDP_TX_RING, &size, sizeof(size))) {
		e = errno;
		ret = gcfp_fail(err, errno_code(e), e, "%s: AF_XDP UMEM/ring setup (%u frames of %u, rings of %u)",
				ifname, p->n_frames, ring->opts.frame_size, size);
		goto fail;
	}
	if (getsockopt(p->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen)) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "%s: XDP_MMAP_OFFSETS", ifname);
		goto fail;
	}
	if ((ret = map_ring(p, 0, &p->rx, &off.rx, size, sizeof(struct xdp_desc), XDP_PGOFF_RX_RING, err)) ||
	    (ret = map_ring(p, 1, &p->tx, &off.tx, size, sizeof(struct xdp_desc), XDP_PGOFF_TX_RING, err)) ||
	    (ret = map_ring(p, 2, &p->fill, &off.fr, size, 8, XDP_UMEM_PGOFF_FILL_RING, err)) ||
	    (ret = map_ring(p, 3, &p->comp, &off.cr, size, 8, XDP_UMEM_PGOFF_COMPLETION_RING, err)))
		goto fail;

	/* The program, one instance per interface (its XSKMAP is per queue). */
	p->skel = groupcast_ring__open();
	if (!p->skel) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "%s: open the ring BPF object", ifname);
		goto fail;
	}
	p->skel->rodata->gc_ring_cfg.port = ring->opts.port;
	/* Copy and aligned zero-copy mode put XDP_PACKET_HEADROOM before the data. */
	p->skel->rodata->gc_ring_cfg.max_frame = ring->opts.frame_size - XDP_PACKET_HEADROOM;
	if (groupcast_ring__load(p->skel)) {
		e = errno;
		ret = gcfp_fail(err, e == EPERM ? GCFP_ERR_NOT_ROOT : GCFP_ERR_VERIFIER, e,
				"%s: load the ring BPF program", ifname);
		goto fail;
	}

	/* Zero-copy first (AUTO), copy when the driver cannot. */
	ret = -EOPNOTSUPP;
	if (ring->opts.mode != GC_RING_MODE_COPY) {
		ret = bind_socket(ring, p, XDP_ZEROCOPY);
		if (ret && ring->opts.mode == GC_RING_MODE_ZEROCOPY) {
			ret = gcfp_fail(err, errno_code(-ret), -ret, "%s queue %u: bind AF_XDP in zero-copy mode",
					ifname, ring->opts.queue);
			goto fail;
		}
		if (ret)
			p->info.zerocopy_errno = -ret;
	}
	if (ret) {
		ret = bind_socket(ring, p, XDP_COPY);
		if (ret) {
			ret = gcfp_fail(err, errno_code(-ret), -ret, "%s queue %u: bind AF_XDP in copy mode",
					ifname, ring->opts.queue);
			goto fail;
		}
	} else {
		p->info.zerocopy = 1;
	}
	p->info.fd = p->fd;
	p->info.tx_need_wakeup = !!(*p->tx.flags & XDP_RING_NEED_WAKEUP);
	if (ring->opts.busy_poll_us) {
		ret = gc_ring_set_busy_poll(p->fd, ring->opts.busy_poll_us, ring->opts.batch, &p->info);
		if (ret)
			p->info.busy_poll_errno = -ret;	/* runs on wake-ups; the caller logs why */
		else
			ring->busy = 1;
		ret = 0;
	}

	key = ring->opts.queue;
	fd_value = p->fd;
	if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.gc_xsks), &key, &fd_value, BPF_ANY)) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "%s: insert the socket into the XSKMAP", ifname);
		goto fail;
	}
	/* Driver mode (veth has it), else generic; never replace another program. */
	p->xdp_flags = XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE;
	ret = bpf_xdp_attach(p->info.ifindex, bpf_program__fd(p->skel->progs.groupcast_ring), p->xdp_flags, NULL);
	if (ret == -EOPNOTSUPP || ret == -EINVAL) {
		p->xdp_flags = XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE;
		ret = bpf_xdp_attach(p->info.ifindex, bpf_program__fd(p->skel->progs.groupcast_ring), p->xdp_flags, NULL);
	} else if (!ret) {
		p->info.xdp_native = 1;
	}
	if (ret) {
		ret = gcfp_fail(err, errno_code(-ret), -ret, "%s: attach the ring XDP program%s", ifname,
				ret == -EBUSY || ret == -EEXIST ? " (another XDP program is attached)" : "");
		goto fail;
	}
	p->attached = 1;
	/* Closing the socket (port_release()) takes it out of the set again. */
	if (epoll_ctl(ring->epoll_fd, EPOLL_CTL_ADD, p->fd,
		      &(struct epoll_event){ .events = EPOLLIN, .data.u32 = (__u32)index })) {
		ret = gcfp_fail(err, GCFP_ERR_SYSTEM, errno, "%s: epoll_ctl (the ring's wait)", ifname);
		goto fail;
	}
	port_start(ring, p);
	return index;
fail:
	port_release(p);
	ring->n_ports--;
	return ret;
}

int gc_ring_port_count(const struct gc_ring *ring)
{
	return ring->n_ports;
}

int gc_ring_port_info(const struct gc_ring *ring, int port, struct gc_ring_port_info *info)
{
	if (port < 0 || port >= ring->n_ports)
		return -GCFP_ERR_INVALID;
	*info = ring->ports[port].info;
	return 0;
}

void gc_ring_close(struct gc_ring *ring)
{
	int k;

	if (!ring)
		return;
	for (k = 0; k < ring->n_ports; k++) {
		struct ring_port *p = &ring->ports[k];

		if (p->fd < 0 && !p->skel) {	/* simulated: rings in heap memory */
			free(p->rx.producer);
			free(p->tx.producer);
			free(p->fill.producer);
			free(p->comp.producer);
			p->rx.producer = p->tx.producer = p->fill.producer = p->comp.producer = NULL;
		}
		port_release(p);
	}
	gc_ring_table_free(ring->table);
	free(ring->published_rooms);
	gc_ring_table_free(ring->offered);
	close(ring->epoll_fd);
	close(ring->wake_fd);
	pthread_cond_destroy(&ring->handover_done);
	pthread_mutex_destroy(&ring->handover_lock);
	free(ring->ports);
	free(ring);
}
