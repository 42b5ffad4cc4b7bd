// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for kernel-resident groups (SENDGROUP_IOC_GROUP_CREATE and the group
 * fd's ioctls), in the style of the kernel's selftests. Run as root with the
 * module loaded, in a network namespace of its own (scripts/lib/netns-exec).
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#ifdef SG_TEST_BPF_LSM
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#endif

#include "kselftest_harness.h"
#include "sg_test_helpers.h"

static int group_create(int dev, int sock)
{
	struct sendgroup_group_create_args args = { .size = sizeof(args), .fd = sock };
	int fd = ioctl(dev, SENDGROUP_IOC_GROUP_CREATE, &args);

	return fd < 0 ? -errno : fd;
}

static int group_ioctl(int group, unsigned long cmd, void *args)
{
	int ret = ioctl(group, cmd, args);

	return ret < 0 ? -errno : ret;
}

static int members_call(int group, unsigned long cmd, const void *entries, unsigned int count,
			unsigned int entry_size)
{
	struct sendgroup_members_args args = members_args(entries, count, entry_size);

	return group_ioctl(group, cmd, &args);
}

static int add_members(int group, const struct sendgroup_member *m, unsigned int count)
{
	return members_call(group, SENDGROUP_GROUP_IOC_ADD, m, count, sizeof(*m));
}

static int update_members(int group, const struct sendgroup_member *m, unsigned int count)
{
	return members_call(group, SENDGROUP_GROUP_IOC_UPDATE, m, count, sizeof(*m));
}

static int remove_members(int group, const __u64 *ids, unsigned int count)
{
	return members_call(group, SENDGROUP_GROUP_IOC_REMOVE, ids, count, sizeof(*ids));
}

/* Member @id sending to loopback @port with the given private text. */
static struct sendgroup_member member(__u64 id, int family, unsigned int port,
				      const char *prepend, const char *append)
{
	struct sendgroup_member m = { .id = id };

	set_loopback(&m.recipient, family, port);
	set_text(&m.recipient, prepend, append);
	return m;
}

static int group_send(int group, const struct sendgroup_payload *p, unsigned int count,
		      struct sendgroup_failure *failures, unsigned int capacity,
		      unsigned int *failure_count)
{
	struct sendgroup_group_send_args args = {
		.size = sizeof(args),
		.payload_count = count,
		.payloads = (uintptr_t)p,
		.failures = (uintptr_t)failures,
		.failure_capacity = capacity,
		.failure_count = 0xcccccccc,
	};
	int ret = group_ioctl(group, SENDGROUP_GROUP_IOC_SEND, &args);

	if (failure_count)
		*failure_count = args.failure_count;
	return ret;
}

static struct sendgroup_payload payload(const void *data, size_t len)
{
	return (struct sendgroup_payload){ .data = (uintptr_t)data, .len = len };
}

static int list_members(int group, __u64 *ids, unsigned int capacity, unsigned int *count)
{
	struct sendgroup_list_args args = {
		.size = sizeof(args), .capacity = capacity, .ids = (uintptr_t)ids,
		.count = 0xcccccccc,
	};
	int ret = group_ioctl(group, SENDGROUP_GROUP_IOC_LIST, &args);

	*count = args.count;
	return ret;
}

/* ---- creation ---------------------------------------------------------- */

TEST(create_validates_its_arguments)
{
	int dev = open_device(), sock = socket(AF_INET, SOCK_DGRAM, 0);
	int tcp = socket(AF_INET, SOCK_STREAM, 0), null = open("/dev/null", O_RDONLY);
	struct sendgroup_group_create_args args = { .size = sizeof(args), .fd = sock };
	unsigned char big[64] = { 0 };
	int group;

	ASSERT_LE(0, dev);
	args.flags = 1;
	EXPECT_EQ(-EINVAL, group_ioctl(dev, SENDGROUP_IOC_GROUP_CREATE, &args));
	args.flags = 0;
	args.reserved = 1;
	EXPECT_EQ(-EINVAL, group_ioctl(dev, SENDGROUP_IOC_GROUP_CREATE, &args));
	args.reserved = 0;
	args.size = SENDGROUP_GROUP_CREATE_ARGS_SIZE_VER0 - 4;
	EXPECT_EQ(-EINVAL, group_ioctl(dev, SENDGROUP_IOC_GROUP_CREATE, &args));
	/* Larger struct: zero tail accepted, non-zero tail E2BIG. */
	args.size = sizeof(big);
	memcpy(big, &args, sizeof(args));
	group = group_ioctl(dev, SENDGROUP_IOC_GROUP_CREATE, big);
	EXPECT_LE(0, group);
	close(group);
	big[sizeof(big) - 1] = 1;
	EXPECT_EQ(-E2BIG, group_ioctl(dev, SENDGROUP_IOC_GROUP_CREATE, big));

	EXPECT_EQ(-EBADF, group_create(dev, -1));
	EXPECT_EQ(-ENOTSOCK, group_create(dev, null));
	EXPECT_EQ(-EPROTONOSUPPORT, group_create(dev, tcp));
	EXPECT_EQ(-EFAULT, group_ioctl(dev, SENDGROUP_IOC_GROUP_CREATE, (void *)(uintptr_t)BAD_PTR));

	group = group_create(dev, sock);
	ASSERT_LE(0, group);
	EXPECT_EQ(FD_CLOEXEC, fcntl(group, F_GETFD) & FD_CLOEXEC);
	/* Group commands belong to the group fd, device commands to the device. */
	EXPECT_EQ(-ENOTTY, group_ioctl(dev, SENDGROUP_GROUP_IOC_LIST, big));
	EXPECT_EQ(-ENOTTY, group_ioctl(group, SENDGROUP_IOC_SEND, big));
	EXPECT_EQ(-ENOTTY, group_ioctl(group, _IO('T', 1), big));
	close(group);
	close(sock);
	close(tcp);
	close(null);
	close(dev);
}

/* ---- delivery ---------------------------------------------------------- */

#define MAX_MEMBERS_TESTED 1000

FIXTURE(group_delivery) {
	int dev, sock, group;
	int fds[MAX_MEMBERS_TESTED];
	struct sendgroup_member m[MAX_MEMBERS_TESTED];
	char prepend[MAX_MEMBERS_TESTED][24];
	char append[MAX_MEMBERS_TESTED][24];
};

FIXTURE_VARIANT(group_delivery) {
	int family;
	unsigned int members;
};

FIXTURE_VARIANT_ADD(group_delivery, ipv4_1) { .family = AF_INET, .members = 1 };
FIXTURE_VARIANT_ADD(group_delivery, ipv4_64) { .family = AF_INET, .members = 64 };
FIXTURE_VARIANT_ADD(group_delivery, ipv4_1000) { .family = AF_INET, .members = 1000 };
FIXTURE_VARIANT_ADD(group_delivery, ipv6_64) { .family = AF_INET6, .members = 64 };
FIXTURE_VARIANT_ADD(group_delivery, ipv6_1000) { .family = AF_INET6, .members = 1000 };

