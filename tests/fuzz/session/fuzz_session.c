/* fuzz_session.c — see fuzz_session.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/auth/auth_async.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/sasl.h"
#include "tests/fuzz/session/fuzz_session.h"

#define WATCHDOG_MS 15000         /* a settled session answers in ms */

static struct {
	bool ready;
	uv_loop_t loop;
	struct io_worker w;
	uv_timer_t watchdog;
	bool dog_bit;
	struct postern_config cfg;
	char dir[64], store_dir[96], data_file[128], lock_file[128];
	char *pristine;           /* data.mdb as populated */
	size_t pristine_len;
	struct store *st;
	uint64_t st_jobs;         /* writer jobs when (re)opened */
	struct auth_ctx *auth;
	struct auth_pool *pool;
	bool auth_used;
	bool trace;               /* POSTERN_FUZZ_TRACE: the dialogue to stderr */
} fz;

/* ---- fails_assert() aborts (the link has --wrap=pst__assert_failed) ---- */

bool __real_pst__assert_failed(const char *cond, const char *file, int line);
bool __wrap_pst__assert_failed(const char *cond, const char *file, int line);

bool __wrap_pst__assert_failed(const char *cond, const char *file, int line)
{
	__real_pst__assert_failed(cond, file, line);
	fprintf(stderr, "fuzz: fails_assert(%s) at %s:%d\n", cond, file, line);
	abort();
}

/* A login made the auth state (throttle counts, cache) input-dependent. */
int __real_auth_async_start(struct auth_pool *pool, struct io_conn *c,
			    const char *user, const char *pass, size_t passlen,
			    auth_async_done done);
int __wrap_auth_async_start(struct auth_pool *pool, struct io_conn *c,
			    const char *user, const char *pass, size_t passlen,
			    auth_async_done done);

int __wrap_auth_async_start(struct auth_pool *pool, struct io_conn *c,
			    const char *user, const char *pass, size_t passlen,
			    auth_async_done done)
{
	fz.auth_used = true;
	return __real_auth_async_start(pool, c, user, pass, passlen, done);
}

/* ---- per-process state ---- */

static void fz_cleanup(void)
{
	if (fz.pool)
		auth_pool_free(fz.pool);
	auth_ctx_free(fz.auth);
	store_close(fz.st);
	fz.pool = NULL;
	fz.auth = NULL;
	fz.st = NULL;
	unlink(fz.data_file);
	unlink(fz.lock_file);
	rmdir(fz.store_dir);
	rmdir(fz.dir);
	free(fz.pristine);
	fz.pristine = NULL;
}

static void fz_die(const char *what, int e)
{
	fprintf(stderr, "fuzz setup: %s: %s\n", what, strerror(e < 0 ? -e : e));
	abort();
}

static void fz_open_store(void)
{
	char why[256];
	uint64_t b;
	int e;

	e = store_open(fz.store_dir, fz.cfg.store.map_size, STORE_CREATE, &fz.st,
		       why, sizeof(why));
	if (e) {
		fprintf(stderr, "fuzz setup: %s\n", why);
		abort();
	}
	if ((e = store_writer_start(fz.st)))
		fz_die("store writer", e);
	store_writer_stats(fz.st, &b, &fz.st_jobs);
}

static void fz_auth_new(void)
{
	int e;

	if ((e = auth_ctx_new(&fz.cfg, fz.st, &fz.auth)) ||
	    (e = auth_pool_new(fz.auth, (unsigned)fz.cfg.auth.workers,
			       (unsigned)fz.cfg.auth.queue_max, &fz.pool)))
		fz_die("auth", e);
	fz.auth_used = false;
}

static void fz_auth_free(void)
{
	auth_pool_free(fz.pool);   /* no job is left: sessions settled */
	auth_ctx_free(fz.auth);
	fz.pool = NULL;
	fz.auth = NULL;
}

static void fz_write_file(const char *path, const char *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		fz_die(path, errno);
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			fz_die(path, errno);
		p += w;
		n -= (size_t)w;
	}
	close(fd);
}

