// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * error.c - struct gcfp_error, filled the same way by the loader, the
 * next-hop resolver and the AF_XDP ring core (include/groupcast_fastpath.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "groupcast_fastpath.h"
#include "internal.h"

const char *gcfp_code_name(int code)
{
	switch (code < 0 ? -code : code) {
	case GCFP_OK: return "success";
	case GCFP_ERR_NOT_ROOT: return "not permitted (needs root)";
	case GCFP_ERR_NO_DEVICE: return "no such device";
	case GCFP_ERR_ALREADY_ATTACHED: return "already attached";
	case GCFP_ERR_BUSY: return "hook in use by another program";
	case GCFP_ERR_NOT_ATTACHED: return "not attached";
	case GCFP_ERR_VERIFIER: return "program rejected by the verifier";
	case GCFP_ERR_INVALID: return "invalid argument";
	case GCFP_ERR_NO_ROUTE: return "no such route";
	case GCFP_ERR_ROUTES_FULL: return "route map full";
	case GCFP_ERR_BPFFS: return "bpffs unavailable";
	case GCFP_ERR_ABI: return "layout version mismatch";
	case GCFP_ERR_SYSTEM: return "system call failed";
	case GCFP_ERR_UNREACHABLE: return "no route to host";
	case GCFP_ERR_NEIGH_UNRESOLVED: return "neighbour not resolved";
	case GCFP_ERR_UNSUPPORTED_LINK: return "unsupported link type";
	}
	return "unknown error";
}

int gcfp_fail(struct gcfp_error *err, int code, int sys_errno, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = code;
		err->sys_errno = sys_errno;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
		if (sys_errno) {
			size_t len = strlen(err->message);

			snprintf(err->message + len, sizeof(err->message) - len, ": %s",
				 strerror(sys_errno));
		}
	}
	return -code;
}

void gcfp_clear_error(struct gcfp_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}
