// SPDX-License-Identifier: GPL-2.0
/*
 * Payload pages: the shared payload of a send, copied from user space once
 * into pages that every datagram references; the per-call arena that holds
 * prepend and append bytes the same way; and the page pool a group keeps
 * between its sends so that it does not allocate (and charge) fresh pages
 * on every call.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bvec.h>
#include <linux/mm.h>
#include <linux/uaccess.h>

#include "sg_internal.h"

/* ---- page pool ------------------------------------------------------- */

/*
 * One-shot calls (send.c) keep no state between calls, yet each needs at
 * least a page for its shared payload: allocating it fresh cost a page
 * allocation and, with init_on_alloc (Debian's default), zeroing 4 KiB per
 * call, about a third of a one-recipient call (Docs/benchmarks.md, "Where
 * the time goes"). Each CPU keeps a pool for them instead, used exactly as
 * a group's; a call takes the pool of the CPU it starts on and returns its
 * pages to that pool wherever it ends. A pooled page stays charged to the
 * memory cgroup of the call that allocated it: at most SG_POOL_PAGES per
 * CPU, released when the module is unloaded.
 */
static DEFINE_PER_CPU(struct sg_page_pool, sg_call_pools);

void sg_call_pools_init(void)
{
	int cpu;

	for_each_possible_cpu(cpu)
		sg_pool_init(per_cpu_ptr(&sg_call_pools, cpu));
}

void sg_call_pools_release(void)
{
	int cpu;

	for_each_possible_cpu(cpu)
		sg_pool_release(per_cpu_ptr(&sg_call_pools, cpu));
}

/* The pool for a one-shot call starting now (any CPU's pool would be correct). */
struct sg_page_pool *sg_call_pool(void)
{
	return raw_cpu_ptr(&sg_call_pools);
}

void sg_pool_init(struct sg_page_pool *pool)
{
	spin_lock_init(&pool->lock);
	pool->nr = 0;
}

void sg_pool_release(struct sg_page_pool *pool)
{
	while (pool->nr)
		put_page(pool->pages[--pool->nr]);
}

static struct page *sg_page_get(struct sg_page_pool *pool)
{
	struct page *page = NULL;
	unsigned int i;

	if (pool) {
		spin_lock(&pool->lock);
		for (i = 0; i < pool->nr; i++) {
			if (page_ref_count(pool->pages[i]) == 1) {
				page = pool->pages[i];
				pool->pages[i] = pool->pages[--pool->nr];
				break;
			}
		}
		spin_unlock(&pool->lock);
		if (page)
			return page;
	}
	return alloc_page(SG_GFP_CALLER);
}

/* Drop the caller's reference: into the pool while it has room. */
static void sg_page_put(struct sg_page_pool *pool, struct page *page)
{
	if (pool) {
		spin_lock(&pool->lock);
		if (pool->nr < SG_POOL_PAGES) {
			pool->pages[pool->nr++] = page;
			page = NULL;
		}
		spin_unlock(&pool->lock);
	}
	if (page)
		put_page(page);
}

/* ---- the shared payload -------------------------------------------- */

void sg_payload_release(struct sg_payload *payload)
{
	unsigned int i;

	for (i = 0; i < payload->nr_pages; i++)
		sg_page_put(payload->pool, payload->pages[i]);
	payload->nr_pages = 0;
}

/* Copy @len bytes at @uptr into pages of @payload; on failure it holds none. */
int sg_payload_copy(struct sg_payload *payload, struct sg_page_pool *pool, u64 uptr, u32 len)
{
	const char __user *src = u64_to_user_ptr(uptr);
	unsigned int off;
	int ret;

	payload->pool = pool;
	payload->len = len;
	for (off = 0; off < len; off += PAGE_SIZE) {
		unsigned int chunk = min_t(unsigned int, len - off, PAGE_SIZE);
		struct page *page = sg_page_get(pool);

		if (!page) {
			ret = -ENOMEM;
			goto out_release_pages;
		}
		payload->pages[payload->nr_pages++] = page;
		if (copy_from_user(page_address(page), src + off, chunk)) {
			ret = -EFAULT;
			goto out_release_pages;
		}
	}
	sg_stat_add(shared_copies, 1);
	sg_stat_add(shared_bytes_copied, len);
	return 0;

out_release_pages:
	sg_payload_release(payload);
	return ret;
}