static void fz_read_pristine(void)
{
	struct stat sb;
	int fd = open(fz.data_file, O_RDONLY);

	if (fd < 0 || fstat(fd, &sb))
		fz_die(fz.data_file, errno);
	fz.pristine_len = (size_t)sb.st_size;
	fz.pristine = malloc(fz.pristine_len);
	if (!fz.pristine ||
	    read(fd, fz.pristine, fz.pristine_len) != (ssize_t)fz.pristine_len)
		fz_die("reading the store", EIO);
	close(fd);
}

static void fz_count_busy(uv_handle_t *h, void *arg)
{
	/* Anything but the post queue's async and the watchdog: an auth
	 * delay timer, a connection's handle on its way to being closed. */
	if (h != (uv_handle_t *)&fz.w.post_async &&
	    h != (uv_handle_t *)&fz.watchdog &&
	    (uv_is_active(h) || uv_is_closing(h)))
		(*(unsigned *)arg)++;
}

static void fz_dog(uv_timer_t *t)
{
	fz.dog_bit = true;
}

/* Run the loop until nothing is left for it: results posted to sessions
 * that are gone are delivered (and freed), auth delay timers run out. */
static void fz_quiesce(void)
{
	fz.dog_bit = false;
	uv_timer_start(&fz.watchdog, fz_dog, WATCHDOG_MS, 0);
	for (;;) {
		unsigned busy = 0;
		bool posts;

		uv_run(&fz.loop, UV_RUN_NOWAIT);
		pthread_mutex_lock(&fz.w.post_mu);
		posts = fz.w.posts != NULL;
		pthread_mutex_unlock(&fz.w.post_mu);
		uv_walk(&fz.loop, fz_count_busy, &busy);
		if (!busy && !posts)
			break;
		if (fz.dog_bit) {
			fprintf(stderr, "fuzz: the loop does not settle after the "
				"session (%u handles busy)\n", busy);
			abort();
		}
		uv_run(&fz.loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&fz.watchdog);
}

static int fz_barrier(struct store_write *w, void *arg)
{
	return 0;
}

/* Back to the state every input starts from. */
static void fz_reset(void)
{
	bool auth = fz.auth_used;
	uint64_t b, jobs;

	/* Joined: every login has finished, results are posted. */
	if (auth)
		fz_auth_free();
	/* Writes still queued land now, in this input, not the next one: a
	 * login's write that nothing waits for (an app password's last use),
	 * a delivery or QUIT's update whose session went away (a deadline
	 * while it waited). A synchronous no-op comes back after them, the
	 * writer running jobs in order. */
	store_write(fz.st, fz_barrier, NULL);
	fz.st_jobs++;
	fz_quiesce();
	store_writer_stats(fz.st, &b, &jobs);
	if (jobs != fz.st_jobs) {
		if (!auth)
			fz_auth_free();
		store_close(fz.st);   /* runs what is queued first */
		fz.st = NULL;
		fz_quiesce();         /* their answers, to no session */
		fz_write_file(fz.data_file, fz.pristine, fz.pristine_len);
		fz_open_store();
		fz_auth_new();
	} else if (auth) {
		fz_auth_new();
	}
}

static void fz_config(void)
{
	struct postern_config *c = &fz.cfg;

	cfg_defaults(c);
	snprintf(c->store.path, sizeof(c->store.path), "%s", fz.store_dir);
	c->store.map_size = 64ULL << 20;
	/* The cheapest argon2 the config table allows: logins in ms. */
	c->auth.argon2_memory = 8;
	c->auth.argon2_time = 1;
	c->auth.argon2_lanes = 1;
	/* Throttling reachable inside one session, its delay (a uv timer in
	 * auth_async.c) real but short. */
	c->auth.throttle_delay = 1;
	c->auth.throttle_delay_max = 2;
	c->auth.throttle_address_failures = 3;
	c->auth.throttle_account_failures = 2;
	c->auth.workers = 1;
	c->auth.queue_max = 4;
	/* Limits low enough for short inputs to reach them. */
	/* Over the line buffer (4096: SASL_LINE_MAX), or every over-long line
	 * would close the connection at once (reported: linebuf.c counts the
	 * buffer's own octets as discarded). */
	c->limits.line_discard_max = 8192;
	c->limits.output_buffer_max = 16 * 1024;
	c->limits.message_max = 8192;
	c->limits.data_memory_max = 1 << 20;   /* the least the table allows */
	c->limits.smtp_text_line_max = 256;
	c->limits.recipients_max = 4;
	/* Counted per process: they must never depend on earlier inputs. */
	c->limits.send_messages_per_hour = 1000000;
	c->limits.send_recipients_per_day = 10000000;
	c->pop3d.login_delay = 0;
	snprintf(c->submitd.hostname, sizeof(c->submitd.hostname), "%s",
		 "mx.example.test");
}

static void fz_init(void)
{
	struct auth_params params;
	const char *lvl = getenv("POSTERN_FUZZ_LOG");
	enum log_level l = LOGL_ERR;
	int e;

	if (!lvl) {
		/* Quiet by default: an administrator's deletion makes errors
		 * (retr_failed, store_failed) that are the expected outcome. */
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0)
			log_set_fd(fd);
	} else if (log_level_parse(lvl, &l)) {
		l = LOGL_DEBUG;
	}
	fz.trace = getenv("POSTERN_FUZZ_TRACE");
	log_set_level(l);
	/* The pid in the name lets tests/fuzz/run-long remove what a crashed
	 * run left behind (a crash skips atexit). */
	snprintf(fz.dir, sizeof(fz.dir), "/dev/shm/postern-fuzz-%d-XXXXXX",
		 (int)getpid());
	if (!mkdtemp(fz.dir)) {
		/* No /dev/shm (a container without it): any temp dir works. */
		snprintf(fz.dir, sizeof(fz.dir), "/tmp/postern-fuzz-%d-XXXXXX",
			 (int)getpid());
		if (!mkdtemp(fz.dir))
			fz_die("mkdtemp", errno);
	}
	snprintf(fz.store_dir, sizeof(fz.store_dir), "%s/store", fz.dir);
	snprintf(fz.data_file, sizeof(fz.data_file), "%s/data.mdb",
		 fz.store_dir);
	snprintf(fz.lock_file, sizeof(fz.lock_file), "%s/lock.mdb",
		 fz.store_dir);
	fz_config();
	atexit(fz_cleanup);

	if ((e = uv_loop_init(&fz.loop)) ||
	    (e = io_worker_init(&fz.w, &fz.loop, 0)))
		fz_die("uv loop", e);
	uv_timer_init(&fz.loop, &fz.watchdog);

	/* Populate without the writer thread, keep a copy, reopen. */
	{
		char why[256];
		struct store *st;

		e = store_open(fz.store_dir, fz.cfg.store.map_size,
			       STORE_CREATE, &st, why, sizeof(why));
		if (e) {
			fprintf(stderr, "fuzz setup: %s\n", why);
			abort();
		}
		auth_params_from_config(&fz.cfg, &params);
		if ((e = fuzz_store_populate(st, &params)))
			fz_die("populating the store", e);
		store_close(st);
	}
	fz_read_pristine();
	fz_open_store();
	fz_auth_new();
	fz.ready = true;
}