FIXTURE_SETUP(group_delivery)
{
	raise_fd_limit();
	self->dev = open_device();
	ASSERT_LE(0, self->dev);
	self->sock = socket(variant->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	self->group = group_create(self->dev, self->sock);
	ASSERT_LE(0, self->group);
	for (unsigned int i = 0; i < variant->members; i++) {
		unsigned int port;

		self->fds[i] = make_receiver(variant->family, &port);
		ASSERT_LE(0, self->fds[i]);
		snprintf(self->prepend[i], sizeof(self->prepend[i]), "member-%u:", i);
		snprintf(self->append[i], sizeof(self->append[i]), ":end-%u", i);
		/* Ids in reverse so the kernel's ascending order is not insertion order. */
		self->m[i] = member(100000 - i, variant->family, port,
				    self->prepend[i], i % 2 ? self->append[i] : NULL);
	}
	ASSERT_EQ(0, add_members(self->group, self->m, variant->members));
}

FIXTURE_TEARDOWN(group_delivery)
{
	for (unsigned int i = 0; i < variant->members; i++)
		close(self->fds[i]);
	close(self->group);
	close(self->sock);
	close(self->dev);
}

TEST_F(group_delivery, batch_of_payloads_byte_exact)
{
	unsigned int n = variant->members, failures = 1;
	unsigned char audio[160], video[1200];
	struct sendgroup_payload p[2] = { payload(audio, sizeof(audio)), payload(video, sizeof(video)) };
	unsigned long long copies = read_stat("shared_copies"), calls = read_stat("group_calls");

	fill_pattern(audio, sizeof(audio), 1);
	fill_pattern(video, sizeof(video), 2);
	ASSERT_EQ((int)(2 * n), group_send(self->group, p, 2, NULL, 0, &failures));
	EXPECT_EQ(0, failures);
	/* One copy per payload, however many members. */
	EXPECT_EQ(2, read_stat("shared_copies") - copies);
	EXPECT_EQ(1, read_stat("group_calls") - calls);
	for (unsigned int i = 0; i < n; i++) {
		const char *append = i % 2 ? self->append[i] : NULL;

		ASSERT_TRUE(got_exactly(self->fds[i], self->prepend[i], audio, sizeof(audio), append))
			TH_LOG("member %u, audio", i);
		ASSERT_TRUE(got_exactly(self->fds[i], self->prepend[i], video, sizeof(video), append))
			TH_LOG("member %u, video", i);
	}
}

TEST_F(group_delivery, update_and_remove_take_effect)
{
	unsigned int n = variant->members, count;
	struct sendgroup_payload p = payload("tick", 4);
	struct sendgroup_member changed = self->m[0];
	__u64 ids[MAX_MEMBERS_TESTED];

	set_text(&changed.recipient, "new-header:", NULL);
	ASSERT_EQ(0, update_members(self->group, &changed, 1));
	ASSERT_EQ(0, remove_members(self->group, (const __u64 *)&self->m[n - 1].id, 1));
	ASSERT_EQ((int)(n - 1), list_members(self->group, ids, MAX_MEMBERS_TESTED, &count));
	EXPECT_EQ(n - 1, count);
	for (unsigned int i = 1; i + 1 < n; i++)
		ASSERT_LT(ids[i - 1], ids[i]) TH_LOG("ids must come back ascending");

	ASSERT_EQ((int)(n - 1), group_send(self->group, &p, 1, NULL, 0, NULL));
	if (n > 1) {
		EXPECT_TRUE(got_exactly(self->fds[0], "new-header:", (const unsigned char *)"tick", 4, NULL));
		EXPECT_TRUE(nothing_queued(self->fds[n - 1]));
	} else {
		EXPECT_TRUE(nothing_queued(self->fds[0]));
	}
}

/* ---- membership rules ---------------------------------------------------- */

FIXTURE(members) {
	int dev, sock, group, rx;
	unsigned int port;
};

FIXTURE_SETUP(members)
{
	self->dev = open_device();
	ASSERT_LE(0, self->dev);
	self->sock = socket(AF_INET, SOCK_DGRAM, 0);
	self->group = group_create(self->dev, self->sock);
	ASSERT_LE(0, self->group);
	self->rx = make_receiver(AF_INET, &self->port);
	ASSERT_LE(0, self->rx);
}

FIXTURE_TEARDOWN(members)
{
	close(self->rx);
	close(self->group);
	close(self->sock);
	close(self->dev);
}

TEST_F(members, calls_are_all_or_nothing)
{
	struct sendgroup_member m[3] = {
		member(1, AF_INET, self->port, "a", NULL),
		member(2, AF_INET, self->port, "b", NULL),
		member(3, AF_INET, self->port, "c", NULL),
	};
	__u64 ids[4], missing[2] = { 2, 99 }, repeated[2] = { 1, 1 };
	unsigned int count;

	ASSERT_EQ(0, add_members(self->group, m, 2));
	/* id 2 exists: nothing of the call is added, not even id 3. */
	EXPECT_EQ(-EEXIST, add_members(self->group, &m[1], 2));
	EXPECT_EQ(2, list_members(self->group, ids, 4, &count));
	EXPECT_EQ(2, count);
	/* The same id twice in one call. */
	m[1].id = 3;
	m[2].id = 3;
	EXPECT_EQ(-EINVAL, add_members(self->group, &m[1], 2));
	EXPECT_EQ(2, list_members(self->group, ids, 4, &count));

	/* Update of an absent id: ENOENT, and id 1 keeps its old bytes. */
	m[0].recipient.prepend = (uintptr_t)"changed";
	m[0].recipient.prepend_len = 7;
	m[1].id = 99;
	EXPECT_EQ(-ENOENT, update_members(self->group, m, 2));

	EXPECT_EQ(-ENOENT, remove_members(self->group, missing, 2));
	EXPECT_EQ(-EINVAL, remove_members(self->group, repeated, 2));
	EXPECT_EQ(2, list_members(self->group, ids, 4, &count));
	EXPECT_EQ(1, ids[0]);
	EXPECT_EQ(2, ids[1]);

	struct sendgroup_payload p = payload("x", 1);
	EXPECT_EQ(2, group_send(self->group, &p, 1, NULL, 0, NULL));
	EXPECT_TRUE(got_exactly(self->rx, "a", (const unsigned char *)"x", 1, NULL));
	EXPECT_TRUE(got_exactly(self->rx, "b", (const unsigned char *)"x", 1, NULL));
}

TEST_F(members, argument_validation)
{
	static unsigned char entries[2 * (4096 + 8)];
	struct sendgroup_member m = member(7, AF_INET, self->port, NULL, NULL);
	struct sendgroup_members_args args = members_args(&m, 1, sizeof(m));
	static char big[SENDGROUP_MAX_MEMBER_PRIVATE + 1];
	__u64 id = 7;

	args.flags = 1;
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_ADD, &args));
	args.flags = 0;
	args.count = 0;
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_ADD, &args));
	args.count = SENDGROUP_MAX_MEMBERS + 1;
	EXPECT_EQ(-E2BIG, group_ioctl(self->group, SENDGROUP_GROUP_IOC_ADD, &args));
	args.count = 1;
	args.size = SENDGROUP_MEMBERS_ARGS_SIZE_VER0 - 8;
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_ADD, &args));
	args.size = sizeof(args);
	args.members = BAD_PTR;
	EXPECT_EQ(-EFAULT, group_ioctl(self->group, SENDGROUP_GROUP_IOC_ADD, &args));
	args.members = (uintptr_t)&m;

	/* Member entries are versioned by size, like recipients. */
	args.member_size = SENDGROUP_MEMBER_SIZE_VER0 - 8;
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_ADD, &args));
	args.member_size = 4096 + 8;
	EXPECT_EQ(-E2BIG, group_ioctl(self->group, SENDGROUP_GROUP_IOC_ADD, &args));
	memset(entries, 0, sizeof(entries));
	memcpy(entries, &m, sizeof(m));
	args.members = (uintptr_t)entries;
	args.member_size = sizeof(m) + 16;
	entries[sizeof(m) + 15] = 1;
	EXPECT_EQ(-E2BIG, group_ioctl(self->group, SENDGROUP_GROUP_IOC_ADD, &args));
	entries[sizeof(m) + 15] = 0;
	EXPECT_EQ(0, group_ioctl(self->group, SENDGROUP_GROUP_IOC_ADD, &args));
	EXPECT_EQ(0, remove_members(self->group, &id, 1));

	/* Private bytes are bounded; their pointers are checked when added. */
	m.recipient.prepend = (uintptr_t)big;
	m.recipient.prepend_len = sizeof(big);
	EXPECT_EQ(-EMSGSIZE, add_members(self->group, &m, 1));
	m.recipient.prepend = BAD_PTR;
	m.recipient.prepend_len = 4;
	EXPECT_EQ(-EFAULT, add_members(self->group, &m, 1));
	m.recipient.prepend_len = 0;
	m.recipient.port = 70000;
	EXPECT_EQ(-EINVAL, add_members(self->group, &m, 1));

	/* REMOVE takes ids: 8-byte entries only. */
	EXPECT_EQ(-EINVAL, members_call(self->group, SENDGROUP_GROUP_IOC_REMOVE, &id, 1, 4));
}

TEST_F(members, capacity_is_enforced)
{
	struct sendgroup_member *m = calloc(SENDGROUP_MAX_MEMBERS, sizeof(*m));
	struct sendgroup_member extra = member(SENDGROUP_MAX_MEMBERS, AF_INET, self->port, NULL, NULL);
	unsigned int count;

	ASSERT_TRUE(m != NULL);
	for (unsigned int i = 0; i < SENDGROUP_MAX_MEMBERS; i++)
		m[i] = member(i, AF_INET, self->port, NULL, NULL);
	ASSERT_EQ(0, add_members(self->group, m, SENDGROUP_MAX_MEMBERS));
	EXPECT_EQ(-ENOSPC, add_members(self->group, &extra, 1));
	EXPECT_EQ(0, list_members(self->group, NULL, 0, &count));
	EXPECT_EQ(SENDGROUP_MAX_MEMBERS, count);
	free(m);
}

TEST_F(members, failures_are_reported_per_member)
{
	struct sendgroup_member m[4] = {
		member(10, AF_INET, self->port, "ok:", NULL),
		member(20, AF_INET, 9, NULL, NULL),		/* unreachable */
		member(30, AF_INET6, self->port, NULL, NULL),	/* v6 on a v4 socket */
		member(40, AF_INET, self->port, "ok2:", NULL),
	};
	__u32 testnet = htonl(0xC0000201);	/* 192.0.2.1: no route here */
	struct sendgroup_failure f[8];
	struct sendgroup_payload p[2] = { payload("A", 1), payload("B", 1) };
	unsigned int failures;

	memcpy(m[1].recipient.addr, &testnet, 4);
	ASSERT_EQ(0, add_members(self->group, m, 4));
	memset(f, 0xcc, sizeof(f));
	ASSERT_EQ(4, group_send(self->group, p, 2, f, 8, &failures));
	ASSERT_EQ(4, failures);
	/* Payload-major, ascending member id. */
	EXPECT_EQ(20, f[0].member_id);
	EXPECT_EQ(0, f[0].payload_index);
	EXPECT_EQ(-ENETUNREACH, f[0].error);
	EXPECT_EQ(30, f[1].member_id);
	EXPECT_EQ(-EAFNOSUPPORT, f[1].error);
	EXPECT_EQ(20, f[2].member_id);
	EXPECT_EQ(1, f[2].payload_index);
	EXPECT_EQ(30, f[3].member_id);
	EXPECT_EQ(1, f[3].payload_index);
	/* The kernel clears the whole array before sending (that is how a bad
	 * pointer fails early); slots past the count stay zero. */
	EXPECT_EQ(0, f[4].member_id);
	EXPECT_EQ(0, f[4].error);
	EXPECT_TRUE(got_exactly(self->rx, "ok:", (const unsigned char *)"A", 1, NULL));
	EXPECT_TRUE(got_exactly(self->rx, "ok2:", (const unsigned char *)"A", 1, NULL));
	EXPECT_TRUE(got_exactly(self->rx, "ok:", (const unsigned char *)"B", 1, NULL));
	EXPECT_TRUE(got_exactly(self->rx, "ok2:", (const unsigned char *)"B", 1, NULL));

	/* A small failure array: the count still says how many there were. */
	ASSERT_EQ(4, group_send(self->group, p, 2, f, 1, &failures));
	EXPECT_EQ(4, failures);
	for (int i = 0; i < 4; i++)
		recv_one(self->rx, f, sizeof(f));

	/* A bad failure array is found before anything is sent. */
	EXPECT_EQ(-EFAULT, group_send(self->group, p, 2, (void *)(uintptr_t)BAD_PTR, 8, NULL));
	EXPECT_TRUE(nothing_queued(self->rx));
}

