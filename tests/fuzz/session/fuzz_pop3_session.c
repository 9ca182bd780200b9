/* Fuzz target: a whole POP3 connection (pop3d/ minus main.c) over fake_io,
 * with the real store, auth pool and post queue (see fuzz_session.h for the
 * input format). Header byte 0: bits 0-1 the listener (0 and 3: 995
 * implicit TLS; 1 and 2: 110 plain, STLS), bit 4 nul_to_0x80, bit 5
 * add_missing_blank_line. Checks: out_check.h (POP3), and through the
 * driver no fails_assert, no hang, on_close exactly once, no leak. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "pop3d/pop3_session.h"
#include "tests/fuzz/session/fuzz_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int pop3_kind(unsigned b0, bool *is_unix)
{
	*is_unix = false;
	return (b0 & 3) == 1 || (b0 & 3) == 2 ? POP3_LISTEN_PLAIN
					       : POP3_LISTEN_TLS;
}

static void pop3_configure(struct postern_config *cfg, unsigned b0)
{
	cfg->pop3d.nul_to_0x80 = b0 & 16;
	cfg->pop3d.add_missing_blank_line = b0 & 32;
}

static void pop3_globals(const struct postern_config *cfg, struct store *st,
			 struct auth_pool *pool)
{
	pop3d.store = st;
	pop3d.pool = pool;
	pop3d.auth = NULL;   /* the session code uses the pool only */
}

static uint64_t pop3_line_max(const struct postern_config *cfg)
{
	return cfg->limits.pop3_line_max;
}

static uint64_t pop3_data_line_max(const struct postern_config *cfg)
{
	return 0;
}

static uint64_t pop3_idle(const struct postern_config *cfg)
{
	return cfg->pop3d.idle_timeout;
}

/* The steps of pop3_cmd_dispatch() before a command runs: a "+OK" starts
 * a multi-line body for CAPA, TOP, RETR, and LIST, UIDL and AUTH without
 * an argument; a SASL continuation line is never a command. */
static void pop3_classify(struct io_conn *c, uint64_t line_max,
			  const char *line, size_t len, bool *multi, bool *retr)
{
	const struct pop3_session *s = fake_io_sess(c);
	size_t vlen;
	const char *args;

	*multi = *retr = false;
	if (!s || (s->flags & POP3_F_REFUSED) || memchr(line, '\0', len) ||
	    s->sasl.mech != SASL_NONE || len + 2 > line_max)
		return;
	vlen = strcspn(line, " ");
	args = line + vlen;
	if (*args == ' ')
		args++;
#define VERB(v) (vlen == strlen(v) && strncasecmp(line, v, vlen) == 0)
	if (VERB("CAPA") || VERB("TOP"))
		*multi = true;
	else if (VERB("RETR"))
		*multi = *retr = true;
	else if (VERB("LIST") || VERB("UIDL") || VERB("AUTH"))
		*multi = !*args;
#undef VERB
}

static const struct fuzz_proto pop3_proto = {
	.name = "pop3",
	.check = OUT_POP3,
	.kind = pop3_kind,
	.configure = pop3_configure,
	.set_globals = pop3_globals,
	.line_max = pop3_line_max,
	.data_line_max = pop3_data_line_max,
	.idle_ms = pop3_idle,
	.accept = pop3_session_accept,
	.classify = pop3_classify,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_session_run(&pop3_proto, data, size);
	return 0;
}