/* ---- one connection ---- */

struct drive {
	const struct fuzz_proto *p;
	struct io_conn *c;
	struct out_check k;
	bool gone;
	uint64_t jump;            /* then the clock jumps this far (0: EOF) */
	unsigned early;           /* ... at this wait for a result (1, 2) */
};

static void dr_trace(const char *dir, const char *p, size_t n)
{
	if (n > 2000) {
		fprintf(stderr, "%s[%zu octets]\n", dir, n);
		return;
	}
	fprintf(stderr, "%s", dir);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\n')
			fprintf(stderr, "\\n\n%s", i + 1 < n ? dir : "");
		else if (c >= 0x20 && c < 0x7f)
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	if (n && p[n - 1] != '\n')
		fputc('\n', stderr);
}

static void dr_output(void *arg, const char *p, size_t n)
{
	if (fz.trace)
		dr_trace("S: ", p, n);
	out_check_bytes(&((struct drive *)arg)->k, p, n);
}

static void dr_gone(void *arg)
{
	struct drive *d = arg;

	d->gone = true;
	out_check_end(&d->k);
}

static void dr_event(void *arg, struct io_conn *c, enum fake_io_event ev,
		     const char *line, size_t len)
{
	struct drive *d = arg;
	bool multi = false, retr = false;
	char desc[80];

	switch (ev) {
	case FAKE_EV_LINE: {
		size_t o = 0;

		o += (size_t)snprintf(desc, sizeof(desc), "line \"");
		for (size_t i = 0; i < len && o + 8 < sizeof(desc); i++) {
			unsigned char ch = (unsigned char)line[i];

			o += (size_t)snprintf(desc + o, sizeof(desc) - o,
					      ch >= 0x20 && ch < 0x7f ? "%c"
					      : "\\x%02x", ch);
		}
		snprintf(desc + o, sizeof(desc) - o, "\"");
		if (d->p->classify)
			d->p->classify(c, d->k.pop3_line_max, line, len,
				       &multi, &retr);
		break;
	}
	case FAKE_EV_TOO_LONG:
		snprintf(desc, sizeof(desc), "%s", "line too long");
		break;
	case FAKE_EV_TLS_READY:
		snprintf(desc, sizeof(desc), "%s", "TLS ready");
		break;
	case FAKE_EV_TIMEOUT:
		out_check_timeout(&d->k);
		return;
	}
	out_check_event(&d->k, desc, multi, retr);
}

