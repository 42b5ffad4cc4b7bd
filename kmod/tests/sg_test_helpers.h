/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the sendgroup tests: receivers on loopback, counters, checks. */
#ifndef SG_TEST_HELPERS_H
#define SG_TEST_HELPERS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sendgroup.h>

#define STATS_DIR "/sys/class/misc/sendgroup/stats/"
#define BAD_PTR ((__u64)(uintptr_t)0x10)	/* never mapped: the zero page */

static inline int open_device(void)
{
	return open(SENDGROUP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
}

static inline unsigned long long read_stat(const char *name)
{
	char path[128], buf[64] = "";
	int fd;

	snprintf(path, sizeof(path), STATS_DIR "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return ~0ULL;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return strtoull(buf, NULL, 10);
}

static inline void raise_fd_limit(void)
{
	struct rlimit rl = { .rlim_cur = 8192, .rlim_max = 8192 };

	setrlimit(RLIMIT_NOFILE, &rl);
}

/* A bound receiver on loopback; its port comes back in host order. */
static inline int make_receiver(int family, unsigned int *port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	*port = 0;
	if (fd < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (void *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	if (bind(fd, (void *)&ss, len) || getsockname(fd, (void *)&ss, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* A socket bound to an ephemeral port: its first datagram already takes the direct path. */
static inline int bound_socket(int family, unsigned int *port)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, family == AF_INET ? (void *)&sin : (void *)&sin6,
			   family == AF_INET ? sizeof(sin) : sizeof(sin6)) ||
	    getsockname(fd, (void *)&ss, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* An IPv4 socket bound to an ephemeral port whose send buffer fills at once (SO_SNDBUF 1). */
static inline int tiny_buffer_socket(void)
{
	unsigned int port;
	int sndbuf = 1, fd = bound_socket(AF_INET, &port);

	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * A dummy device @name owning @prefix.1/24 whose tbf qdisc releases @rate
 * (e.g. "8kbit"): datagrams it holds stay charged to their socket (netem
 * would orphan them), so a small SO_SNDBUF fills and a blocking send waits.
 */
static inline int hold_device_add(const char *name, const char *prefix, const char *rate)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "ip link add %s type dummy && ip link set %s up && ip addr add %s.1/24 dev %s && "
		 "tc qdisc add dev %s root tbf rate %s burst 1600 limit 1000000",
		 name, name, prefix, name, name, rate);
	return system(cmd);
}

static inline int hold_device_del(const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "ip link del %s", name);
	return system(cmd);
}

/* @prefix.@host (e.g. "10.78.0", 2) as a recipient address on port @port. */
static inline void set_ipv4(struct sendgroup_recipient *r, const char *prefix, unsigned int host,
			    unsigned int port)
{
	char text[32];
	struct in_addr a;

	memset(r, 0, sizeof(*r));
	r->family = AF_INET;
	r->port = port;
	snprintf(text, sizeof(text), "%s.%u", prefix, host);
	inet_pton(AF_INET, text, &a);
	memcpy(r->addr, &a, 4);
}

/* A handler that does nothing: the signal only interrupts what waits. */
static inline void on_signal(int sig)
{
}

/* pthread_kill(@target, SIGUSR1) after @after microseconds, from another thread. */
struct signal_later {
	pthread_t target;
	useconds_t after;
};

static inline void *signal_later(void *arg)
{
	struct signal_later *s = arg;

	usleep(s->after);
	pthread_kill(s->target, SIGUSR1);
	return NULL;
}

static inline void set_loopback(struct sendgroup_recipient *r, int family, unsigned int port)
{
	memset(r, 0, sizeof(*r));
	r->family = family;
	r->port = port;
	if (family == AF_INET) {
		__u32 lo = htonl(INADDR_LOOPBACK);

		memcpy(r->addr, &lo, 4);
	} else {
		memcpy(r->addr, &in6addr_loopback, 16);
	}
}

static inline void set_text(struct sendgroup_recipient *r, const char *prepend, const char *append)
{
	r->prepend = (uintptr_t)prepend;
	r->prepend_len = prepend ? strlen(prepend) : 0;
	r->append = (uintptr_t)append;
	r->append_len = append ? strlen(append) : 0;
}

static inline struct sendgroup_send_args send_args(int sock, const void *shared, size_t shared_len,
					    struct sendgroup_recipient *r, unsigned int count,
					    __s32 *results)
{
	struct sendgroup_send_args args = {
		.size = sizeof(args),
		.fd = sock,
		.shared = (uintptr_t)shared,
		.shared_len = shared_len,
		.recipient_size = sizeof(*r),
		.recipients = (uintptr_t)r,
		.recipient_count = count,
		.results = (uintptr_t)results,
	};
	return args;
}

/* The arguments of GROUP_IOC_ADD/UPDATE/REMOVE: @count entries of @entry_size bytes. */
static inline struct sendgroup_members_args members_args(const void *entries, unsigned int count,
							 unsigned int entry_size)
{
	struct sendgroup_members_args args = {
		.size = sizeof(args),
		.members = (uintptr_t)entries,
		.count = count,
		.member_size = entry_size,
	};
	return args;
}

/* ioctl() that returns -errno on failure, so asserts can name the errno. */
static inline int sendgroup(int dev, void *args)
{
	int ret = ioctl(dev, SENDGROUP_IOC_SEND, args);

	return ret < 0 ? -errno : ret;
}

/* Receive one datagram within 2 s; returns its length or -errno. */
static inline ssize_t recv_one(int fd, void *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, 2000) != 1)
		return -ETIMEDOUT;
	n = recv(fd, buf, len, MSG_DONTWAIT);
	return n < 0 ? -errno : n;
}

/* True when nothing is waiting on @fd within 100 ms. */
static inline bool nothing_queued(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 100) == 0;
}

static inline void fill_pattern(unsigned char *buf, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

/* Expect exactly prepend + shared + append on @fd. */
static inline bool got_exactly(int fd, const char *prepend, const unsigned char *shared,
			size_t shared_len, const char *append)
{
	static unsigned char buf[70000], want[70000];
	size_t pl = prepend ? strlen(prepend) : 0, al = append ? strlen(append) : 0;
	ssize_t n = recv_one(fd, buf, sizeof(buf));

	if (n < 0 || (size_t)n != pl + shared_len + al) {
		fprintf(stderr, "# received %zd bytes (%s), expected %zu\n", n,
			n < 0 ? strerror(-n) : "ok", pl + shared_len + al);
		return false;
	}
	memcpy(want, prepend, pl);
	memcpy(want + pl, shared, shared_len);
	memcpy(want + pl + shared_len, append, al);
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != want[i]) {
			fprintf(stderr, "# first difference at byte %zd of %zd: got 0x%02x, expected 0x%02x\n",
				i, n, buf[i], want[i]);
			return false;
		}
	}
	return true;
}

static inline const void *memchr_nonzero(const void *buf, size_t len)
{
	for (const unsigned char *p = buf; p < (const unsigned char *)buf + len; p++)
		if (*p)
			return p;
	return NULL;
}

#endif /* SG_TEST_HELPERS_H */