TEST_F(members, send_validation)
{
	struct sendgroup_member m = member(1, AF_INET, self->port, NULL, NULL);
	static unsigned char big[SENDGROUP_MAX_DATAGRAM + 1];
	struct sendgroup_payload p[SENDGROUP_MAX_PAYLOADS + 1];
	struct sendgroup_group_send_args args = {
		.size = sizeof(args), .payload_count = 1, .payloads = (uintptr_t)p,
	};
	int on = 1;

	for (int i = 0; i <= SENDGROUP_MAX_PAYLOADS; i++)
		p[i] = payload("p", 1);
	/* An empty group sends nothing and says so. */
	EXPECT_EQ(0, group_send(self->group, p, 1, NULL, 0, NULL));
	ASSERT_EQ(0, add_members(self->group, &m, 1));

	args.flags = 1;
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	args.flags = 0;
	args.msg_flags = MSG_MORE;
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	args.msg_flags = 0;
	args.payload_count = 0;
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	args.payload_count = SENDGROUP_MAX_PAYLOADS + 1;
	EXPECT_EQ(-E2BIG, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	args.payload_count = 1;
	args.size = SENDGROUP_GROUP_SEND_ARGS_SIZE_VER0 - 8;
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	args.size = sizeof(args);
	args.payloads = BAD_PTR;
	EXPECT_EQ(-EFAULT, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	args.payloads = (uintptr_t)p;
	p[0].reserved = 1;
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	p[0] = payload(big, sizeof(big));
	EXPECT_EQ(-EMSGSIZE, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	p[0] = payload((void *)(uintptr_t)BAD_PTR, 10);
	EXPECT_EQ(-EFAULT, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	p[0] = payload("p", 1);
	/* The socket corked after the group was made. */
	ASSERT_EQ(0, setsockopt(self->sock, IPPROTO_UDP, 1 /* UDP_CORK */, &on, sizeof(on)));
	EXPECT_EQ(-EINVAL, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, &args));
	on = 0;
	ASSERT_EQ(0, setsockopt(self->sock, IPPROTO_UDP, 1 /* UDP_CORK */, &on, sizeof(on)));
	EXPECT_TRUE(nothing_queued(self->rx));
	/* The largest batch goes through. */
	EXPECT_EQ(SENDGROUP_MAX_PAYLOADS, group_send(self->group, p, SENDGROUP_MAX_PAYLOADS, NULL, 0, NULL));
	for (int i = 0; i < SENDGROUP_MAX_PAYLOADS; i++)
		EXPECT_TRUE(got_exactly(self->rx, NULL, (const unsigned char *)"p", 1, NULL));
}

/* ---- signals --------------------------------------------------------------- */

#define HELD_MEMBERS 64

/* A group of HELD_MEMBERS members behind hold_device_add(@name, @prefix, ...). */
static int held_group(int dev, int sock, const char *prefix)
{
	struct sendgroup_member m[HELD_MEMBERS];
	int group = group_create(dev, sock);

	if (group < 0)
		return group;
	for (int i = 0; i < HELD_MEMBERS; i++) {
		m[i] = (struct sendgroup_member){ .id = i };
		set_ipv4(&m[i].recipient, prefix, 2 + i, 9000);
	}
	if (add_members(group, m, HELD_MEMBERS)) {
		close(group);
		return -1;
	}
	return group;
}

/*
 * A signal while a blocking group send waits for send-buffer space: the
 * interrupted datagram and every later one are failure records saying
 * -EINTR, never -ERESTARTSYS (-512); sent + failures covers every member.
 */
TEST(signal_while_blocked_is_eintr)
{
	static unsigned char body[1400];
	struct sendgroup_failure f[HELD_MEMBERS];
	struct sendgroup_payload p = payload(body, sizeof(body));
	struct sigaction sa = { .sa_handler = on_signal };
	struct signal_later later = { .target = pthread_self(), .after = 300 * 1000 };
	int dev = open_device(), sock, group, sent;
	unsigned int nfail;
	pthread_t thread;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, hold_device_add("sg-gsig0", "10.80.0", "8kbit"));
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	sock = tiny_buffer_socket();
	ASSERT_LE(0, sock);
	group = held_group(dev, sock, "10.80.0");
	ASSERT_LE(0, group);
	memset(f, 0xcc, sizeof(f));
	ASSERT_EQ(0, pthread_create(&thread, NULL, signal_later, &later));
	sent = group_send(group, &p, 1, f, HELD_MEMBERS, &nfail);
	pthread_join(thread, NULL);
	TH_LOG("sent %d, failures %u", sent, nfail);
	EXPECT_LT(0, sent);
	EXPECT_LT(0, nfail);
	EXPECT_EQ(HELD_MEMBERS, sent + nfail);
	for (unsigned int i = 0; i < nfail && i < HELD_MEMBERS; i++) {
		EXPECT_EQ(-EINTR, f[i].error) TH_LOG("failure %u (member %llu)", i,
						     (unsigned long long)f[i].member_id);
		/* The call stopped at the interruption: the rest, in order. */
		EXPECT_EQ((__u64)(sent + i), f[i].member_id);
	}
	close(group);
	close(sock);
	close(dev);
	signal(SIGUSR1, SIG_DFL);
	EXPECT_EQ(0, hold_device_del("sg-gsig0"));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * SO_SNDTIMEO bounds a blocking group send's whole wait: after the first
 * wait for send-buffer space times out, the later datagrams fail with
 * -EAGAIN without waiting (before: one timeout per member, 6.3 s for 64
 * members at 100 ms in the one-shot send's test).
 */
TEST(sndtimeo_bounds_the_whole_call)
{
	static unsigned char body[1400];
	struct sendgroup_failure f[HELD_MEMBERS];
	struct sendgroup_payload p = payload(body, sizeof(body));
	struct timeval timeout = { .tv_usec = 100 * 1000 };
	int dev = open_device(), sock, group, sent;
	unsigned int nfail;
	double t0, seconds;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, hold_device_add("sg-gtimeo0", "10.83.0", "8kbit"));
	sock = tiny_buffer_socket();
	ASSERT_LE(0, sock);
	ASSERT_EQ(0, setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)));
	group = held_group(dev, sock, "10.83.0");
	ASSERT_LE(0, group);
	t0 = now_s();
	sent = group_send(group, &p, 1, f, HELD_MEMBERS, &nfail);
	seconds = now_s() - t0;
	TH_LOG("sent %d, failures %u, the call took %.2f s", sent, nfail, seconds);
	EXPECT_LT(0, sent);
	EXPECT_LT(0, nfail);
	EXPECT_EQ(HELD_MEMBERS, sent + nfail);
	for (unsigned int i = 0; i < nfail && i < HELD_MEMBERS; i++) {
		EXPECT_EQ(-EAGAIN, f[i].error) TH_LOG("failure %u (member %llu)", i,
						      (unsigned long long)f[i].member_id);
	}
	/* One timeout (0.1 s) and the sends, far from one per member. */
	EXPECT_GT(2.0, seconds);
	close(group);
	close(sock);
	close(dev);
	EXPECT_EQ(0, hold_device_del("sg-gtimeo0"));
}

/*
 * What a group send writes back must be writable before anything is sent
 * (issue 12: read-only arguments sent every datagram, then said EFAULT, and
 * a caller retrying on EFAULT sent everything twice). No failure array (0)
 * means no records, whatever the capacity: the count is still reported.
 */
TEST_F(members, send_arguments_are_writable_or_nothing_is_sent)
{
	struct sendgroup_member m[2] = {
		member(1, AF_INET, self->port, NULL, NULL),
		member(2, AF_INET6, self->port, NULL, NULL),	/* v6 on a v4 socket: fails */
	};
	struct sendgroup_payload p = payload("w", 1);
	size_t page = sysconf(_SC_PAGESIZE);
	struct sendgroup_group_send_args *args;
	struct sendgroup_failure *f;
	char *mem = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_TRUE(mem != MAP_FAILED);
	ASSERT_EQ(0, add_members(self->group, m, 2));
	args = (void *)mem;
	f = (void *)(mem + page);
	*args = (struct sendgroup_group_send_args){
		.size = sizeof(*args), .payload_count = 1, .payloads = (uintptr_t)&p,
		.failures = (uintptr_t)f, .failure_capacity = 4,
	};

	/* The argument struct read-only: failure_count cannot be written. */
	ASSERT_EQ(0, mprotect(args, page, PROT_READ));
	EXPECT_EQ(-EFAULT, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, args));
	EXPECT_TRUE(nothing_queued(self->rx));
	ASSERT_EQ(0, mprotect(args, page, PROT_READ | PROT_WRITE));

	/* The failure array read-only. */
	ASSERT_EQ(0, mprotect(f, page, PROT_READ));
	EXPECT_EQ(-EFAULT, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, args));
	EXPECT_TRUE(nothing_queued(self->rx));
	ASSERT_EQ(0, mprotect(f, page, PROT_READ | PROT_WRITE));

	/* Writable: one sent, one failure recorded. */
	EXPECT_EQ(1, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, args));
	EXPECT_EQ(1, args->failure_count);
	EXPECT_EQ(2, f[0].member_id);
	EXPECT_EQ(-EAFNOSUPPORT, f[0].error);
	EXPECT_TRUE(got_exactly(self->rx, NULL, (const unsigned char *)"w", 1, NULL));

	/* No failure array with a capacity: optional, so no records, the count still. */
	args->failures = 0;
	args->failure_count = 77;
	EXPECT_EQ(1, group_ioctl(self->group, SENDGROUP_GROUP_IOC_SEND, args));
	EXPECT_EQ(1, args->failure_count);
	EXPECT_TRUE(got_exactly(self->rx, NULL, (const unsigned char *)"w", 1, NULL));
	EXPECT_TRUE(nothing_queued(self->rx));
	munmap(mem, 2 * page);
}

