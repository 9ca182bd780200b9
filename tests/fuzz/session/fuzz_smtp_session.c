/* Fuzz target: a whole SMTP submission or LMTP connection (submitd/ minus
 * main.c and the relay, whose relay_kick() is a no-op here) over fake_io, with the real store, auth pool and post queue (see
 * fuzz_session.h for the input format). Header byte 0: bits 0-1 the
 * listener (0: 465 implicit TLS; 1 and 3: 587 STARTTLS; 2: LMTP, on the
 * unix socket when bit 2, the loopback bit, is set), bit 4 bare_newline =
 * reject, bit 5 a relay is configured (remote recipients are queued).
 * Checks: out_check.h (SMTP), and through the driver no fails_assert, no
 * hang, on_close exactly once, no leak. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "submitd/relay.h"
#include "submitd/smtp_session.h"
#include "tests/fuzz/session/fuzz_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The relay is not linked (it is a client of the real io layer): queued
 * messages stay queued. */
void relay_kick(void)
{
}

static int smtp_kind(unsigned b0, bool *is_unix)
{
	*is_unix = false;
	switch (b0 & 3) {
	case 0:
		return SMTP_LISTEN_TLS;
	case 2:
		*is_unix = b0 & 4;
		return SMTP_LISTEN_LMTP;
	default:
		return SMTP_LISTEN_STARTTLS;
	}
}

static void smtp_configure(struct postern_config *cfg, unsigned b0)
{
	cfg->submitd.bare_newline = b0 & 16 ? CFG_BARE_NL_REJECT
					    : CFG_BARE_NL_NORMALIZE;
	snprintf(cfg->submitd.relay, sizeof(cfg->submitd.relay), "%s",
		 b0 & 32 ? "relay.invalid:25" : "");
}

static void smtp_globals(const struct postern_config *cfg, struct store *st,
			 struct auth_pool *pool)
{
	smtp_store = st;
	smtp_pool = pool;
	smtp_budget.max = cfg->limits.data_memory_max;   /* as main.c */
}

/* Every message buffer is freed by now (session gone, deliveries
 * answered): the daemon-wide budget must be whole again, or memory for
 * messages leaks away until the daemon refuses all mail with 452. */
static void smtp_after(void)
{
	uint64_t used = atomic_load(&smtp_budget.used);

	if (used) {
		fprintf(stderr, "fuzz: smtp_budget.used = %llu after the "
			"session (a body's budget was not given back)\n",
			(unsigned long long)used);
		abort();
	}
}

static uint64_t smtp_line_max(const struct postern_config *cfg)
{
	return cfg->limits.smtp_line_max;
}

static uint64_t smtp_data_line_max(const struct postern_config *cfg)
{
	return cfg->limits.smtp_text_line_max;
}

static uint64_t smtp_idle(const struct postern_config *cfg)
{
	return cfg->submitd.idle_timeout;
}

static const struct fuzz_proto smtp_proto = {
	.name = "smtp",
	.check = OUT_SMTP,
	.kind = smtp_kind,
	.configure = smtp_configure,
	.set_globals = smtp_globals,
	.line_max = smtp_line_max,
	.data_line_max = smtp_data_line_max,
	.idle_ms = smtp_idle,
	.accept = smtp_session_accept,
	.after = smtp_after,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_session_run(&smtp_proto, data, size);
	return 0;
}
