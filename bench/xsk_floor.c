// SPDX-License-Identifier: GPL-2.0
/*
 * xsk_floor: the copy-mode AF_XDP transmit floor - what the kernel spends per
 * frame the ring backend hands it (Docs/ring.md, scripts/bench/ring).
 *
 * One AF_XDP socket bound in copy mode (XDP_COPY) to queue 0 of --dev, UMEM
 * frames pre-built once (Ethernet/IPv4/UDP to --dst-mac/--dst, --len bytes),
 * then only: up to --batch descriptors into the TX ring, one sendto() kick
 * (xsk_generic_xmit: an skb per descriptor, copied from the UMEM, through the
 * device's transmit), completions reaped - for --seconds, as fast as it goes
 * or paced to --rate frames per second. No receive ring, no XDP program, no
 * parsing or rewriting: the ring SFU's per-copy work minus everything it
 * does in user space.
 *
 * The caller makes the device a veth whose peer drops every frame at TC
 * ingress (a matchall drop), so the "wire" costs what veth_xmit and a drop
 * cost. The peer's receive runs in NET_RX softirq on this CPU, when sendto()
 * re-enables bottom halves (inside this thread's run time) or in ksoftirqd
 * (added from ksoftirqd/CPU's schedstat): the process pins itself to --cpu.
 *
 * Output, one line: frames, kicks, seconds, this thread's run time and
 * ksoftirqd's on the CPU (ns, /proc/.../schedstat: the scheduler's exact
 * sum_exec_runtime, not tick samples), their sum per frame, and the CPU's
 * softirq ticks (/proc/stat, tick-sampled and overlapping the run time: for
 * reference only).
 *
 *   xsk_floor --dev IF --dst-mac MAC --src IP --dst IP [--cpu N] [--seconds S]
 *             [--batch N] [--rate FPS] [--len BYTES] [--ring-size N]
 * Exit status 0, 1 on a usage or setup error (named on stderr).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/if_xdp.h>

#define FRAME_SIZE 2048

struct ring {
	uint32_t *producer, *consumer, *flags;
	void *descs;
	uint32_t mask;
};

static int fail(const char *what)
{
	fprintf(stderr, "xsk_floor: %s: %s\n", what, strerror(errno));
	return 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The first field of a schedstat file: time on CPU, ns. */
static uint64_t run_ns(const char *path)
{
	unsigned long long run = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &run) != 1)
		run = 0;
	fclose(f);
	return run;
}

/* /proc/PID/task/PID/schedstat of ksoftirqd/@cpu, or "" when not found. */
static void ksoftirqd_path(int cpu, char *path, size_t size)
{
	char want[32], comm[64], file[300];
	struct dirent *e;
	DIR *d = opendir("/proc");

	path[0] = 0;
	snprintf(want, sizeof(want), "ksoftirqd/%d\n", cpu);
	while (d && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(file, sizeof(file), "/proc/%s/comm", e->d_name);
		f = fopen(file, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, want))
			snprintf(path, size, "/proc/%s/schedstat", e->d_name);
		fclose(f);
		if (path[0])
			break;
	}
	if (d)
		closedir(d);
}

/* Field 7 (softirq) of /proc/stat's cpu@cpu line, in USER_HZ ticks. */
static unsigned long long softirq_ticks(int cpu)
{
	char line[512], want[16];
	unsigned long long v[7] = {};
	FILE *f = fopen("/proc/stat", "r");

	snprintf(want, sizeof(want), "cpu%d ", cpu);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want)) &&
		    sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
			   &v[5], &v[6]) == 7)
			break;
	if (f)
		fclose(f);
	return v[6];
}