/* ---- lifetime ------------------------------------------------------------ */

TEST(group_keeps_its_socket_and_frees_on_close)
{
	unsigned long long groups = read_stat("groups_live"), members = read_stat("members_live");
	int dev = open_device(), sock = socket(AF_INET, SOCK_DGRAM, 0), group, rx;
	unsigned int port;
	struct sendgroup_member m;
	struct sendgroup_payload p = payload("still here", 10);

	rx = make_receiver(AF_INET, &port);
	m = member(1, AF_INET, port, NULL, NULL);
	group = group_create(dev, sock);
	ASSERT_LE(0, group);
	ASSERT_EQ(0, add_members(group, &m, 1));
	EXPECT_EQ(groups + 1, read_stat("groups_live"));
	EXPECT_EQ(members + 1, read_stat("members_live"));
	/* The caller's socket fd goes away; the group still holds the socket. */
	close(sock);
	EXPECT_EQ(1, group_send(group, &p, 1, NULL, 0, NULL));
	EXPECT_TRUE(got_exactly(rx, NULL, (const unsigned char *)"still here", 10, NULL));
	close(group);
	EXPECT_EQ(groups, read_stat("groups_live"));
	EXPECT_EQ(members, read_stat("members_live"));
	close(rx);
	close(dev);
}

/* A group fd passed to another process with SCM_RIGHTS works there. */
TEST(group_fd_passed_with_scm_rights)
{
	int dev = open_device(), sock = socket(AF_INET, SOCK_DGRAM, 0), group, rx, pair[2];
	unsigned int port;
	struct sendgroup_member m;
	pid_t pid;
	int status;

	rx = make_receiver(AF_INET, &port);
	m = member(1, AF_INET, port, "from-child:", NULL);
	group = group_create(dev, sock);
	ASSERT_LE(0, group);
	ASSERT_EQ(0, add_members(group, &m, 1));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM, 0, pair));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char control[CMSG_SPACE(sizeof(int))], byte;
		struct iovec iov = { &byte, 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = control, .msg_controllen = sizeof(control) };
		struct sendgroup_payload p = payload("hi", 2);
		int fd;

		close(group);
		close(sock);
		if (recvmsg(pair[1], &msg, 0) != 1)
			_exit(10);
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(fd));
		_exit(group_send(fd, &p, 1, NULL, 0, NULL) == 1 ? 0 : 11);
	}
	{
		char control[CMSG_SPACE(sizeof(int))] = { 0 }, byte = 'g';
		struct iovec iov = { &byte, 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = control, .msg_controllen = sizeof(control) };
		struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &group, sizeof(group));
		ASSERT_EQ(1, sendmsg(pair[0], &msg, 0));
	}
	close(group);
	close(sock);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(got_exactly(rx, "from-child:", (const unsigned char *)"hi", 2, NULL));
	close(pair[0]);
	close(pair[1]);
	close(rx);
	close(dev);
}

/* ---- the direct path on the wire ---------------------------------------- */

/*
 * These tests capture what leaves a dummy device with an AF_PACKET socket:
 * dummy has no ARP, and with its tx checksum offload turned off the stack
 * completes every UDP checksum before the capture point, so the bytes read
 * are the bytes a NIC would send.
 */
static int packet_socket(const char *ifname)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = (int)if_nametoindex(ifname),
	};
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));

	if (fd >= 0 && (!sll.sll_ifindex || bind(fd, (void *)&sll, sizeof(sll)))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Offset of the UDP header in a captured IP packet to @dport, or 0. */
static size_t udp_offset(const unsigned char *p, size_t n, unsigned int dport)
{
	size_t off;

	if (n >= 28 && p[0] >> 4 == 4 && p[9] == IPPROTO_UDP)
		off = (p[0] & 15) * 4;
	else if (n >= 48 && p[0] >> 4 == 6 && p[6] == IPPROTO_UDP)
		off = 40;
	else
		return 0;
	return n >= off + 8 && (p[off + 2] << 8 | p[off + 3]) == dport ? off : 0;
}

/* The next captured UDP datagram to @dport; its length, or -1 after @ms quiet. */
static ssize_t next_udp(int fd, unsigned int dport, unsigned char *buf, size_t len, int ms)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, ms) <= 0)
			return -1;
		n = recv(fd, buf, len, 0);
		if (n < 0)
			return -1;
		if (udp_offset(buf, n, dport))
			return n;
	}
}

/*
 * Datagrams to @dport captured so far: read until 300 ms pass without one,
 * or 3 s in all (IPv6 neighbour and MLD chatter on the device is skipped,
 * and must not keep the drain going).
 */
static unsigned int count_udp(int fd, unsigned int dport)
{
	static unsigned char buf[2048];
	unsigned int count = 0;
	double end = now_s() + 3;

	while (now_s() < end && next_udp(fd, dport, buf, sizeof(buf), 300) >= 0)
		count++;
	return count;
}

static uint32_t sum16(uint32_t sum, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	return sum;
}

/* True when the one's complement sum over the data and its checksum is all ones. */
static bool checksum_ok(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static bool udp_checksum_ok(const unsigned char *p, size_t n)
{
	size_t off = p[0] >> 4 == 4 ? (p[0] & 15) * 4 : 40;
	size_t ulen = n - off;
	uint32_t sum = IPPROTO_UDP + ulen;

	if (p[0] >> 4 == 4)
		sum = sum16(sum, p + 12, 8);	/* source and destination */
	else
		sum = sum16(sum, p + 8, 32);
	if (!p[off + 6] && !p[off + 7])
		return false;	/* no checksum: never what UDP sends here */
	return checksum_ok(sum16(sum, p + off, ulen));
}

static int write_param(const char *name, const char *value)
{
	char path[128];
	int fd, ret;

	snprintf(path, sizeof(path), "/sys/module/sendgroup/parameters/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ret = write(fd, value, strlen(value)) == (ssize_t)strlen(value) ? 0 : -1;
	close(fd);
	return ret;
}

#define WIRE_MEMBERS 3
#define WIRE_PORT 7100

FIXTURE(wire) {
	int dev, sock, group, cap;
	unsigned int sport;
};

FIXTURE_VARIANT(wire) {
	int family;
	bool private_bytes;
	bool direct;		/* fast_path=1, or every datagram through sendmsg */
};

FIXTURE_VARIANT_ADD(wire, ipv4) { .family = AF_INET, .direct = true };
FIXTURE_VARIANT_ADD(wire, ipv4_private) { .family = AF_INET, .private_bytes = true, .direct = true };
FIXTURE_VARIANT_ADD(wire, ipv6) { .family = AF_INET6, .direct = true };
FIXTURE_VARIANT_ADD(wire, ipv6_private) { .family = AF_INET6, .private_bytes = true, .direct = true };
FIXTURE_VARIANT_ADD(wire, ipv4_private_sendmsg) { .family = AF_INET, .private_bytes = true };
FIXTURE_VARIANT_ADD(wire, ipv6_private_sendmsg) { .family = AF_INET6, .private_bytes = true };

static void wire_addr(int family, unsigned int host, __u8 addr[16])
{
	memset(addr, 0, 16);
	if (family == AF_INET) {
		__u32 a = htonl(0x0a420000 | host);	/* 10.66.0.host */

		memcpy(addr, &a, 4);
	} else {
		inet_pton(AF_INET6, "fd66::", addr);
		addr[15] = host;
	}
}

FIXTURE_SETUP(wire)
{
	self->cap = self->group = self->sock = -1;
	self->dev = open_device();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, system("ip link add sg-wire type dummy && "
			    "sysctl -qw net.ipv6.conf.sg-wire.disable_ipv6=0 && "
			    "ethtool -K sg-wire tx off >/dev/null && ip link set sg-wire up && "
			    "ip addr add 10.66.0.1/24 dev sg-wire && "
			    "ip -6 addr add fd66::1/64 dev sg-wire nodad"));
	ASSERT_EQ(0, write_param("fast_path", variant->direct ? "1" : "0"));
	self->cap = packet_socket("sg-wire");
	ASSERT_LE(0, self->cap);
	self->sock = bound_socket(variant->family, &self->sport);
	ASSERT_LE(0, self->sock);
	self->group = group_create(self->dev, self->sock);
	ASSERT_LE(0, self->group);
}

FIXTURE_TEARDOWN(wire)
{
	write_param("fast_path", "1");
	close(self->group);
	close(self->sock);
	close(self->cap);
	close(self->dev);
	system("ip link del sg-wire 2>/dev/null");
}

/*
 * Every byte of every datagram as sent: addresses, ports, lengths, valid IP
 * and UDP checksums, the socket's TTL/hop limit and TOS/traffic class, and
 * prepend + payload + append. The sendmsg variants must look the same.
 */
/* Emulated VMs under host load run these ip(8) calls slowly: generous timeouts. */
TEST_F_TIMEOUT(wire, datagrams_are_exact_on_the_wire, 120)
{
	static const char *pre[WIRE_MEMBERS] = { "p0", "prepend-1:", "" };
	static const char *app[WIRE_MEMBERS] = { "a0", "", ":append-2" };
	static unsigned char shared[1200], buf[2048], want[1500];
	struct sendgroup_member m[WIRE_MEMBERS];
	struct sendgroup_payload p = payload(shared, sizeof(shared));
	unsigned long long direct = read_stat("direct_sends");
	int ttl = 7, tos = 0x28;
	bool v4 = variant->family == AF_INET;

	fill_pattern(shared, sizeof(shared), 5);
	if (v4) {
		ASSERT_EQ(0, setsockopt(self->sock, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)));
		ASSERT_EQ(0, setsockopt(self->sock, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)));
	} else {
		ASSERT_EQ(0, setsockopt(self->sock, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)));
		ASSERT_EQ(0, setsockopt(self->sock, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos)));
	}
	for (int i = 0; i < WIRE_MEMBERS; i++) {
		m[i] = member(i, variant->family, WIRE_PORT + i,
			      variant->private_bytes ? pre[i] : NULL,
			      variant->private_bytes ? app[i] : NULL);
		wire_addr(variant->family, 2 + i, m[i].recipient.addr);
	}
	ASSERT_EQ(0, add_members(self->group, m, WIRE_MEMBERS));
	ASSERT_EQ(WIRE_MEMBERS, group_send(self->group, &p, 1, NULL, 0, NULL));
	EXPECT_EQ(variant->direct ? direct + WIRE_MEMBERS : direct, read_stat("direct_sends"));

	for (int i = 0; i < WIRE_MEMBERS; i++) {
		const char *pp = variant->private_bytes ? pre[i] : "";
		const char *aa = variant->private_bytes ? app[i] : "";
		size_t body = strlen(pp) + sizeof(shared) + strlen(aa);
		size_t hdr = v4 ? 20 : 40;
		ssize_t n = next_udp(self->cap, WIRE_PORT + i, buf, sizeof(buf), 3000);
		__u8 daddr[16], saddr[16];

		ASSERT_EQ((ssize_t)(hdr + 8 + body), n) TH_LOG("member %d", i);
		wire_addr(variant->family, 2 + i, daddr);
		wire_addr(variant->family, 1, saddr);
		if (v4) {
			EXPECT_EQ(0x45, buf[0]);
			EXPECT_EQ(tos, buf[1]);
			EXPECT_EQ(n, buf[2] << 8 | buf[3]);
			EXPECT_EQ(ttl, buf[8]);
			EXPECT_TRUE(checksum_ok(sum16(0, buf, 20))) TH_LOG("IP header checksum");
			EXPECT_EQ(0, memcmp(buf + 12, saddr, 4));
			EXPECT_EQ(0, memcmp(buf + 16, daddr, 4));
		} else {
			EXPECT_EQ(0x60 | tos >> 4, buf[0]);
			EXPECT_EQ((tos & 15) << 4, buf[1] & 0xf0);
			EXPECT_EQ(n - 40, buf[4] << 8 | buf[5]);
			EXPECT_EQ(ttl, buf[7]);
			EXPECT_EQ(0, memcmp(buf + 8, saddr, 16));
			EXPECT_EQ(0, memcmp(buf + 24, daddr, 16));
		}
		EXPECT_EQ(self->sport, buf[hdr] << 8 | buf[hdr + 1]);
		EXPECT_EQ(n - hdr, buf[hdr + 4] << 8 | buf[hdr + 5]);
		EXPECT_TRUE(udp_checksum_ok(buf, n)) TH_LOG("UDP checksum, member %d", i);
		memcpy(want, pp, strlen(pp));
		memcpy(want + strlen(pp), shared, sizeof(shared));
		memcpy(want + strlen(pp) + sizeof(shared), aa, strlen(aa));
		EXPECT_EQ(0, memcmp(buf + hdr + 8, want, body)) TH_LOG("member %d bytes", i);
	}
}

