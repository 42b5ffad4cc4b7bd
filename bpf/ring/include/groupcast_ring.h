/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * groupcast_ring.h - the AF_XDP ring backend of the SFU (Docs/ring.md).
 *
 * The pktswitch paper's netmap SFU on mainline Linux: per interface one
 * AF_XDP socket (UMEM, fill/completion/RX/TX rings) bound to one receive
 * queue, fed by bpf/ring.bpf.c (SFU media port -> the socket, the rest ->
 * the host stack).  Per batch: receive up to `batch` frames from RX, route
 * each media packet with one table lookup, write n copies into TX slots with
 * rewritten Ethernet/IP/UDP headers and checksums, move the received buffer
 * itself to TX as the echo, kick once, recycle completions.  No allocation
 * per packet: every buffer is a UMEM frame preallocated at open.
 *
 * Driven from one thread (Swift's RingForwarder): gc_ring_wait(),
 * gc_ring_install(), gc_ring_adopt(), gc_ring_serving() and gc_ring_process()
 * are not thread-safe; only gc_ring_stats(), gc_ring_room_media() and
 * gc_ring_offer() may be called from another thread (the first two read a
 * snapshot the processing thread publishes, the last hands it a table).
 *
 * Functions returning int give 0 (or a count) on success and a negative
 * enum gcfp_code on failure, with @err filled as in groupcast_fastpath.h.
 */
#ifndef GROUPCAST_RING_H
#define GROUPCAST_RING_H

#include <stddef.h>
#include <stdint.h>

#include "groupcast_layout.h"
#include "groupcast_fastpath.h"

#ifdef __cplusplus
extern "C" {
#endif

enum gc_ring_mode {
	GC_RING_MODE_AUTO = 0,		/* zero-copy where the driver offers it, else copy */
	GC_RING_MODE_COPY = 1,		/* XDP_COPY */
	GC_RING_MODE_ZEROCOPY = 2,	/* XDP_ZEROCOPY or fail */
};

struct gc_ring_opts {
	__u16 port;		/* SFU media UDP port, host order */
	__u32 queue;		/* receive queue bound on every interface (default 0) */
	__u32 ring_size;	/* entries of RX, TX, fill and completion rings (power of 2; default 4096) */
	__u32 frame_count;	/* UMEM frames per interface (default 2 * ring_size + 2 * batch) */
	__u32 frame_size;	/* 2048 or 4096 (default 2048) */
	__u32 batch;		/* RX descriptors per batch (default 64, at most ring_size) */
	int mode;		/* enum gc_ring_mode */
	int echo;		/* 1: move each received media buffer back to its origin */
	__u32 shed_vhq_permille; /* RX ring fill above which VHQ is shed (default 500) */
	__u32 shed_vsq_permille; /* RX ring fill above which VSQ is shed too (default 750) */
	/* Preferred busy polling (Documentation/networking/napi.rst): with
	 * @busy_poll_us > 0 each socket gets SO_PREFER_BUSY_POLL, SO_BUSY_POLL
	 * @busy_poll_us and SO_BUSY_POLL_BUDGET @batch, and gc_ring_wait() polls
	 * the device's NAPI from this thread (a non-blocking recvfrom()) before it
	 * sleeps. Pays off with the device's napi_defer_hard_irqs and
	 * gro_flush_timeout set (Docs/ring.md). Refused by the kernel: the port
	 * runs without it (gc_ring_port_info.busy_poll_errno). 0: off (default). */
	__u32 busy_poll_us;
	/* Wake-up coalescing: a gc_ring_wait() after a pass that found frames but
	 * less than a batch first sleeps this long - when frames have been coming
	 * more often than that (a moving average of the time between passes that
	 * found some), so the sleep collects more - and what arrives meanwhile is
	 * taken, sent and kicked together (one wake-up per @coalesce_us under
	 * load, at most that much added latency; sparse traffic and an idle ring
	 * sleep until the next frame). 0: off (default). At most
	 * GC_RING_MAX_COALESCE_US. */
	__u32 coalesce_us;
	/* The address the SFU's media socket is bound to: the only destination
	 * served (and so the copies' source). Family 0 (zeroed): every address
	 * of the interfaces and their VLAN devices. */
	struct gc_local_addr listen;
};

#define GC_RING_MAX_BUSY_POLL_US	100000	/* 100 ms */
#define GC_RING_MAX_COALESCE_US		100000

/* Fills @opts with the defaults above (port 7002, echo on). */
void gc_ring_opts_init(struct gc_ring_opts *opts);

struct gc_ring_stats {
	__u64 received;		/* frames taken from RX rings */
	__u64 forwarded;	/* copies placed in TX rings */
	__u64 echoed;		/* received buffers moved to TX as the echo */
	__u64 drops[GC_DROP_MAX];	/* by enum gc_drop (groupcast_layout.h) */
	__u64 batches;		/* non-empty RX batches */
	__u64 kicks;		/* sendto() calls that started transmission */
	__u64 tx_polls;		/* poll() calls that started transmission on several copy-mode TX rings at once */
	__u64 wakeups;		/* recvfrom()/poll() calls for the fill ring (need_wakeup) */
	__u64 waits;		/* gc_ring_wait() calls that went to sleep (epoll_wait(), or poll() while a TX ring waits for room) */
	__u64 busy_polls;	/* non-blocking recvfrom() calls that polled the NAPI (busy_poll_us) */
	__u64 coalesce_sleeps;	/* coalescing sleeps (coalesce_us) */
	__u64 tx_stalls;	/* times a TX ring or the free frames ran out mid-batch */
	__u64 tx_stall_ns;	/* time spent waiting for TX space (the paper's NTX wait) */
	__u64 rx_ring_dropped;	/* kernel: frames dropped for lack of fill-ring buffers or RX space (XDP_STATISTICS) */
	__u64 too_big;		/* frames to the media port longer than a frame holds (dropped by the program) */
	__u64 delay_count, delay_sum, delay_min, delay_max;
	__u64 delay_buckets[GC_DELAY_BUCKETS];	/* gc_delay_bucket() */
};

/* Interfaces one ring serves (gc_ring_add_interface). */
#define GC_RING_MAX_PORTS	64

/* One interface the ring serves. */
struct gc_ring_port_info {
	char ifname[16];
	__u32 ifindex;
	__u32 queue;
	__u8 mac[6];
	__u8 zerocopy;		/* 1: XDP_ZEROCOPY, 0: XDP_COPY */
	__u8 xdp_native;	/* 1: program attached in driver mode, 0: generic (skb) mode */
	__u8 ipv4[4];		/* the interface's first served IPv4 address, 0 if none (a
				 * simulated port's only one); copies come from the address
				 * the origin sent to */
	__u8 ipv6[16];		/* its first served global IPv6 address, 0 if none */
	int zerocopy_errno;	/* AUTO mode in copy mode: why the zero-copy bind failed */
	int fd;			/* the AF_XDP socket (-1: simulated) */
	__u32 busy_poll_us;	/* SO_BUSY_POLL as the kernel reports it (0: busy polling off) */
	__u32 busy_poll_budget;	/* SO_BUSY_POLL_BUDGET as set (the kernel took it; it has no getsockopt) */
	int busy_poll_errno;	/* busy_poll_us asked for but refused: the setsockopt's errno */
	char busy_poll_refused[24];	/* ...and which option it refused ("SO_PREFER_BUSY_POLL") */
	__u32 tx_need_wakeup;	/* the TX ring asks for a sendto() kick (XDP_RING_NEED_WAKEUP; copy mode always does) */
};

struct gc_ring;
struct gc_ring_table;

/* A ring without interfaces (add them with gc_ring_add_interface). */
int gc_ring_open(const struct gc_ring_opts *opts, struct gc_ring **ring, struct gcfp_error *err);

/* Loads the redirect program on @ifname, creates and binds its AF_XDP socket
 * (zero-copy first in AUTO mode, falling back to copy: the port's info says
 * which, and why), attaches the program (driver mode, else generic). Returns
 * the port index (>= 0). GCFP_ERR_BUSY: another XDP program holds the
 * interface. */
int gc_ring_add_interface(struct gc_ring *ring, const char *ifname, struct gcfp_error *err);

/* The busy-polling options on socket @fd (the choke point of
 * gc_ring_add_interface(), any socket will do): SO_PREFER_BUSY_POLL,
 * SO_BUSY_POLL @usec, SO_BUSY_POLL_BUDGET @budget. 0: all set, @info's
 * busy_poll_us says what the kernel holds (read back), busy_poll_budget what
 * it took; -errno: one was
 * refused (@info->busy_poll_refused names it) and busy polling is turned off
 * again on @fd. */
int gc_ring_set_busy_poll(int fd, __u32 usec, __u32 budget, struct gc_ring_port_info *info);

/* Reads every port's addresses again (gcfp_local_addrs(): the interface's
 * and its VLAN devices', or only the listen address, each a destination
 * served): an address or VLAN device added since the port was added is
 * served, a removed one no longer. Call it from the
 * processing thread (the SFU does, every 2 s). */
int gc_ring_refresh_addresses(struct gc_ring *ring, struct gcfp_error *err);

int gc_ring_port_count(const struct gc_ring *ring);
int gc_ring_port_info(const struct gc_ring *ring, int port, struct gc_ring_port_info *info);

/* Waits up to @timeout_ms for received frames (or, while a TX ring holds
 * frames its kick could not send, room in it; or a table offered:
 * gc_ring_offer()), in epoll_wait() (poll() in the TX case): with
 * coalesce_us, after a sleep that long if the last gc_ring_process() found
 * less than a batch; with busy polling, after polling each port's NAPI once.
 * 1: something to do, 0: timeout, <0: -errno. */
int gc_ring_wait(struct gc_ring *ring, int timeout_ms);

/* One pass over every port: a batch from each RX ring, forwarded, kicked
 * (only the TX rings that got frames: one poll() for the copy-mode ones, a
 * sendto() for one alone or one with more than 32), completions recycled. Waits for TX space when a TX ring is full, unless
 * *@stop becomes nonzero. Returns the frames received. */
int gc_ring_process(struct gc_ring *ring, const volatile int *stop);

/* Replaces the routing table (the ring owns @table from now on and frees the
 * previous one). Subscribers whose ifindex is not one of the ring's ports (or
 * 0: next hop unresolved) are counted as GC_DROP_SEND_FAILED. */
void gc_ring_install(struct gc_ring *ring, struct gc_ring_table *table);

/* What gc_ring_offer() found. */
enum gc_ring_handover {
	GC_RING_ADOPTED = 0,	/* installed: the next frame processed is routed by it */
	GC_RING_PENDING = 1,	/* no processing thread serves (gc_ring_serving()): installed
				 * when one does, freed by gc_ring_close() otherwise */
	GC_RING_TIMED_OUT = 2,	/* the processing thread has not taken it yet (busy: a TX
				 * stall); it does at its next gc_ring_adopt() */
};

/* Hands @table, built on another thread, to the processing thread (the ring
 * owns it from now on): wakes its gc_ring_wait() and waits up to @timeout_ms
 * for its gc_ring_adopt(). A table offered while another is still waiting
 * replaces it (that one is freed, never used). Returns enum gc_ring_handover. */
int gc_ring_offer(struct gc_ring *ring, struct gc_ring_table *table, int timeout_ms);

/* The processing thread: installs the table offered since the last call, if
 * any (gc_ring_install(): the previous one is freed here, so by the only
 * thread that reads it), and releases its offerer. 1: installed one, 0: none
 * was offered. */
int gc_ring_adopt(struct gc_ring *ring);

/* The processing thread, on starting (1) and on returning for good (0): while
 * it does not serve, gc_ring_offer() does not wait (and offers waiting return
 * GC_RING_PENDING). */
void gc_ring_serving(struct gc_ring *ring, int serving);

/* The stop flag gc_ring_process() watches, for callers without C11 atomics. */
static inline void gc_ring_store_int(int *flag, int value)
{
	__atomic_store_n(flag, value, __ATOMIC_RELEASE);
}

static inline int gc_ring_load_int(const int *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/* The statistics published at the end of the last gc_ring_process(). */
void gc_ring_stats(struct gc_ring *ring, struct gc_ring_stats *stats);

/* Frames per state, summed over ports (accounting checks). Between
 * gc_ring_process() calls free + fill + tx == total. */
struct gc_ring_frames {
	__u64 total;	/* UMEM frames */
	__u64 free;	/* owned by user space, in no ring */
	__u64 fill;	/* given to the kernel: fill ring, or received and not yet taken from RX */
	__u64 tx;	/* placed in TX, not yet back through the completion ring */
};
void gc_ring_frames(const struct gc_ring *ring, struct gc_ring_frames *frames);

/* Detaches the programs, closes the sockets, frees everything. NULL is fine. */
void gc_ring_close(struct gc_ring *ring);

/* Routing table: one route per source SSRC, subscribers as in gc_route
 * (ifindex, dst/src MAC, address, port). */
struct gc_ring_table *gc_ring_table_new(__u32 max_routes, int echo);
/* -GCFP_ERR_ROUTES_FULL, -GCFP_ERR_INVALID (duplicate SSRC, bad family). */
int gc_ring_table_add(struct gc_ring_table *table, __u32 ssrc, __u8 family, __u8 stream_type,
		      const __u8 origin_addr[16], __u16 origin_port_be, __u16 origin_vlan,
		      const struct gc_subscriber *subs, __u32 n_subs);
void gc_ring_table_free(struct gc_ring_table *table);
/* The caller's name for what @table was built from (the SFU's routing-table
 * generation): it travels with the table through gc_ring_offer() and
 * gc_ring_adopt(), so the processing thread learns which one it installed
 * from the table itself. 0 until set. */
void gc_ring_table_set_generation(struct gc_ring_table *table, __u64 generation);
/* The processing thread: the generation of the table in use (0: none). */
__u64 gc_ring_installed_generation(const struct gc_ring *ring);

/*
 * Media per room (struct gc_media_counters, Docs/operations.md): a table
 * names its rooms, each route belongs to one, and the core counts each
 * route's media into its room's counters. A table installed continues the
 * counts of the rooms the previous one had (same name); a room absent from
 * it is forgotten.
 */
#define GC_RING_ROOM_NAME_MAX	64

/* Adds room @name (1..GC_RING_ROOM_NAME_MAX bytes, not yet in @table): its
 * index (>= 0), or -GCFP_ERR_INVALID, -GCFP_ERR_SYSTEM. */
int gc_ring_table_add_room(struct gc_ring_table *table, const char *name);
/* The route of @ssrc belongs to room @room (an index from
 * gc_ring_table_add_room); a route without a room is not counted per room.
 * 0 or -GCFP_ERR_INVALID (no such route or room). */
int gc_ring_table_route_room(struct gc_ring_table *table, __u32 ssrc, int room);
/* Any thread: the rooms of the table in use as last published (with the
 * statistics): their number; with 0 <= @index < that, room @index's name
 * (NUL-terminated) and counters. */
int gc_ring_room_media(struct gc_ring *ring, int index, char name[GC_RING_ROOM_NAME_MAX + 1],
		       struct gc_media_counters *media);

/*
 * Testing without a kernel: a ring whose @n_ports ports have rings and UMEM
 * in ordinary memory. The test plays the kernel through the ring views
 * below and the kick hook, which gc_ring_process() calls where it would call
 * sendto() (return 0, or -EAGAIN when nothing could be sent: TX full).
 */
struct gc_xsk_ring {
	__u32 *producer;
	__u32 *consumer;
	__u32 *flags;
	void *descs;		/* struct xdp_desc[] (RX, TX) or __u64[] (fill, completion) */
	__u32 size;
	__u32 mask;
	__u32 cached_prod;
	__u32 cached_cons;
};

struct gc_ring_sim_port {
	struct gc_xsk_ring *rx, *tx, *fill, *comp;
	void *umem;
	__u64 umem_size;
};

typedef int (*gc_ring_kick_fn)(void *ctx, int port);

int gc_ring_open_simulated(const struct gc_ring_opts *opts, int n_ports,
			   const struct gc_ring_port_info *infos,
			   gc_ring_kick_fn kick, void *ctx,
			   struct gc_ring **ring, struct gcfp_error *err);
int gc_ring_sim_port(struct gc_ring *ring, int port, struct gc_ring_sim_port *view);
/* The served addresses and VLANs of simulated port @port, as a real port reads
 * them (gcfp_local_addrs); without, a simulated port serves its info's
 * addresses, untagged. */
int gc_ring_sim_set_local(struct gc_ring *ring, int port, const struct gc_local_addr *local,
			  __u32 n);

#ifdef __cplusplus
}
#endif

#endif /* GROUPCAST_RING_H */