static uint16_t csum16(const void *data, size_t len)
{
	const uint16_t *p = data;
	uint32_t sum = 0;

	for (; len > 1; len -= 2)
		sum += *p++;
	if (len)
		sum += *(const uint8_t *)p;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Ethernet + IPv4 + UDP, @len bytes in all (UDP checksum 0: none). */
static void build_frame(uint8_t *f, uint32_t len, const uint8_t dmac[6], const uint8_t smac[6], struct in_addr src,
			struct in_addr dst)
{
	struct iphdr *ip = (struct iphdr *)(f + ETH_HLEN);
	struct udphdr *udp = (struct udphdr *)(ip + 1);

	memset(f, 0, len);
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	f[12] = 0x08;
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(len - ETH_HLEN);
	ip->saddr = src.s_addr;
	ip->daddr = dst.s_addr;
	ip->check = csum16(ip, sizeof(*ip));
	udp->source = htons(7002);
	udp->dest = htons(9);
	udp->len = htons(len - ETH_HLEN - sizeof(*ip));
}

static int map_ring(int fd, struct ring *r, const struct xdp_ring_offset *off, uint32_t size, size_t entry,
		    off_t pgoff)
{
	void *m = mmap(NULL, off->desc + (size_t)size * entry, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		       pgoff);

	if (m == MAP_FAILED)
		return -1;
	r->producer = (uint32_t *)((char *)m + off->producer);
	r->consumer = (uint32_t *)((char *)m + off->consumer);
	r->flags = (uint32_t *)((char *)m + off->flags);
	r->descs = (char *)m + off->desc;
	r->mask = size - 1;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) == 6
		       ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: xsk_floor --dev IF --dst-mac MAC --src IP --dst IP [--cpu N] [--seconds S] "
			"[--batch N (1-32)] [--rate FPS] [--len BYTES] [--ring-size N]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dev", required_argument, 0, 'd' }, { "dst-mac", required_argument, 0, 'm' },
		{ "src", required_argument, 0, 's' }, { "dst", required_argument, 0, 't' },
		{ "cpu", required_argument, 0, 'c' }, { "seconds", required_argument, 0, 'S' },
		{ "batch", required_argument, 0, 'b' }, { "rate", required_argument, 0, 'r' },
		{ "len", required_argument, 0, 'l' }, { "ring-size", required_argument, 0, 'R' },
		{ 0, 0, 0, 0 },
	};
	const char *dev = NULL;
	uint8_t dmac[6], smac[6] = { 2, 0, 0, 0, 0, 1 };
	int have_mac = 0, cpu = -1, opt, fd;
	struct in_addr src = {}, dst = {};
	double seconds = 3, rate = 0;
	uint32_t batch = 32, len = 241, ring_size = 2048, n_frames, n_free, i, ifindex;
	uint64_t *free_frames, frames = 0, kicks = 0, eagain = 0;
	struct xdp_umem_reg reg = {};
	struct xdp_mmap_offsets off;
	socklen_t optlen = sizeof(off);
	struct ring tx, comp, fill;
	uint32_t tx_prod, comp_cons;
	char ksoft[300];
	uint8_t *umem;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'm': have_mac = !parse_mac(optarg, dmac); break;
		case 's': if (inet_pton(AF_INET, optarg, &src) != 1) { usage(); return 1; } break;
		case 't': if (inet_pton(AF_INET, optarg, &dst) != 1) { usage(); return 1; } break;
		case 'c': cpu = atoi(optarg); break;
		case 'S': seconds = atof(optarg); break;
		case 'b': batch = (uint32_t)atoi(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'l': len = (uint32_t)atoi(optarg); break;
		case 'R': ring_size = (uint32_t)atoi(optarg); break;
		default: usage(); return 1;
		}
	}
	if (!dev || !have_mac || !src.s_addr || !dst.s_addr || seconds <= 0 || batch < 1 || batch > 32 ||
	    len < 64 || len > FRAME_SIZE - 256 || ring_size < 64 || (ring_size & (ring_size - 1)) || rate < 0) {
		usage();
		return 1;
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			return fail("sched_setaffinity");
	}
	ifindex = if_nametoindex(dev);
	if (!ifindex)
		return fail(dev);

	/* UMEM: twice the TX ring's worth of frames, all the same frame. */
	n_frames = 2 * ring_size;
	umem = mmap(NULL, (size_t)n_frames * FRAME_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		    -1, 0);
	free_frames = calloc(n_frames, sizeof(*free_frames));
	if (umem == MAP_FAILED || !free_frames)
		return fail("UMEM");
	for (i = 0; i < n_frames; i++) {
		build_frame(umem + (size_t)i * FRAME_SIZE, len, dmac, smac, src, dst);
		free_frames[i] = (uint64_t)i * FRAME_SIZE;
	}
	n_free = n_frames;

	fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket(AF_XDP)");
	reg.addr = (uint64_t)(uintptr_t)umem;
	reg.len = (uint64_t)n_frames * FRAME_SIZE;
	reg.chunk_size = FRAME_SIZE;
	/* A UMEM needs a fill and a completion ring even when nothing is received. */
	if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)) ||
	    setsockopt(fd, SOL_XDP, XDP_UMEM_FILL_RING, &ring_size, sizeof(ring_size)) ||
	    setsockopt(fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &ring_size, sizeof(ring_size)) ||
	    setsockopt(fd, SOL_XDP, XDP_TX_RING, &ring_size, sizeof(ring_size)))
		return fail("AF_XDP UMEM/ring setup");
	if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen))
		return fail("XDP_MMAP_OFFSETS");
	if (map_ring(fd, &tx, &off.tx, ring_size, sizeof(struct xdp_desc), XDP_PGOFF_TX_RING) ||
	    map_ring(fd, &comp, &off.cr, ring_size, 8, XDP_UMEM_PGOFF_COMPLETION_RING) ||
	    map_ring(fd, &fill, &off.fr, ring_size, 8, XDP_UMEM_PGOFF_FILL_RING))
		return fail("mmap AF_XDP rings");
	{
		struct sockaddr_xdp sxdp = {
			.sxdp_family = AF_XDP, .sxdp_ifindex = ifindex, .sxdp_queue_id = 0,
			.sxdp_flags = XDP_COPY | XDP_USE_NEED_WAKEUP,
		};

		int tries = 100;

		/* EBUSY: a socket closed just before still holds the queue
		 * (its pool is released in deferred work). */
		while (bind(fd, (struct sockaddr *)&sxdp, sizeof(sxdp)))
			if (errno != EBUSY || !--tries)
				return fail("bind AF_XDP (copy mode, queue 0)");
			else
				usleep(20000);
	}
	tx_prod = *tx.producer;
	comp_cons = *comp.consumer;

	ksoftirqd_path(cpu >= 0 ? cpu : sched_getcpu(), ksoft, sizeof(ksoft));
	int at = cpu >= 0 ? cpu : sched_getcpu();
	uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9), next = start, t;
	uint64_t self0 = run_ns("/proc/thread-self/schedstat"), soft0 = ksoft[0] ? run_ns(ksoft) : 0;
	unsigned long long ticks0 = softirq_ticks(at);
	uint64_t period = rate > 0 ? (uint64_t)(1e9 * batch / rate) : 0;

	for (;;) {
		uint32_t done = __atomic_load_n(comp.producer, __ATOMIC_ACQUIRE) - comp_cons, n;

		for (i = 0; i < done; i++)
			free_frames[n_free++] = ((uint64_t *)comp.descs)[(comp_cons + i) & comp.mask];
		comp_cons += done;
		__atomic_store_n(comp.consumer, comp_cons, __ATOMIC_RELEASE);
		frames += done;
		t = now_ns();
		if (t >= end)
			break;
		n = batch;
		if (n > n_free)
			n = n_free;
		if (n > ring_size - (tx_prod - __atomic_load_n(tx.consumer, __ATOMIC_ACQUIRE)))
			n = ring_size - (tx_prod - *tx.consumer);
		for (i = 0; i < n; i++) {
			struct xdp_desc *d = &((struct xdp_desc *)tx.descs)[(tx_prod + i) & tx.mask];

			d->addr = free_frames[--n_free];
			d->len = len;
			d->options = 0;
		}
		tx_prod += n;
		__atomic_store_n(tx.producer, tx_prod, __ATOMIC_RELEASE);
		kicks++;
		if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
			if (errno != EAGAIN && errno != EBUSY && errno != ENOBUFS)
				return fail("sendto (kick)");
			eagain++;
		}
		if (period) {
			struct timespec ts;

			next += period;
			ts.tv_sec = next / 1000000000ull;
			ts.tv_nsec = next % 1000000000ull;
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		}
	}
	t = now_ns();
	uint64_t self = run_ns("/proc/thread-self/schedstat") - self0, soft = ksoft[0] ? run_ns(ksoft) - soft0 : 0;
	unsigned long long ticks = softirq_ticks(at) - ticks0;

	printf("xsk_floor dev=%s cpu=%d batch=%u len=%u rate=%.0f frames=%llu kicks=%llu eagain=%llu seconds=%.3f "
	       "self_ns=%llu ksoftirqd_ns=%llu ns_per_frame=%.1f softirq_ticks=%llu\n",
	       dev, at, batch, len, rate, (unsigned long long)frames, (unsigned long long)kicks,
	       (unsigned long long)eagain, (t - start) / 1e9, (unsigned long long)self, (unsigned long long)soft,
	       frames ? (double)(self + soft) / frames : 0.0, ticks);
	close(fd);
	return frames ? 0 : 1;
}