/*
 * A member's route is looked up once and cached; changing, deleting and
 * re-adding the route between sends is followed on the next send (the
 * cached route is invalidated, never used stale), and a member without a
 * route fails with ENETUNREACH in its failure slot.
 */
FIXTURE(route_change) {
	int dev, sock, group, cap_a, cap_b;
	unsigned int sport;
};

FIXTURE_VARIANT(route_change) {
	int family;
	const char *route, *ip;
};

FIXTURE_VARIANT_ADD(route_change, ipv4) { .family = AF_INET, .route = "10.88.0.0/24", .ip = "ip" };
FIXTURE_VARIANT_ADD(route_change, ipv6) { .family = AF_INET6, .route = "fd88::/64", .ip = "ip -6" };

FIXTURE_SETUP(route_change)
{
	char cmd[256];

	self->cap_a = self->cap_b = self->group = self->sock = -1;
	self->dev = open_device();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, system("ip link add sg-route-a type dummy && ip link add sg-route-b type dummy && "
			    "sysctl -qw net.ipv6.conf.sg-route-a.disable_ipv6=0 && "
			    "sysctl -qw net.ipv6.conf.sg-route-b.disable_ipv6=0 && "
			    "ip link set sg-route-a up && ip link set sg-route-b up && "
			    "ip addr add 10.89.0.1/32 dev sg-route-a && ip addr add 10.89.0.2/32 dev sg-route-b && "
			    "ip -6 addr add fd89::1/128 dev sg-route-a nodad && "
			    "ip -6 addr add fd89::2/128 dev sg-route-b nodad"));
	snprintf(cmd, sizeof(cmd), "%s route add %s dev sg-route-a", variant->ip, variant->route);
	ASSERT_EQ(0, system(cmd));
	self->cap_a = packet_socket("sg-route-a");
	self->cap_b = packet_socket("sg-route-b");
	ASSERT_LE(0, self->cap_a);
	ASSERT_LE(0, self->cap_b);
	self->sock = bound_socket(variant->family, &self->sport);
	ASSERT_LE(0, self->sock);
	self->group = group_create(self->dev, self->sock);
	ASSERT_LE(0, self->group);
}

FIXTURE_TEARDOWN(route_change)
{
	close(self->group);
	close(self->sock);
	close(self->cap_a);
	close(self->cap_b);
	close(self->dev);
	system("ip link del sg-route-a 2>/dev/null; ip link del sg-route-b 2>/dev/null");
}

TEST_F_TIMEOUT(route_change, is_followed_on_the_next_send, 180)
{
	struct sendgroup_member m = member(1, variant->family, 9999, "x", NULL);
	struct sendgroup_payload p = payload("route", 5);
	struct sendgroup_failure failure;
	unsigned int failures;
	unsigned long long lookups;
	char cmd[256];

	if (variant->family == AF_INET) {
		__u32 dst = htonl(0x0a580002);	/* 10.88.0.2 */

		memcpy(m.recipient.addr, &dst, 4);
	} else {
		inet_pton(AF_INET6, "fd88::2", m.recipient.addr);
	}
	ASSERT_EQ(0, add_members(self->group, &m, 1));

	lookups = read_stat("route_lookups");
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(1, group_send(self->group, &p, 1, NULL, 0, NULL));
	EXPECT_EQ(3, count_udp(self->cap_a, 9999));
	EXPECT_EQ(0, count_udp(self->cap_b, 9999));
	EXPECT_EQ(lookups + 1, read_stat("route_lookups")) TH_LOG("the route is cached");

	snprintf(cmd, sizeof(cmd), "%s route replace %s dev sg-route-b", variant->ip, variant->route);
	ASSERT_EQ(0, system(cmd));
	EXPECT_EQ(1, group_send(self->group, &p, 1, NULL, 0, NULL));
	EXPECT_EQ(1, group_send(self->group, &p, 1, NULL, 0, NULL));
	EXPECT_EQ(0, count_udp(self->cap_a, 9999));
	EXPECT_EQ(2, count_udp(self->cap_b, 9999));
	EXPECT_EQ(lookups + 2, read_stat("route_lookups"));

	snprintf(cmd, sizeof(cmd), "%s route del %s", variant->ip, variant->route);
	ASSERT_EQ(0, system(cmd));
	EXPECT_EQ(0, group_send(self->group, &p, 1, &failure, 1, &failures));
	EXPECT_EQ(1, failures);
	EXPECT_EQ(1, failure.member_id);
	EXPECT_EQ(-ENETUNREACH, failure.error);
	EXPECT_EQ(0, count_udp(self->cap_a, 9999) + count_udp(self->cap_b, 9999));

	snprintf(cmd, sizeof(cmd), "%s route add %s dev sg-route-a", variant->ip, variant->route);
	ASSERT_EQ(0, system(cmd));
	EXPECT_EQ(1, group_send(self->group, &p, 1, NULL, 0, NULL));
	EXPECT_EQ(1, count_udp(self->cap_a, 9999));

	/* A device going down takes its routes with it. */
	ASSERT_EQ(0, system("ip link set sg-route-a down"));
	EXPECT_EQ(0, group_send(self->group, &p, 1, &failure, 1, &failures));
	EXPECT_EQ(1, failures);
	EXPECT_EQ(-ENETUNREACH, failure.error);
}

/*
 * Closing groups whose members hold cached routes drops every reference, and
 * so does REMOVE and UPDATE (UPDATE's new version looks its route up again).
 */
