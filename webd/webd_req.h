/* webd_req.h — what postern-webd reads from a request: the address in an
 * Autodiscover POX request body and in an emailaddress= parameter.
 *
 * Pure functions (the fuzz target tests/fuzz/fuzz_autodiscover.c drives
 * them): no I/O, no state; Expat's allocations are freed before return.
 * Threading: any thread. */
#ifndef POSTERN_WEBD_REQ_H
#define POSTERN_WEBD_REQ_H

#include <stddef.h>

#include "common/client_settings.h"

/* An address as a client typed it: checked and folded to lower case
 * (store_addr_normalize). Returns 0 or -EINVAL (NULL, empty, too long,
 * malformed). */
int webd_req_address(const char *s, char out[CS_ADDR_MAX + 1]);

/* The EMailAddress of an Autodiscover request (Outlook request schema
 * 2006: Autodiscover/Request/EMailAddress), normalised. The body must be
 * well-formed XML without a DOCTYPE (no entities to expand). Returns 0,
 * or -EINVAL for malformed XML, a missing, repeated or invalid address. */
int webd_req_autodiscover(const char *body, size_t len,
			  char out[CS_ADDR_MAX + 1]);

#endif
