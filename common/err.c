/* err.c — names for the codes of err.h. */
#include <string.h>

#include "common/err.h"

const char *pst_strerror(int err)
{
	static const char *const names[] = {
		[PST_ECONFIG - PST_ERR_BASE]   = "configuration error",
		[PST_ETOOLONG - PST_ERR_BASE]  = "too long",
		[PST_EPROTO - PST_ERR_BASE]    = "protocol error",
		[PST_ETLS - PST_ERR_BASE]      = "TLS error",
		[PST_ELIMIT - PST_ERR_BASE]    = "limit reached",
		[PST_ENOTFOUND - PST_ERR_BASE] = "not found",
		[PST_EEXIST - PST_ERR_BASE]    = "already exists",
		[PST_EFULL - PST_ERR_BASE]     = "store full",
		[PST_ECORRUPT - PST_ERR_BASE]  = "store corrupt",
		[PST_EVERSION - PST_ERR_BASE]  = "unsupported store version",
		[PST_EAUTH - PST_ERR_BASE]     = "authentication failed",
		[PST_EBUSY - PST_ERR_BASE]     = "in use",
		[PST_EUPGRADE - PST_ERR_BASE]  = "store needs an upgrade (postern store upgrade)",
		[PST_EQUOTA - PST_ERR_BASE]    = "mailbox full (over quota)",
	};
	/* Any int is a valid argument (no REQUIRE): the range checks below
	 * keep the index in the table, and this keeps the table whole. */
	_Static_assert(sizeof(names) / sizeof(*names) ==
		       PST_ERR_END - PST_ERR_BASE, "a name for every pst_err");
	int code = -err;

	if (code > PST_ERR_BASE && code < PST_ERR_END)
		return names[code - PST_ERR_BASE];
	if (code > 0 && code < PST_ERR_BASE)
		return strerror(code);
	return err == 0 ? "success" : "unknown error";
}