TEST(cached_routes_are_released)
{
	unsigned long long cached = read_stat("routes_cached");
	struct sendgroup_member m[100];
	struct sendgroup_payload p = payload("r", 1);
	unsigned int sport;
	int dev = open_device(), sock, groups[20];
	__u64 ids[10];

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, system("ip link add sg-rel type dummy && ip link set sg-rel up && "
			    "ip addr add 10.67.0.1/24 dev sg-rel"));
	sock = bound_socket(AF_INET, &sport);
	ASSERT_LE(0, sock);
	for (int i = 0; i < 100; i++) {
		__u32 a = htonl(0x0a430002 + i);	/* 10.67.0.2.. */

		m[i] = member(i, AF_INET, 7000 + i, "pp", "aa");
		memcpy(m[i].recipient.addr, &a, 4);
	}
	for (int g = 0; g < 20; g++) {
		groups[g] = group_create(dev, sock);
		ASSERT_LE(0, groups[g]);
		ASSERT_EQ(0, add_members(groups[g], m, 100));
		ASSERT_EQ(100, group_send(groups[g], &p, 1, NULL, 0, NULL));
	}
	EXPECT_EQ(cached + 20 * 100, read_stat("routes_cached"));
	for (int i = 0; i < 10; i++)
		ids[i] = i;
	ASSERT_EQ(0, remove_members(groups[0], ids, 10));
	ASSERT_EQ(0, update_members(groups[1], m + 10, 10));
	EXPECT_EQ(cached + 20 * 100 - 20, read_stat("routes_cached"));
	for (int g = 0; g < 20; g++)
		close(groups[g]);
	EXPECT_EQ(cached, read_stat("routes_cached"));
	close(sock);
	close(dev);
	EXPECT_EQ(0, system("ip link del sg-rel"));
}

#ifdef SG_TEST_BPF_LSM
/* ---- the LSM's sendmsg decision on the direct path ----------------------- */

/*
 * The direct path does not go through sock_sendmsg(), so the module asks the
 * LSM's socket_sendmsg hook about every datagram (sg_lsm_permits()). A BPF
 * LSM program stands in for an AppArmor or SELinux policy that refuses this
 * process's sendmsg: every datagram of a group send and of a one-shot send
 * must then fail with the LSM's errno, nothing may reach a receiver, and
 * once the policy allows again the direct path is taken again.
 */
#define LSM_MEMBERS 3