/* Describe @payload's pages as bvecs at *@nr. */
void sg_payload_bvecs(const struct sg_payload *payload, struct bio_vec *bvec, unsigned int *nr)
{
	unsigned int i;

	for (i = 0; i < payload->nr_pages; i++)
		bvec_set_page(&bvec[(*nr)++], payload->pages[i],
			      min_t(unsigned int, payload->len - i * PAGE_SIZE, PAGE_SIZE), 0);
}

/* ---- the arena: prepend and append bytes -------------------------- */

/* Drop the pages the arena moved away from: call once the datagram is sent. */
void sg_arena_release_retired(struct sg_arena *arena)
{
	while (arena->nr_retired)
		sg_page_put(arena->pool, arena->retired[--arena->nr_retired]);
}

/* Drop every page the arena holds: once the call's last datagram is sent. */
void sg_arena_release(struct sg_arena *arena)
{
	sg_arena_release_retired(arena);
	if (arena->page)
		sg_page_put(arena->pool, arena->page);
	arena->page = NULL;
}

/* How many bvecs sg_arena_copy() would describe @len bytes with, from here. */
unsigned int sg_arena_bvecs(const struct sg_arena *arena, u32 len)
{
	u32 room = arena->page ? PAGE_SIZE - arena->used : 0;

	if (len <= room)
		return len ? 1 : 0;
	return (room ? 1 : 0) + DIV_ROUND_UP(len - room, PAGE_SIZE);
}

/*
 * Copy @bytes into the arena and describe them as bvecs at *@nr.
 *
 * The arena's bounds hold because every datagram releases its retired pages
 * once sent (sg_send_datagram()) and carries at most 0xFFFF private bytes:
 * those fill at most 16 pages (SG_ARENA_MAX_RETIRED is 17) and need at most
 * 17 bvecs each for prepend and append beside 16 shared pages
 * (SG_MAX_BVECS is 51). The checks below are therefore never true; they
 * stay as plain errors (args.arena_edges drives the largest cases).
 */
int sg_arena_copy(struct sg_arena *arena, const struct sg_bytes *bytes,
		  struct bio_vec *bvec, unsigned int *nr)
{
	const char __user *src = u64_to_user_ptr(bytes->user);
	unsigned int start = *nr;
	u32 done = 0;

	while (done < bytes->len) {
		void *dst;
		u32 chunk;

		if (!arena->page || arena->used == PAGE_SIZE) {
			if (arena->page) {
				if (arena->nr_retired == SG_ARENA_MAX_RETIRED)
					return -EMSGSIZE;
				arena->retired[arena->nr_retired++] = arena->page;
			}
			arena->page = sg_page_get(arena->pool);
			if (!arena->page)
				return -ENOMEM;
			arena->used = 0;
		}
		if (*nr >= SG_MAX_BVECS)
			return -EMSGSIZE;
		chunk = min_t(u32, bytes->len - done, PAGE_SIZE - arena->used);
		dst = page_address(arena->page) + arena->used;
		if (bytes->kernel) {
			memcpy(dst, bytes->kernel + done, chunk);
		} else if (copy_from_user(dst, src + done, chunk)) {
			*nr = start;
			return -EFAULT;
		}
		bvec_set_page(&bvec[(*nr)++], arena->page, chunk, arena->used);
		arena->used += chunk;
		done += chunk;
	}
	sg_stat_add(private_bytes_copied, bytes->len);
	return 0;
}