/* ---- what an administrator does meanwhile (the CLI, another process) ---- */

static const char *const adm_accounts[] = {
	"ann@example.com", "bob@example.com", "carol@example.com",
	"dave@example.com", "erin@nopop.example", "frank@example.com",
	"gina@example.com",
};

static int adm_del_msg(struct store_write *w, void *arg)
{
	unsigned a = *(const uint8_t *)arg;

	/* Account ids are 1.. in fuzz_store.c's order; uids 1.. per account. */
	return store_msg_del(w, 1 + (a >> 5), 1 + (a & 31));
}

static int adm_del_account(struct store_write *w, void *arg)
{
	unsigned a = *(const uint8_t *)arg;

	return store_account_del(w, adm_accounts[a % (sizeof(adm_accounts) /
						      sizeof(*adm_accounts))]);
}

/* A control record "\xff\xfe" OP ARG in the client's stream. */
static bool dr_is_ctl(const char *p, size_t n)
{
	return n >= 2 && (unsigned char)p[0] == 0xff &&
	       (unsigned char)p[1] == 0xfe;
}

static size_t dr_ctl(struct drive *d, const char *p, size_t n)
{
	uint8_t op = n > 2 ? (uint8_t)p[2] : 0, arg = n > 3 ? (uint8_t)p[3] : 0;

	if (fz.trace)
		fprintf(stderr, "A: %c %u\n", op >= 0x20 && op < 0x7f ? op : '?',
			arg);
	/* Errors (nothing to delete) are what an administrator sees too. A
	 * RETR may now fail half-way, by design. */
	if (op == 'D') {
		store_write(fz.st, adm_del_msg, &arg);
		d->k.cut_ok = true;
	} else if (op == 'A') {
		store_write(fz.st, adm_del_account, &arg);
		d->k.cut_ok = true;
	}
	return n < 4 ? n : 4;
}

/* Run the loop until the session wants the next read or is gone: async
 * results (auth pool, store writer) arrive, a slow client reads. */