static int lsm_receive_count(const int *rx)
{
	char buf[64];
	int n = 0;

	for (int i = 0; i < LSM_MEMBERS; i++)
		while (recv(rx[i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
			n++;
	return n;
}

/* A BPF object next to this program, loaded; NULL on failure. */
static struct bpf_object *bpf_object_beside_me(const char *name)
{
	char path[4096], *slash;
	ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 64);
	struct bpf_object *obj;

	if (len <= 0)
		return NULL;
	path[len] = 0;
	slash = strrchr(path, '/');
	if (!slash)
		return NULL;
	strcpy(slash + 1, name);
	obj = bpf_object__open_file(path, NULL);
	if (obj && bpf_object__load(obj)) {
		bpf_object__close(obj);
		obj = NULL;
	}
	return obj;
}

/* The BPF LSM program attached, and a group of LSM_MEMBERS on a bound socket. */
FIXTURE(lsm) {
	struct bpf_object *obj;
	struct bpf_link *link;
	struct bpf_map *denied_tgid, *denied_port;
	int dev, sock, group;
	int rx[LSM_MEMBERS];
	unsigned int port[LSM_MEMBERS];
	struct sendgroup_recipient r[LSM_MEMBERS];
};

FIXTURE_VARIANT(lsm) {
	int family;
};

FIXTURE_VARIANT_ADD(lsm, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(lsm, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(lsm)
{
	struct sendgroup_member m[LSM_MEMBERS];
	unsigned int sport;

	self->obj = bpf_object_beside_me("lsm_deny.bpf.o");
	ASSERT_NE(NULL, self->obj) TH_LOG("open and load lsm_deny.bpf.o");
	self->link = bpf_program__attach_lsm(bpf_object__find_program_by_name(self->obj,
									       "sg_deny_sendmsg"));
	ASSERT_NE(NULL, self->link)
		TH_LOG("attach the BPF LSM program (is \"bpf\" in /sys/kernel/security/lsm?)");
	self->denied_tgid = bpf_object__find_map_by_name(self->obj, "sg_denied_tgid");
	self->denied_port = bpf_object__find_map_by_name(self->obj, "sg_denied_port");
	ASSERT_NE(NULL, self->denied_tgid);
	ASSERT_NE(NULL, self->denied_port);
	self->dev = open_device();
	ASSERT_LE(0, self->dev);
	self->sock = bound_socket(variant->family, &sport);
	ASSERT_LE(0, self->sock);
	self->group = group_create(self->dev, self->sock);
	ASSERT_LE(0, self->group);
	for (int i = 0; i < LSM_MEMBERS; i++) {
		self->rx[i] = make_receiver(variant->family, &self->port[i]);
		ASSERT_LE(0, self->rx[i]);
		m[i] = member(i, variant->family, self->port[i], i ? "pre" : NULL, NULL);
		self->r[i] = m[i].recipient;
	}
	ASSERT_EQ(0, add_members(self->group, m, LSM_MEMBERS));
}

FIXTURE_TEARDOWN(lsm)
{
	for (int i = 0; i < LSM_MEMBERS; i++)
		close(self->rx[i]);
	close(self->group);
	close(self->sock);
	close(self->dev);
	bpf_link__destroy(self->link);
	bpf_object__close(self->obj);
}

static void lsm_deny(struct bpf_map *map, __u32 value)
{
	__u32 key = 0;

	bpf_map__update_elem(map, &key, sizeof(key), &value, sizeof(value), BPF_ANY);
}

TEST_F(lsm, refusal_reaches_every_datagram)
{
	struct sendgroup_failure failures[LSM_MEMBERS];
	struct sendgroup_payload p = payload("lsm", 3);
	struct sendgroup_send_args args;
	__s32 results[LSM_MEMBERS];
	unsigned long long direct, refusals;
	unsigned int nfail;

	/* Allowed: the direct path, every member. */
	direct = read_stat("direct_sends");
	refusals = read_stat("lsm_refusals");
	EXPECT_EQ(LSM_MEMBERS, group_send(self->group, &p, 1, NULL, 0, NULL));
	EXPECT_EQ(direct + LSM_MEMBERS, read_stat("direct_sends"));
	EXPECT_EQ(LSM_MEMBERS, lsm_receive_count(self->rx));

	/* Refused: each member fails with the LSM's errno, nothing is sent. */
	lsm_deny(self->denied_tgid, getpid());
	direct = read_stat("direct_sends");
	EXPECT_EQ(0, group_send(self->group, &p, 1, failures, LSM_MEMBERS, &nfail));
	EXPECT_EQ(LSM_MEMBERS, nfail);
	for (unsigned int i = 0; i < nfail && i < LSM_MEMBERS; i++)
		EXPECT_EQ(-EPERM, failures[i].error);
	args = send_args(self->sock, "lsm", 3, self->r, LSM_MEMBERS, results);
	EXPECT_EQ(0, ioctl(self->dev, SENDGROUP_IOC_SEND, &args));
	for (int i = 0; i < LSM_MEMBERS; i++)
		EXPECT_EQ(-EPERM, results[i]);
	EXPECT_EQ(direct, read_stat("direct_sends"));
	EXPECT_EQ(refusals + 2 * LSM_MEMBERS, read_stat("lsm_refusals"));
	usleep(20000);
	EXPECT_EQ(0, lsm_receive_count(self->rx));

	/* Allowed again: back on the direct path. */
	lsm_deny(self->denied_tgid, 0);
	EXPECT_EQ(LSM_MEMBERS, group_send(self->group, &p, 1, NULL, 0, NULL));
	EXPECT_EQ(direct + LSM_MEMBERS, read_stat("direct_sends"));
	EXPECT_EQ(LSM_MEMBERS, lsm_receive_count(self->rx));
}

/*
 * A policy that judges each destination: the BPF LSM program refuses one
 * UDP port. A group send and a one-shot send whose first recipient is
 * allowed deliver to the allowed ones only, on the direct path, and the
 * refused one's failure record or result slot says EPERM.
 */
TEST_F(lsm, refuses_one_destination)
{
	struct sendgroup_failure failures[LSM_MEMBERS];
	struct sendgroup_payload p = payload("lsm", 3);
	struct sendgroup_send_args args;
	__s32 results[LSM_MEMBERS];
	unsigned long long direct, refusals;
	unsigned int nfail;
	char buf[64];

	lsm_deny(self->denied_port, self->port[1]);
	direct = read_stat("direct_sends");
	refusals = read_stat("lsm_refusals");

	memset(failures, 0xcc, sizeof(failures));
	EXPECT_EQ(LSM_MEMBERS - 1, group_send(self->group, &p, 1, failures, LSM_MEMBERS, &nfail));
	EXPECT_EQ(1, nfail);
	EXPECT_EQ(1, failures[0].member_id);
	EXPECT_EQ(-EPERM, failures[0].error);

	memset(results, 0xcc, sizeof(results));
	args = send_args(self->sock, "lsm", 3, self->r, LSM_MEMBERS, results);
	EXPECT_EQ(LSM_MEMBERS - 1, ioctl(self->dev, SENDGROUP_IOC_SEND, &args));
	EXPECT_EQ(0, results[0]);
	EXPECT_EQ(-EPERM, results[1]);
	EXPECT_EQ(0, results[2]);

	/* The allowed ones took the direct path; the refused one reached nobody. */
	EXPECT_EQ(direct + 2 * (LSM_MEMBERS - 1), read_stat("direct_sends"));
	EXPECT_EQ(refusals + 2, read_stat("lsm_refusals"));
	usleep(20000);
	for (int i = 0; i < LSM_MEMBERS; i++) {
		int n = 0;

		while (recv(self->rx[i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
			n++;
		EXPECT_EQ(i == 1 ? 0 : 2, n) TH_LOG("receiver %d", i);
	}
	lsm_deny(self->denied_port, 0);
}

/*
 * A cgroup sendmsg4 program attached while a long group send runs applies to
 * the rest of that send: here one that refuses every sendmsg (EPERM),
 * attached to the root cgroup after the send has sent its first datagrams
 * and blocked on its tiny send buffer (a qdisc that holds datagrams).
 */
struct attach_later {
	int cgroup, prog;
	useconds_t after;
	int ret;
};

static void *attach_later(void *arg)
{
	struct attach_later *a = arg;

	usleep(a->after);
	a->ret = bpf_prog_attach(a->prog, a->cgroup, BPF_CGROUP_UDP4_SENDMSG, BPF_F_ALLOW_MULTI);
	return NULL;
}

TEST(cgroup_sendmsg_program_attached_mid_call)
{
	static unsigned char body[1400];
	const struct bpf_insn refuse[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_CGROUP_UDP4_SENDMSG);
	struct sendgroup_failure f[HELD_MEMBERS];
	struct sendgroup_payload p = payload(body, sizeof(body));
	struct attach_later later = { .after = 1000 * 1000, .ret = -1 };
	int dev = open_device(), sock, group, sent, eperm = 0;
	unsigned int nfail;
	pthread_t thread;

	ASSERT_LE(0, dev);
	later.cgroup = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, later.cgroup) TH_LOG("cgroup2 at /sys/fs/cgroup: %s", strerror(errno));
	later.prog = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "sg_refuse", "GPL", refuse, 2, &opts);
	ASSERT_LE(0, later.prog) TH_LOG("load: %s", strerror(errno));
	/* 100 kbit/s: a 1400-byte datagram about every 0.12 s, 64 in 8 s. */
	ASSERT_EQ(0, hold_device_add("sg-cg0", "10.81.0", "100kbit"));
	sock = tiny_buffer_socket();
	ASSERT_LE(0, sock);
	group = held_group(dev, sock, "10.81.0");
	ASSERT_LE(0, group);

	ASSERT_EQ(0, pthread_create(&thread, NULL, attach_later, &later));
	sent = group_send(group, &p, 1, f, HELD_MEMBERS, &nfail);
	pthread_join(thread, NULL);
	EXPECT_EQ(0, later.ret) TH_LOG("attach: %s", strerror(errno));
	for (unsigned int i = 0; i < nfail && i < HELD_MEMBERS; i++)
		if (f[i].error == -EPERM)
			eperm++;
	TH_LOG("sent %d, failures %u (EPERM %d)", sent, nfail, eperm);
	/* Sent before the program, refused by it after: both, and nothing else. */
	EXPECT_LT(0, sent);
	EXPECT_LT(0, eperm);
	EXPECT_EQ(HELD_MEMBERS, sent + eperm);
	EXPECT_EQ(0, bpf_prog_detach2(later.prog, later.cgroup, BPF_CGROUP_UDP4_SENDMSG));
	close(later.prog);
	close(later.cgroup);
	close(group);
	close(sock);
	close(dev);
	EXPECT_EQ(0, hold_device_del("sg-cg0"));
}
#endif /* SG_TEST_BPF_LSM */

/* ---- membership changes while sends run ---------------------------------- */

/*
 * Two senders and one mutator. Every payload carries a sequence number the
 * sender takes just before its call. The mutator removes a member, then reads
 * the sequence counter: any later call starts after the removal returned, so
 * a removed member must never receive a sequence number above that value.
 */
#define CHURN_RECEIVERS 512

struct churn {
	int dev, sock, group;
	int rx[CHURN_RECEIVERS];
	unsigned int port[CHURN_RECEIVERS];
	uint64_t removed_at[CHURN_RECEIVERS];	/* 0: never removed */
	atomic_uint_fast64_t seq;
	atomic_bool stop;
	atomic_ulong calls, bad_calls;
	unsigned int added, removed;
};

static void *churn_sender(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&c->stop)) {
		uint64_t seq = atomic_fetch_add(&c->seq, 1) + 1;
		struct sendgroup_payload p = payload(&seq, sizeof(seq));
		int ret = group_send(c->group, &p, 1, NULL, 0, NULL);

		if (ret < 0)
			atomic_fetch_add(&c->bad_calls, 1);
		else
			atomic_fetch_add(&c->calls, 1);
	}
	return NULL;
}

static unsigned int churn_seconds(void)
{
	const char *s = getenv("SENDGROUP_TEST_SECONDS");

	return s ? (unsigned int)atoi(s) : 10;
}

FIXTURE(churn) {
	struct churn *c;
};

FIXTURE_SETUP(churn)
{
	raise_fd_limit();
	self->c = calloc(1, sizeof(*self->c));
	ASSERT_TRUE(self->c != NULL);
}

FIXTURE_TEARDOWN(churn)
{
	free(self->c);
}

TEST_F_TIMEOUT(churn, no_send_reaches_a_member_after_its_removal, 180)
{
	struct churn *c = self->c;
	pthread_t s1, s2;
	struct timespec start, now;
	unsigned long violations = 0, delivered_removed = 0;
	int rcvbuf = 1 << 20;

	c->dev = open_device();
	c->sock = socket(AF_INET, SOCK_DGRAM, 0);
	c->group = group_create(c->dev, c->sock);
	ASSERT_LE(0, c->group);
	for (int i = 0; i < CHURN_RECEIVERS; i++) {
		c->rx[i] = make_receiver(AF_INET, &c->port[i]);
		ASSERT_LE(0, c->rx[i]);
		setsockopt(c->rx[i], SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	}
	/* Start with 16 members; the mutator adds one and removes one per step. */
	for (; c->added < 16; c->added++) {
		struct sendgroup_member m = member(c->added, AF_INET, c->port[c->added], NULL, NULL);

		ASSERT_EQ(0, add_members(c->group, &m, 1));
	}
	ASSERT_EQ(0, pthread_create(&s1, NULL, churn_sender, c));
	ASSERT_EQ(0, pthread_create(&s2, NULL, churn_sender, c));
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		__u64 id = c->removed;
		struct sendgroup_member m;

		if (c->added < CHURN_RECEIVERS) {
			m = member(c->added, AF_INET, c->port[c->added], NULL, NULL);
			ASSERT_EQ(0, add_members(c->group, &m, 1));
			c->added++;
		}
		if (c->removed + 1 < c->added) {
			ASSERT_EQ(0, remove_members(c->group, &id, 1));
			c->removed_at[id] = atomic_load(&c->seq);
			c->removed++;
		}
		usleep(20 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < (time_t)churn_seconds() && c->removed + 1 < CHURN_RECEIVERS);
	atomic_store(&c->stop, true);
	pthread_join(s1, NULL);
	pthread_join(s2, NULL);

	for (unsigned int i = 0; i < c->removed; i++) {
		uint64_t seq;

		while (recv(c->rx[i], &seq, sizeof(seq), MSG_DONTWAIT) == sizeof(seq)) {
			delivered_removed++;
			if (seq > c->removed_at[i]) {
				violations++;
				TH_LOG("member %u removed at seq %llu got seq %llu", i,
				       (unsigned long long)c->removed_at[i], (unsigned long long)seq);
			}
		}
	}
	TH_LOG("calls %lu, failed calls %lu, members added %u, removed %u, datagrams at removed members %lu",
	       atomic_load(&c->calls), atomic_load(&c->bad_calls), c->added, c->removed, delivered_removed);
	EXPECT_LT(0, atomic_load(&c->calls));
	EXPECT_EQ(0, atomic_load(&c->bad_calls));
	EXPECT_LT(10, c->removed);
	EXPECT_LT(0, delivered_removed);
	EXPECT_EQ(0, violations);
	for (int i = 0; i < CHURN_RECEIVERS; i++)
		close(c->rx[i]);
	close(c->group);
	close(c->sock);
	close(c->dev);
}

/* ---- one user's send and another user's group ------------------------------ */

/*
 * User A (uid 1001) runs a group send that blocks for a minute (SO_SNDBUF 1,
 * 64 members behind a qdisc releasing 1 KB/s). While it is blocked, user B
 * (uid 1002) adds, updates and removes members of its own group: each must
 * complete without waiting for A (issue 12: one module-wide SRCU made B's
 * UPDATE and REMOVE wait for A's send to end). The bound is generous: it is
 * a property (no waiting on A), not a speed.
 */
#define CROSS_USER_BOUND_MS	500

static double ms_since(double start_s)
{
	return (now_s() - start_s) * 1000;
}

/* User B's three calls on its own group; their durations in ms, or -errno. */
static void cross_user_changes(int report)
{
	struct sendgroup_member m[16];
	double result[3] = { -1, -1, -1 };
	__u64 ids[16];
	int dev, sock, group;
	double t;

	if (setgid(1002) || setuid(1002))
		_exit(10);
	dev = open_device();
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	group = group_create(dev, sock);
	if (group < 0)
		_exit(11);
	for (int i = 0; i < 16; i++) {
		m[i] = member(i, AF_INET, 9, "b", NULL);
		ids[i] = i;
	}
	t = now_s();
	result[0] = add_members(group, m, 16) ?: ms_since(t);
	t = now_s();
	result[1] = update_members(group, m, 16) ?: ms_since(t);
	t = now_s();
	result[2] = remove_members(group, ids, 16) ?: ms_since(t);
	_exit(write(report, result, sizeof(result)) == sizeof(result) ? 0 : 12);
}

TEST_F_TIMEOUT(churn, blocked_send_does_not_delay_another_users_changes, 120)
{
	static unsigned char body[1400];
	int ready[2], report[2], status;
	double result[3] = { -1, -1, -1 }, a_started;
	struct pollfd pfd;
	pid_t a, b;
	char c;

	ASSERT_EQ(0, hold_device_add("sg-xu0", "10.82.0", "8kbit"));
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(report));
	a = fork();
	ASSERT_LE(0, a);
	if (a == 0) {
		struct sendgroup_payload p = payload(body, sizeof(body));
		int dev, sock, group;

		if (setgid(1001) || setuid(1001))
			_exit(10);
		dev = open_device();
		sock = tiny_buffer_socket();
		if (sock < 0)
			_exit(11);
		group = held_group(dev, sock, "10.82.0");
		if (group < 0 || write(ready[1], "a", 1) != 1)
			_exit(12);
		group_send(group, &p, 1, NULL, 0, NULL);
		_exit(0);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	a_started = now_s();
	usleep(500 * 1000);	/* A is inside its send, waiting for buffer space */

	b = fork();
	ASSERT_LE(0, b);
	if (b == 0)
		cross_user_changes(report[1]);
	pfd = (struct pollfd){ .fd = report[0], .events = POLLIN };
	if (poll(&pfd, 1, 10 * 1000) != 1) {
		TH_LOG("user B still waiting after 10 s: releasing user A");
		kill(a, SIGKILL);
	}
	EXPECT_EQ(sizeof(result), read(report[0], result, sizeof(result)));
	ASSERT_EQ(b, waitpid(b, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* A must still be in its send, blocked for at least 2 s by now. */
	while (ms_since(a_started) < 2000)
		usleep(100 * 1000);
	if (waitpid(a, &status, WNOHANG) == 0) {
		kill(a, SIGKILL);
		ASSERT_EQ(a, waitpid(a, &status, 0));
	} else {
		EXPECT_TRUE(false) TH_LOG("user A's send ended early");
	}
	TH_LOG("user A blocked >= %.0f ms; user B: ADD %.1f ms, UPDATE %.1f ms, REMOVE %.1f ms",
	       ms_since(a_started), result[0], result[1], result[2]);
	for (int i = 0; i < 3; i++) {
		EXPECT_LE(0, result[i]) TH_LOG("call %d failed: %s", i, strerror((int)-result[i]));
		EXPECT_GT(CROSS_USER_BOUND_MS, result[i]) TH_LOG("call %d waited for user A", i);
	}
	close(ready[0]);
	close(ready[1]);
	close(report[0]);
	close(report[1]);
	EXPECT_EQ(0, hold_device_del("sg-xu0"));
}

/* ---- memory -------------------------------------------------------------- */

static long long meminfo_kb(const char *field)
{
	char line[256];
	long long value = -1;
	size_t len = strlen(field);
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && line[len] == ':')
			value = atoll(line + len + 1);
	fclose(f);
	return value;
}

static unsigned int env_or(const char *name, unsigned int fallback)
{
	const char *s = getenv(name);

	return s ? (unsigned int)atoi(s) : fallback;
}

FIXTURE(memory) {
	int unused;
};

FIXTURE_SETUP(memory) {}
FIXTURE_TEARDOWN(memory) {}

/* Creating and destroying many large groups leaves no memory behind. */
TEST_F_TIMEOUT(memory, returns_after_many_groups, 900)
{
	unsigned int groups = env_or("SENDGROUP_TEST_GROUPS", 10000), size = 1000;
	struct sendgroup_member *m = calloc(size, sizeof(*m));
	unsigned long long groups_live = read_stat("groups_live");
	unsigned long long members_live = read_stat("members_live");
	long long slab_before, slab_after;
	int dev = open_device(), sock = socket(AF_INET, SOCK_DGRAM, 0);
	struct timespec t0, t1;

	ASSERT_TRUE(m != NULL);
	for (unsigned int i = 0; i < size; i++)
		m[i] = member(i, AF_INET, 10000 + i, "pp", "aa");
	/* Warm the caches once so the baseline includes them. */
	for (int warm = 0; warm < 2; warm++) {
		int g = group_create(dev, sock);

		ASSERT_LE(0, g);
		ASSERT_EQ(0, add_members(g, m, size));
		close(g);
	}
	system("sync; echo 2 > /proc/sys/vm/drop_caches");
	slab_before = meminfo_kb("Slab");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned int i = 0; i < groups; i++) {
		int g = group_create(dev, sock);

		ASSERT_LE(0, g) TH_LOG("group %u", i);
		ASSERT_EQ(0, add_members(g, m, size)) TH_LOG("group %u", i);
		close(g);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	TH_LOG("%u groups in %.1f s", groups,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	EXPECT_EQ(groups_live, read_stat("groups_live"));
	EXPECT_EQ(members_live, read_stat("members_live"));
	/* Freed slab objects may take an RCU grace period and a shrink to show. */
	usleep(200 * 1000);
	system("sync; echo 2 > /proc/sys/vm/drop_caches");
	slab_after = meminfo_kb("Slab");
	TH_LOG("%u groups x %u members: slab %lld kB before, %lld kB after", groups, size,
	       slab_before, slab_after);
	/* 10^7 members of ~100 bytes would be ~1 GB; allow 16 MB of noise. */
	EXPECT_LT(slab_after - slab_before, 16 * 1024);
	free(m);
	close(sock);
	close(dev);
}

/*
 * Memory a caller makes the module allocate is charged to the caller's
 * memory cgroup and bounded. In a cgroup with memory.max = 32 MiB:
 *  - an ADD whose 256 MiB entry array was never touched (it reads as the
 *    shared zero page, charged to nobody) makes the module hold no copy of
 *    it (issue 12: vmemdup_user() allocated it, uncharged);
 *  - the largest ADD (65,536 members with 1,024 private bytes each, about
 *    128 MiB of members) fails with ENOMEM: the caller is neither let past
 *    the limit nor OOM-killed.
 * memory.peak stays within memory.max, and the machine's available memory
 * never drops by more than the limit (sampled while the calls run).
 */
#define MEMCG_DIR	"/sys/fs/cgroup/sendgroup-test"
#define MEMCG_LIMIT	(32ll << 20)

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -errno;
}

static long long read_counter(const char *path, const char *key)
{
	char line[256];
	long long value = -1;
	size_t len = key ? strlen(key) : 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!key)
			value = atoll(line);
		else if (!strncmp(line, key, len) && line[len] == ' ')
			value = atoll(line + len + 1);
	fclose(f);
	return value;
}

/* In the cgroup: the two ADDs; exit status = 0 when both failed as they must. */
static void memcg_adds(void)
{
	static char private[SENDGROUP_MAX_MEMBER_PRIVATE];
	size_t untouched_len = (size_t)SENDGROUP_MAX_MEMBERS * 4096;
	struct sendgroup_member *m = calloc(SENDGROUP_MAX_MEMBERS, sizeof(*m));
	char pid[32];
	void *untouched;
	int dev, sock, group, ret;

	snprintf(pid, sizeof(pid), "%d", getpid());
	if (!m || write_file(MEMCG_DIR "/cgroup.procs", pid))
		_exit(20);
	dev = open_device();
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	group = group_create(dev, sock);
	if (group < 0)
		_exit(21);
	untouched = mmap(NULL, untouched_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (untouched == MAP_FAILED)
		_exit(23);
	/* All ids 0: refused (EINVAL) once read, or ENOMEM; never a copy of it. */
	ret = members_call(group, SENDGROUP_GROUP_IOC_ADD, untouched, SENDGROUP_MAX_MEMBERS, 4096);
	if (ret != -EINVAL && ret != -ENOMEM) {
		fprintf(stderr, "# untouched ADD: %d\n", ret);
		_exit(24);
	}
	munmap(untouched, untouched_len);

	for (int i = 0; i < SENDGROUP_MAX_MEMBERS; i++) {
		m[i] = member(i, AF_INET, 9, NULL, NULL);
		m[i].recipient.prepend = (uintptr_t)private;
		m[i].recipient.prepend_len = sizeof(private);
	}
	ret = add_members(group, m, SENDGROUP_MAX_MEMBERS);
	if (ret != -ENOMEM) {
		fprintf(stderr, "# largest ADD: %d, expected -ENOMEM\n", ret);
		_exit(22);
	}
	_exit(0);
}

TEST_F_TIMEOUT(memory, add_is_charged_to_the_callers_cgroup, 300)
{
	long long available = meminfo_kb("MemAvailable"), lowest = available, peak, kills;
	char limit[32];
	int status;
	pid_t child;

	ASSERT_LT(0, available);
	rmdir(MEMCG_DIR);
	ASSERT_EQ(0, write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory"))
		TH_LOG("cgroup v2 with the memory controller at /sys/fs/cgroup");
	ASSERT_EQ(0, mkdir(MEMCG_DIR, 0755));
	snprintf(limit, sizeof(limit), "%lld", MEMCG_LIMIT);
	ASSERT_EQ(0, write_file(MEMCG_DIR "/memory.max", limit));
	write_file(MEMCG_DIR "/memory.swap.max", "0");

	child = fork();
	ASSERT_LE(0, child);
	if (child == 0)
		memcg_adds();
	while (waitpid(child, &status, WNOHANG) == 0) {
		long long now = meminfo_kb("MemAvailable");

		if (now >= 0 && now < lowest)
			lowest = now;
		usleep(2000);
	}
	peak = read_counter(MEMCG_DIR "/memory.peak", NULL);
	kills = read_counter(MEMCG_DIR "/memory.events", "oom_kill");
	TH_LOG("child %s %d; memory.peak %lld KiB of %lld; oom_kill %lld; MemAvailable dropped %lld KiB",
	       WIFEXITED(status) ? "exited" : "killed by signal",
	       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
	       peak >> 10, MEMCG_LIMIT >> 10, kills, available - lowest);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, kills);
	if (peak >= 0)
		EXPECT_GE(MEMCG_LIMIT, peak);
	EXPECT_GT((MEMCG_LIMIT >> 10) * 2, available - lowest);
	EXPECT_EQ(0, rmdir(MEMCG_DIR));
}

TEST_HARNESS_MAIN
