// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for kernel-resident groups (SENDGROUP_IOC_GROUP_CREATE and the group
 * fd's ioctls), in the style of the kernel's selftests. Run as root with the
 * module loaded, in a network namespace of its own (scripts/netns-exec).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

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
	struct sendgroup_members_args args = {
		.size = sizeof(args),
		.members = (uintptr_t)entries,
		.count = count,
		.member_size = entry_size,
	};
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
	struct sendgroup_members_args args = {
		.size = sizeof(args), .members = (uintptr_t)&m, .count = 1, .member_size = sizeof(m),
	};
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

/*
 * Routes are looked up per datagram, as sendmsg() does: moving the route of
 * a member's destination between two sends moves its datagrams.
 */
static unsigned long long tx_packets(const char *dev)
{
	/* /proc/net/dev is this namespace's; /sys/class/net is the mounter's. */
	unsigned long long v[16];
	char line[512], name[64];
	unsigned long long packets = ~0ULL;
	FILE *f = fopen("/proc/net/dev", "r");

	if (!f)
		return ~0ULL;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %63[^:]: %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
			   &v[8], &v[9]) == 11 && !strcmp(name, dev))
			packets = v[9];	/* transmit packets */
	}
	fclose(f);
	return packets;
}

TEST(route_change_between_sends_is_followed)
{
	int dev = open_device(), sock = socket(AF_INET, SOCK_DGRAM, 0), group;
	struct sendgroup_member m = member(1, AF_INET, 9999, NULL, NULL);
	struct sendgroup_payload p = payload("route", 5);
	__u32 dst = htonl(0x0a580002);	/* 10.88.0.2 */
	unsigned long long a, b;

	/* No IPv6 on the dummies: its DAD and MLD packets would count as tx. */
	ASSERT_EQ(0, system("echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 && "
			    "ip link add sg-route-a type dummy && ip link add sg-route-b type dummy && "
			    "ip link set sg-route-a up && ip link set sg-route-b up && "
			    "ip route add 10.88.0.0/24 dev sg-route-a"));
	memcpy(m.recipient.addr, &dst, 4);
	group = group_create(dev, sock);
	ASSERT_LE(0, group);
	ASSERT_EQ(0, add_members(group, &m, 1));

	a = tx_packets("sg-route-a");
	b = tx_packets("sg-route-b");
	EXPECT_EQ(1, group_send(group, &p, 1, NULL, 0, NULL));
	EXPECT_EQ(a + 1, tx_packets("sg-route-a"));
	EXPECT_EQ(b, tx_packets("sg-route-b"));

	ASSERT_EQ(0, system("ip route replace 10.88.0.0/24 dev sg-route-b"));
	EXPECT_EQ(1, group_send(group, &p, 1, NULL, 0, NULL));
	EXPECT_EQ(a + 1, tx_packets("sg-route-a"));
	EXPECT_EQ(b + 1, tx_packets("sg-route-b"));

	ASSERT_EQ(0, system("ip route del 10.88.0.0/24"));
	EXPECT_EQ(0, group_send(group, &p, 1, NULL, 0, NULL));
	close(group);
	close(sock);
	close(dev);
	EXPECT_EQ(0, system("ip link del sg-route-a && ip link del sg-route-b"));
}

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

TEST_HARNESS_MAIN