static void dr_settle(struct drive *d)
{
	bool was_paused = false;

	fz.dog_bit = false;
	uv_timer_start(&fz.watchdog, fz_dog, WATCHDOG_MS, 0);
	while (!d->gone) {
		if (!io_conn_closing(d->c)) {
			bool paused = fake_io_paused(d->c);

			if (fake_io_wants_input(d->c))
				break;
			if (paused && !was_paused && d->early &&
			    --d->early == 0 && d->jump) {
				/* A deadline passes while the session waits
				 * for a result: it goes, the result comes
				 * later to no one. */
				fake_io_fire_timer(d->c, d->jump);
				d->jump = 0;
				continue;
			}
			was_paused = paused;
			if (fake_io_waits_drain(d->c)) {
				fake_io_client_read(d->c);
				continue;
			}
		}
		if (fz.dog_bit) {
			fprintf(stderr, "fuzz: session stuck for %d ms (%s)\n",
				WATCHDOG_MS, fake_io_paused(d->c)
				? "paused, nothing pending resumes it"
				: "not reading");
			abort();
		}
		uv_run(&fz.loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&fz.watchdog);
}

static const size_t read_caps[16] = { 0, 1, 2, 3, 5, 7, 11, 16, 32, 64, 100,
				       256, 512, 1000, 1500, 4096 };

void fuzz_session_run(const struct fuzz_proto *p, const uint8_t *data,
		      size_t size)
{
	unsigned b0 = size > 0 ? data[0] : 0, b1 = size > 1 ? data[1] : 0;
	unsigned b2 = size > 2 ? data[2] : 0, verdict_bits = (b2 >> 2) & 7;
	static const uint64_t jumps[4] = { 0, 31000, 61000, 11 * 60000 };
	struct fake_io_peer peer = { .loopback = b0 & 4, .slow = b1 & 32 };
	enum conn_verdict v = verdict_bits == 6 ? CONN_OVER_TOTAL
			      : verdict_bits == 7 ? CONN_OVER_PER_ADDR : CONN_OK;
	const char *in = (const char *)data + (size > FUZZ_HDR ? FUZZ_HDR : size);
	size_t left = size > FUZZ_HDR ? size - FUZZ_HDR : 0;
	size_t cap = read_caps[b1 & 15];
	struct drive d = { .p = p, .jump = jumps[b2 & 3],
			   .early = b2 & 32 ? 1 + (b2 >> 7) : 0 };
	struct fake_io_hooks hooks = { &d, dr_event, dr_output, dr_gone };
	struct io_limits lim;
	int kind;

	if (!fz.ready)
		fz_init();
	fz.cfg.pop3d.plain_auth_loopback = b0 & 8;
	fz.cfg.submitd.plain_auth_loopback = b0 & 8;
	p->configure(&fz.cfg, b0);
	p->set_globals(&fz.cfg, fz.st, fz.pool);
	kind = p->kind(b0, &peer.is_unix);
	/* server_io_limits() (server.c, not linked: it would bring the real
	 * io_conn.c), for this protocol. */
	lim = (struct io_limits){
		.line_max = p->line_max(&fz.cfg) > SASL_LINE_MAX
			    ? p->line_max(&fz.cfg) : SASL_LINE_MAX,
		.data_line_max = p->data_line_max(&fz.cfg),
		.discard_max = fz.cfg.limits.line_discard_max,
		.output_max = fz.cfg.limits.output_buffer_max,
		.idle_ms = p->idle_ms(&fz.cfg),
		.login_ms = fz.cfg.limits.login_timeout,
		.line_ms = fz.cfg.limits.line_timeout,
		.handshake_ms = fz.cfg.tls.handshake_timeout,
	};
	out_check_init(&d.k, p->check, fz.cfg.limits.pop3_line_max);
	d.c = fake_io_new(&fz.w, &lim, &peer, &hooks);
	p->accept(d.c, kind, v, &fz.cfg);
	dr_settle(&d);

	while (left && !d.gone && fake_io_wants_input(d.c)) {
		size_t n = cap && cap < left ? cap : left;
		const char *ctl;

		if (dr_is_ctl(in, left)) {
			n = dr_ctl(&d, in, left);
			in += n;
			left -= n;
			continue;
		}
		if (b1 & 16) {
			const char *lf = memchr(in, '\n', n);

			if (lf)
				n = (size_t)(lf - in) + 1;
		}
		if ((ctl = memmem(in + 1, n - 1, "\xff\xfe", 2)))
			n = (size_t)(ctl - in);   /* a read ends before it */
		if (fz.trace)
			dr_trace("C: ", in, n);
		fake_io_read(d.c, in, n);
		in += n;
		left -= n;
		/* Right after the read: the session may be half-way through a
		 * RETR, waiting for the client to read. */
		while (!d.gone && dr_is_ctl(in, left)) {
			n = dr_ctl(&d, in, left);
			in += n;
			left -= n;
		}
		dr_settle(&d);
	}
	if (!d.gone && !io_conn_closing(d.c)) {
		if (!d.jump || !fake_io_fire_timer(d.c, d.jump))
			fake_io_eof(d.c);
	}
	dr_settle(&d);
	REQUIRE(d.gone && fake_io_live() == 0);
	fz_reset();
	if (p->after)
		p->after();
}
