/* postern-bench — a load generator for POP3 and SMTP-submission servers.
 *
 * One process, one thread, non-blocking sockets on epoll, GnuTLS for the
 * client side of TLS. It drives one scenario against one server with a
 * fixed number of connections in flight (a closed loop), and reports as one
 * JSON object on stdout: operations/s, latency p50/p90/p99, and the CPU
 * time the server's processes spent per operation, read from
 * /proc/PID/stat of every process under the given PIDs (utime + stime +
 * cutime + cstime, so that processes forked and reaped during the run count
 * too). For idle sessions it reports the proportional set size (PSS, from
 * /proc/PID/smaps_rollup) the server grew by per session.
 *
 * The measured window is quiet at both ends: no operation is in flight when
 * it starts, and it ends when the last operation started in it has
 * finished (and, with --sink-count, when the relay sink has received every
 * message accepted), so the CPU read covers exactly the counted operations.
 *
 *   postern-bench run --scenario NAME --port N [options]
 *   postern-bench sink --port N --count-file F [--fsync DIR]
 *   postern-bench hash PASSWORD [M_KIB T P]
 *
 * Everything it talks to is on loopback (the host is refused otherwise).
 * Every wait is bounded: --timeout per operation and per quiet period.
 * See tests/bench/README.md. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <argon2.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, ...)
{
	va_list ap;

	va_start(ap, what);
	fputs("postern-bench: ", stderr);
	vfprintf(stderr, what, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static void b64(const char *in, size_t n, char *out)
{
	static const char t[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)(uint8_t)in[i] << 16 |
			     (uint32_t)(uint8_t)in[i + 1] << 8 | (uint8_t)in[i + 2];
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
		out[o++] = t[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)(uint8_t)in[i] << 16;
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)(uint8_t)in[i] << 16 |
			     (uint32_t)(uint8_t)in[i + 1] << 8;
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

/* ---- the server's processes: CPU time and memory ---- */

struct procinfo {
	int pid, ppid;
	unsigned long long ticks;   /* utime + stime + cutime + cstime */
};

static int read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

static int read_stat(int pid, struct procinfo *pi)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st, cut, cst;
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime */
	if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
		   "%llu %llu", &ppid, &ut, &st, &cut, &cst) != 5)
		return -1;
	pi->pid = pid;
	pi->ppid = ppid;
	pi->ticks = ut + st + cut + cst;
	return 0;
}

/* Every process under (and including) the roots. */
static int proc_tree(const int *roots, int nroots, int **out)
{
	struct procinfo *all = NULL;
	int nall = 0, call = 0, *tree, nt = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		die("/proc: %s", strerror(errno));
	while ((e = readdir(d))) {
		struct procinfo pi;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		if (read_stat(atoi(e->d_name), &pi))
			continue;
		if (nall == call) {
			call = call ? call * 2 : 1024;
			all = xrealloc(all, sizeof(*all) * (size_t)call);
		}
		all[nall++] = pi;
	}
	closedir(d);
	tree = xmalloc(sizeof(int) * (size_t)(nall + nroots));
	for (int i = 0; i < nroots; i++)
		tree[nt++] = roots[i];
	/* breadth first: a child's parent is already in the list */
	for (int i = 0; i < nt; i++)
		for (int j = 0; j < nall; j++)
			if (all[j].ppid == tree[i] && all[j].pid != tree[i]) {
				bool seen = false;

				for (int k = 0; k < nt && !seen; k++)
					seen = tree[k] == all[j].pid;
				if (!seen)
					tree[nt++] = all[j].pid;
			}
	free(all);
	*out = tree;
	return nt;
}

static double tree_cpu_s(const int *roots, int nroots)
{
	int *tree, n = proc_tree(roots, nroots, &tree);
	unsigned long long t = 0;

	for (int i = 0; i < n; i++) {
		struct procinfo pi;

		if (read_stat(tree[i], &pi) == 0)
			t += pi.ticks;
	}
	free(tree);
	return (double)t / (double)sysconf(_SC_CLK_TCK);
}

/* PSS and RSS of the tree in KiB; the number of processes in *nproc. */
static void tree_mem_kib(const int *roots, int nroots, long long *pss,
			 long long *rss, int *nproc)
{
	int *tree, n = proc_tree(roots, nroots, &tree);
	static char buf[8192];

	*pss = *rss = 0;
	for (int i = 0; i < n; i++) {
		char path[64], *p;

		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", tree[i]);
		if (read_small(path, buf, sizeof(buf)) < 0)
			continue;
		if ((p = strstr(buf, "\nRss:")))
			*rss += atoll(p + 5);
		if ((p = strstr(buf, "\nPss:")))
			*pss += atoll(p + 5);
	}
	*nproc = n;
	free(tree);
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- scenarios ---- */

enum proto { P_POP3, P_SMTP };
enum kind {
	K_SESSION,    /* login, STAT, UIDL, RETR all, QUIT */
	K_HANDSHAKE,  /* TLS (full or resumed), greeting, QUIT */
	K_COLD,       /* TLS, login to an account not logged in before, QUIT */
	K_RETR,       /* logged-in sessions; one op = RETR 1 */
	K_IDLE,       /* sessions held after login */
	K_BOX,        /* login, STAT, UIDL, QUIT (a big mailbox) */
	K_BOXDEL,     /* the same with DELE of every listed message */
	K_SUBMIT,     /* EHLO, AUTH, MAIL, RCPT, DATA, QUIT */
};

struct scenario {
	const char *name;
	enum proto proto;
	enum kind kind;
	bool implicit_tls;  /* else STLS / STARTTLS first */
	bool resume;        /* TLS session resumption */
	bool pipelining;
	const char *what;
};

static const struct scenario scenarios[] = {
	{ "pop3s-session", P_POP3, K_SESSION, true, false, false,
	  "POP3S: TLS, USER/PASS, STAT, UIDL, RETR all, QUIT" },
	{ "pop3-stls-session", P_POP3, K_SESSION, false, false, false,
	  "POP3: CAPA, STLS, AUTH PLAIN, STAT, UIDL, RETR all, QUIT" },
	{ "pop3s-handshake", P_POP3, K_HANDSHAKE, true, false, false,
	  "POP3S: full TLS handshake, greeting, QUIT" },
	{ "pop3s-resume", P_POP3, K_HANDSHAKE, true, true, false,
	  "POP3S: resumed TLS handshake (ticket), greeting, QUIT" },
	{ "pop3s-retr-5mb", P_POP3, K_RETR, true, false, false,
	  "POP3S: RETR of a 5 MB message in a logged-in session" },
	{ "pop3s-cold-login", P_POP3, K_COLD, true, false, false,
	  "POP3S: TLS, USER/PASS of an account not logged in before, QUIT" },
	{ "pop3s-idle", P_POP3, K_IDLE, true, false, false,
	  "POP3S: sessions held after login" },
	{ "pop3s-idle-tls", P_POP3, K_IDLE, true, false, false,
	  "POP3S: sessions held after the TLS handshake and greeting, before "
	  "login" },
	{ "pop3s-bigbox", P_POP3, K_BOX, true, false, false,
	  "POP3S: USER/PASS, STAT, UIDL, QUIT on a big mailbox" },
	{ "pop3s-bigbox-dele", P_POP3, K_BOXDEL, true, false, false,
	  "POP3S: USER/PASS, STAT, UIDL, DELE all listed, QUIT (UPDATE) on a "
	  "big mailbox" },
	{ "smtps-submit", P_SMTP, K_SUBMIT, true, false, false,
	  "SMTPS: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT, one at a time" },
	{ "smtps-submit-pipe", P_SMTP, K_SUBMIT, true, false, true,
	  "SMTPS: as smtps-submit, MAIL/RCPT/DATA and ./QUIT pipelined" },
	{ "starttls-submit", P_SMTP, K_SUBMIT, false, false, false,
	  "587: EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT" },
	{ "starttls-submit-pipe", P_SMTP, K_SUBMIT, false, false, true,
	  "587: as starttls-submit, MAIL/RCPT/DATA and ./QUIT pipelined" },
	{ "smtps-idle", P_SMTP, K_IDLE, true, false, false,
	  "SMTPS: sessions held after EHLO and AUTH" },
};

/* ---- options ---- */

static struct {
	const struct scenario *sc;
	const char *host, *priority, *password, *prefix, *domain, *rcpt,
		*sink_count, *server_name;
	int port, conc, first, count, idle, idle_warm;
	double duration, warmup, timeout, hold, drain;
	long max_ops;
	size_t msg_size;
	int pids[16], npids, aux[16], naux;
	bool verbose;
} opt = {
	.host = "127.0.0.1",
	/* one cipher and one group, so every server negotiates the same */
	.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM:"
		    "-GROUP-ALL:+GROUP-X25519",
	.password = "Bench-pw-1",
	.prefix = "s",
	.domain = "bench.test",
	.rcpt = "sink@relay.test",
	.server_name = "localhost",
	.conc = 8,
	.count = 0,
	.idle = 1000,
	.idle_warm = 20,
	.duration = 10,
	.warmup = 2,
	.timeout = 60,
	.hold = 2,
	.drain = 300,
	.msg_size = 20480,
};

/* ---- connections ---- */

enum st {
	S_CONNECTING, S_HANDSHAKE,
	/* POP3 */
	S_GREET, S_CAPA, S_CAPA_LIST, S_STLS, S_USER, S_PASS, S_STAT,
	S_UIDL, S_UIDL_LIST, S_RETR, S_RETR_BODY, S_DELE, S_QUIT, S_EOF,
	S_READY,
	/* SMTP */
	S_SGREET, S_EHLO, S_STARTTLS, S_EHLO2, S_AUTH, S_MAIL, S_RCPT, S_DATA,
	S_PIPE3, S_DOT, S_PIPE_DOT, S_SQUIT,
};

struct conn {
	int fd, slot;
	gnutls_session_t tls;
	enum st st;
	bool tls_up, want_out, in_op, counted, dead, closed;
	int idx;          /* in the list of open connections */
	size_t rest;      /* octets buffered after the line being handled */
	uint32_t events;
	char *rb;
	size_t rl, rc;
	char *wb;
	size_t wl, wo, wc;
	double t_op, deadline;
	int acct;
	long n_msgs, retr_i, replies;
	long long stat_size, body_bytes, retr_bytes;
	char reply[8];   /* first line's code of a multi-line SMTP reply */
};

static int ep;
static gnutls_certificate_credentials_t xcred;
static gnutls_priority_t prio;
static struct conn **slots;          /* [conc] for closed loops */
static gnutls_datum_t *tickets;       /* per slot, for resumption */
static char *message;                 /* SMTP DATA text, dot-stuffed, ends CRLF.CRLF */
static size_t message_len;

enum phase { PH_SETUP, PH_WARM, PH_QUIET1, PH_MEASURE, PH_QUIET2, PH_DONE };
static enum phase phase;
static double t_phase, t0, t1, cpu0, cpu1, aux0, aux1, gen0, gen1;
static long inflight, ops, errors, accepted_total;
static long resumed, handshakes, cold_next, logged_in, in_use;
static double t_last_done;
static long long bytes_body;
static uint64_t sink_base;
static double *lat;
static size_t nlat, caplat;
static char tls_desc[160];
static bool exhausted;
static int *seq;                      /* per slot op count, picks accounts */

static void conn_close(struct conn *c);
static void op_done(struct conn *c);
static void conn_fail(struct conn *c, const char *fmt, ...);
static void slot_start(int slot);
static void retr_start(struct conn *c);
static void on_line(struct conn *c, char *line, size_t len);

static void set_events(struct conn *c)
{
	uint32_t ev = EPOLLIN;
	struct epoll_event e;

	if (c->st == S_CONNECTING || c->want_out)
		ev |= EPOLLOUT;
	if (ev == c->events)
		return;
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e))
		die("epoll_ctl: %s", strerror(errno));
	c->events = ev;
}

static void account(int idx, char *out, size_t cap)
{
	snprintf(out, cap, "%s%05d@%s", opt.prefix, idx, opt.domain);
}

static void flush(struct conn *c)
{
	while (c->wo < c->wl) {
		size_t n = c->wl - c->wo;
		ssize_t r;

		if (n > 16384)
			n = 16384;
		if (c->tls) {
			r = gnutls_record_send(c->tls, c->wb + c->wo, n);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				c->want_out = gnutls_record_get_direction(c->tls) == 1;
				set_events(c);
				if (!c->want_out)
					continue;   /* gnutls wants a read: retry later */
				return;
			}
			if (r < 0) {
				conn_fail(c, "send: %s", gnutls_strerror((int)r));
				return;
			}
		} else {
			r = send(c->fd, c->wb + c->wo, n, MSG_NOSIGNAL);
			if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
				c->want_out = true;
				set_events(c);
				return;
			}
			if (r < 0) {
				conn_fail(c, "send: %s", strerror(errno));
				return;
			}
		}
		c->wo += (size_t)r;
	}
	c->wo = c->wl = 0;
	if (c->want_out) {
		c->want_out = false;
		set_events(c);
	}
}

static void put(struct conn *c, const void *data, size_t n)
{
	if (c->wl + n > c->wc) {
		c->wc = (c->wl + n) * 2;
		c->wb = xrealloc(c->wb, c->wc);
	}
	memcpy(c->wb + c->wl, data, n);
	c->wl += n;
}

static void vsendf(struct conn *c, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void vsendf(struct conn *c, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	put(c, buf, (size_t)n);
	flush(c);
}

static void sendf(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sendf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsendf(c, fmt, ap);
	va_end(ap);
}

/* Every step of every scenario's dialogue: send the next command and wait
 * for its reply in state next. */
static void ask(struct conn *c, enum st next, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void ask(struct conn *c, enum st next, const char *fmt, ...)
{
	va_list ap;

	c->st = next;
	va_start(ap, fmt);
	vsendf(c, fmt, ap);
	va_end(ap);
}

static void tls_start(struct conn *c)
{
	int r;

	if ((r = gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK)) ||
	    (r = gnutls_priority_set(c->tls, prio)) ||
	    (r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, xcred)))
		die("gnutls: %s", gnutls_strerror(r));
	gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, opt.server_name,
			       strlen(opt.server_name));
	if (opt.sc->resume && c->slot >= 0 && tickets[c->slot].size)
		gnutls_session_set_data(c->tls, tickets[c->slot].data,
					tickets[c->slot].size);
	gnutls_transport_set_int(c->tls, c->fd);
	c->st = S_HANDSHAKE;
}

static void after_tls(struct conn *c);

/* True once the handshake is done. */
static bool do_handshake(struct conn *c)
{
	int r = gnutls_handshake(c->tls);

	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
		c->want_out = gnutls_record_get_direction(c->tls) == 1;
		set_events(c);
		return false;
	}
	if (r < 0) {
		conn_fail(c, "TLS handshake: %s", gnutls_strerror(r));
		return false;
	}
	c->tls_up = true;
	handshakes++;
	if (gnutls_session_is_resumed(c->tls))
		resumed++;
	if (!tls_desc[0]) {
		char *d = gnutls_session_get_desc(c->tls);

		snprintf(tls_desc, sizeof(tls_desc), "%s", d ? d : "?");
		gnutls_free(d);
	}
	c->want_out = false;
	set_events(c);
	after_tls(c);
	return true;
}

/* ---- POP3 ---- */

static void pop3_login(struct conn *c, bool sasl)
{
	char user[128];

	account(c->acct, user, sizeof(user));
	if (sasl) {
		char raw[300], enc[420];
		size_t n = (size_t)snprintf(raw, sizeof(raw), "%c%s%c%s", 0, user,
					    0, opt.password);

		b64(raw, n, enc);
		ask(c, S_PASS, "AUTH PLAIN %s\r\n", enc);
	} else {
		ask(c, S_USER, "USER %s\r\n", user);
	}
}

/* A multi-line reply (or a run of pipelined ones) follows: count it. */
static void counting(struct conn *c, enum st st)
{
	c->st = st;
	c->replies = 0;
}

static bool ok(const char *line)
{
	return strncmp(line, "+OK", 3) == 0;
}

static void pop3_quit(struct conn *c)
{
	ask(c, S_QUIT, "QUIT\r\n");
}

static void pop3_next_retr(struct conn *c)
{
	if (c->retr_i < c->n_msgs) {
		c->retr_i++;
		ask(c, S_RETR, "RETR %ld\r\n", c->retr_i);
		return;
	}
	if (c->body_bytes != c->stat_size) {
		conn_fail(c, "RETR sent %lld octets, STAT said %lld",
			  c->body_bytes, c->stat_size);
		return;
	}
	pop3_quit(c);
}

static void pop3_line(struct conn *c, char *line, size_t len)
{
	switch (c->st) {
	case S_GREET:
		if (!ok(line))
			break;
		if (opt.sc->kind == K_IDLE && !strcmp(opt.sc->name, "pop3s-idle-tls")) {
			c->st = S_READY;
			logged_in++;
		} else if (opt.sc->kind == K_HANDSHAKE) {
			pop3_quit(c);
		} else if (!c->tls_up) {
			ask(c, S_CAPA, "CAPA\r\n");
		} else {
			pop3_login(c, !opt.sc->implicit_tls);
		}
		return;
	case S_CAPA:
		if (!ok(line))
			break;
		counting(c, S_CAPA_LIST);
		return;
	case S_CAPA_LIST:
		if (strcmp(line, ".") == 0) {
			if (!c->replies) {
				conn_fail(c, "CAPA without STLS");
				return;
			}
			ask(c, S_STLS, "STLS\r\n");
		} else if (strncasecmp(line, "STLS", 4) == 0) {
			c->replies = 1;
		}
		return;
	case S_STLS:
		if (!ok(line))
			break;
		if (c->rest) {
			conn_fail(c, "data after STLS reply");
			return;
		}
		tls_start(c);       /* conn_event drives the handshake */
		return;
	case S_USER:
		if (!ok(line))
			break;
		ask(c, S_PASS, "PASS %s\r\n", opt.password);
		return;
	case S_PASS:
		if (strncmp(line, "-ERR [IN-USE]", 13) == 0 && c->in_op) {
			/* the mailbox's previous session, ended with QUIT and
			 * closed, still holds it: counted apart, not an error */
			in_use++;
			c->in_op = false;
			inflight--;
			t_last_done = now_s();
			c->dead = true;
			return;
		}
		if (!ok(line))
			break;
		if (opt.sc->kind == K_COLD) {
			pop3_quit(c);
			return;
		}
		ask(c, S_STAT, "STAT\r\n");
		return;
	case S_STAT:
		if (!ok(line) || sscanf(line + 3, "%ld %lld", &c->n_msgs,
					&c->stat_size) != 2)
			break;
		if (opt.sc->kind == K_IDLE || opt.sc->kind == K_RETR) {
			if (opt.sc->kind == K_RETR && c->n_msgs < 1) {
				conn_fail(c, "RETR account has no message");
				return;
			}
			c->st = S_READY;
			logged_in++;
			return;
		}
		ask(c, S_UIDL, "UIDL\r\n");
		return;
	case S_UIDL:
		if (!ok(line))
			break;
		counting(c, S_UIDL_LIST);
		return;
	case S_UIDL_LIST:
		if (strcmp(line, ".") != 0) {
			c->replies++;
			return;
		}
		if (c->replies != c->n_msgs) {
			conn_fail(c, "UIDL listed %ld, STAT said %ld", c->replies,
				  c->n_msgs);
			return;
		}
		c->body_bytes = 0;
		c->retr_i = 0;
		if (opt.sc->kind == K_BOXDEL && c->n_msgs) {
			/* pipelined, as clients that delete after downloading */
			c->st = S_DELE;
			c->replies = 0;
			for (long i = 1; i <= c->n_msgs; i++)
				sendf(c, "DELE %ld\r\n", i);
		} else if (opt.sc->kind == K_BOX || opt.sc->kind == K_BOXDEL) {
			pop3_quit(c);
		} else {
			pop3_next_retr(c);
		}
		return;
	case S_DELE:
		if (!ok(line))
			break;
		if (++c->replies == c->n_msgs)
			pop3_quit(c);
		return;
	case S_RETR:
		if (!ok(line))
			break;
		c->st = S_RETR_BODY;
		c->retr_bytes = 0;
		return;
	case S_RETR_BODY:
		if (len == 1 && line[0] == '.') {
			c->body_bytes += c->retr_bytes;
			bytes_body += c->retr_bytes;
			if (opt.sc->kind == K_RETR) {
				if (c->retr_bytes != c->stat_size) {
					conn_fail(c, "RETR sent %lld octets, STAT "
						  "said %lld", c->retr_bytes,
						  c->stat_size);
					return;
				}
				c->st = S_READY;
				op_done(c);
				retr_start(c);
				return;
			}
			pop3_next_retr(c);
			return;
		}
		/* the line and its CRLF, less a stuffed dot */
		c->retr_bytes += (long long)len + 2 - (line[0] == '.');
		return;
	case S_QUIT:
		if (!ok(line))
			break;
		c->st = S_EOF;
		return;
	default:
		break;
	}
	conn_fail(c, "unexpected reply in state %d: %.80s", (int)c->st, line);
}

/* ---- SMTP ---- */

static void smtp_auth(struct conn *c)
{
	char user[128], raw[300], enc[420];
	size_t n;

	account(c->acct, user, sizeof(user));
	n = (size_t)snprintf(raw, sizeof(raw), "%c%s%c%s", 0, user, 0,
			     opt.password);
	b64(raw, n, enc);
	ask(c, S_AUTH, "AUTH PLAIN %s\r\n", enc);
}

static void smtp_mail(struct conn *c)
{
	char user[128];

	account(c->acct, user, sizeof(user));
	if (opt.sc->pipelining) {
		c->st = S_PIPE3;
		c->replies = 0;
		sendf(c, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", user,
		      opt.rcpt);
	} else {
		ask(c, S_MAIL, "MAIL FROM:<%s>\r\n", user);
	}
}

static void smtp_reply(struct conn *c, int code, const char *line)
{
	switch (c->st) {
	case S_SGREET:
		if (code != 220)
			break;
		ask(c, S_EHLO, "EHLO bench.client\r\n");
		return;
	case S_EHLO:
		if (code != 250)
			break;
		if (!c->tls_up) {
			ask(c, S_STARTTLS, "STARTTLS\r\n");
		} else {
			smtp_auth(c);
		}
		return;
	case S_STARTTLS:
		if (code != 220)
			break;
		if (c->rest) {
			conn_fail(c, "data after STARTTLS reply");
			return;
		}
		tls_start(c);
		return;
	case S_EHLO2:
		if (code != 250)
			break;
		smtp_auth(c);
		return;
	case S_AUTH:
		if (code != 235)
			break;
		if (opt.sc->kind == K_IDLE) {
			c->st = S_READY;
			logged_in++;
			return;
		}
		smtp_mail(c);
		return;
	case S_MAIL:
		if (code != 250)
			break;
		ask(c, S_RCPT, "RCPT TO:<%s>\r\n", opt.rcpt);
		return;
	case S_RCPT:
		if (code != 250 && code != 251)
			break;
		ask(c, S_DATA, "DATA\r\n");
		return;
	case S_PIPE3:
		if (++c->replies < 3) {
			if (code != 250 && code != 251)
				break;
			return;
		}
		/* the third is DATA's */
		__attribute__((fallthrough));
	case S_DATA:
		if (code != 354)
			break;
		put(c, message, message_len);
		if (opt.sc->pipelining) {
			put(c, "QUIT\r\n", 6);
			c->st = S_PIPE_DOT;
		} else {
			c->st = S_DOT;
		}
		flush(c);
		return;
	case S_DOT:
	case S_PIPE_DOT:
		if (code != 250)
			break;
		accepted_total++;
		bytes_body += (long long)message_len;
		if (c->st == S_DOT) {
			ask(c, S_SQUIT, "QUIT\r\n");
		} else {
			c->st = S_SQUIT;
		}
		return;
	case S_SQUIT:
		if (code != 221)
			break;
		c->st = S_EOF;
		return;
	default:
		break;
	}
	conn_fail(c, "unexpected reply in state %d: %.80s", (int)c->st, line);
}

static void smtp_line(struct conn *c, char *line, size_t len)
{
	int code;

	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2])) {
		conn_fail(c, "not an SMTP reply: %.80s", line);
		return;
	}
	if (len > 3 && line[3] == '-')
		return;            /* a continuation: the last line decides */
	code = atoi(line);
	smtp_reply(c, code, line);
}


static void on_line(struct conn *c, char *line, size_t len)
{
	if (opt.sc->proto == P_POP3)
		pop3_line(c, line, len);
	else
		smtp_line(c, line, len);
}

static void after_tls(struct conn *c)
{
	if (opt.sc->implicit_tls) {
		c->st = opt.sc->proto == P_POP3 ? S_GREET : S_SGREET;
	} else if (opt.sc->proto == P_POP3) {
		pop3_login(c, true);
	} else {
		ask(c, S_EHLO2, "EHLO bench.client\r\n");
	}
}

/* ---- connection life ---- */

static struct conn **open_conns;
static int nopen, capopen;
static struct conn **grave;
static int ngrave, capgrave;
static struct sockaddr_in server_addr;

static struct conn *conn_open(int slot, int acct)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event e;
	int one = 1;

	if (!c)
		die("out of memory");
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s (raise the open-file limit)", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&server_addr, sizeof(server_addr)) &&
	    errno != EINPROGRESS)
		die("connect: %s", strerror(errno));
	c->slot = slot;
	c->acct = acct;
	c->st = S_CONNECTING;
	c->events = EPOLLIN | EPOLLOUT;
	c->deadline = now_s() + opt.timeout;
	e.events = c->events;
	e.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e))
		die("epoll_ctl: %s", strerror(errno));
	if (nopen == capopen) {
		capopen = capopen ? capopen * 2 : 256;
		open_conns = xrealloc(open_conns, sizeof(*open_conns) * (size_t)capopen);
	}
	c->idx = nopen;
	open_conns[nopen++] = c;
	return c;
}

static void conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->tls)
		gnutls_deinit(c->tls);
	close(c->fd);
	open_conns[c->idx] = open_conns[--nopen];
	open_conns[c->idx]->idx = c->idx;
	if (ngrave == capgrave) {
		capgrave = capgrave ? capgrave * 2 : 64;
		grave = xrealloc(grave, sizeof(*grave) * (size_t)capgrave);
	}
	grave[ngrave++] = c;
}

static void bury(void)
{
	for (int i = 0; i < ngrave; i++) {
		free(grave[i]->rb);
		free(grave[i]->wb);
		free(grave[i]);
	}
	ngrave = 0;
}

static void op_done(struct conn *c)
{
	double t = now_s();

	if (!c->in_op)
		return;
	c->in_op = false;
	inflight--;
	t_last_done = t;
	if (!c->counted)
		return;
	ops++;
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 4096;
		lat = xrealloc(lat, sizeof(*lat) * caplat);
	}
	lat[nlat++] = t - c->t_op;
}

static int max_errors = 50;

static void conn_fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->dead)
		return;
	errors++;
	if (errors <= 10) {
		char user[128];

		account(c->acct, user, sizeof(user));
		fprintf(stderr, "postern-bench: %s %s: ", opt.sc->name, user);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	if (c->in_op) {
		c->in_op = false;
		inflight--;
		t_last_done = now_s();
	}
	c->dead = true;
}

static void save_ticket(struct conn *c)
{
	gnutls_datum_t d;

	if (!opt.sc->resume || c->slot < 0 || !c->tls)
		return;
	if (gnutls_session_get_data2(c->tls, &d) < 0)
		return;
	gnutls_free(tickets[c->slot].data);
	tickets[c->slot] = d;
}

static bool may_start(void)
{
	return (phase == PH_WARM || phase == PH_MEASURE) && !exhausted &&
	       errors < max_errors;
}

static long ops_started;

static void slot_start(int slot)
{
	struct conn *c;
	int acct;

	if (!may_start())
		return;
	if (opt.max_ops && phase == PH_MEASURE && ops_started >= opt.max_ops)
		return;
	if (opt.sc->kind == K_COLD) {
		if (cold_next >= opt.count) {
			exhausted = true;
			return;
		}
		acct = opt.first + (int)cold_next++;
	} else {
		acct = opt.first + (int)((slot + (long)opt.conc * seq[slot]++) %
					 opt.count);
	}
	c = conn_open(slot, acct);
	c->in_op = true;
	c->t_op = now_s();
	c->counted = phase == PH_MEASURE;
	ops_started += c->counted;
	inflight++;
	slots[slot] = c;
}

static void retr_start(struct conn *c)
{
	if (!may_start() || c->dead || c->st != S_READY)
		return;
	if (opt.max_ops && phase == PH_MEASURE && ops_started >= opt.max_ops)
		return;
	c->in_op = true;
	c->t_op = now_s();
	c->deadline = c->t_op + opt.timeout;
	c->counted = phase == PH_MEASURE;
	ops_started += c->counted;
	inflight++;
	ask(c, S_RETR, "RETR 1\r\n");
}

/* A connection that ended (well or not) and what comes after it. */
static void conn_finish(struct conn *c)
{
	int slot = c->slot;
	bool session = opt.sc->kind != K_RETR && opt.sc->kind != K_IDLE;

	conn_close(c);
	if (slot >= 0 && slots[slot] == c) {
		slots[slot] = NULL;
		if (session)
			slot_start(slot);
	}
}

static void conn_read(struct conn *c)
{
	for (;;) {
		ssize_t r;
		size_t off = 0;

		if (c->rc - c->rl < 65536) {
			c->rc = c->rl + 65536 * 2;
			c->rb = xrealloc(c->rb, c->rc);
		}
		if (c->tls) {
			r = gnutls_record_recv(c->tls, c->rb + c->rl, c->rc - c->rl - 1);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				return;
			if (r == GNUTLS_E_PREMATURE_TERMINATION)
				r = 0;
			if (r < 0) {
				conn_fail(c, "recv in state %d: %s", (int)c->st,
					  gnutls_strerror((int)r));
				return;
			}
		} else {
			r = recv(c->fd, c->rb + c->rl, c->rc - c->rl - 1, 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (r < 0) {
				conn_fail(c, "recv in state %d: %s", (int)c->st,
					  strerror(errno));
				return;
			}
		}
		if (r == 0) {
			if (c->st != S_EOF) {
				conn_fail(c, "closed by the server in state %d",
					  (int)c->st);
				return;
			}
			save_ticket(c);
			op_done(c);
			c->dead = true;
			return;
		}
		c->rl += (size_t)r;
		while (!c->dead) {
			char *line = c->rb + off;
			char *nl = memchr(line, '\n', c->rl - off);
			size_t len;

			if (!nl)
				break;
			len = (size_t)(nl - line);
			off += len + 1;
			if (len && line[len - 1] == '\r')
				len--;
			line[len] = '\0';
			c->rest = c->rl - off;
			on_line(c, line, len);
			if (c->st == S_HANDSHAKE)
				break;
		}
		if (c->dead)
			return;
		memmove(c->rb, c->rb + off, c->rl - off);
		c->rl -= off;
		if (c->rl > 65536 * 4) {
			conn_fail(c, "line too long");
			return;
		}
		if (c->st == S_HANDSHAKE)
			return;
	}
}

static void conn_event(struct conn *c, uint32_t ev)
{
	if (c->closed)
		return;
	if (c->st == S_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			conn_fail(c, "connect: %s", strerror(err));
		} else if (opt.sc->implicit_tls) {
			tls_start(c);
		} else {
			c->st = opt.sc->proto == P_POP3 ? S_GREET : S_SGREET;
			set_events(c);
		}
	}
	for (int round = 0; round < 4 && !c->dead; round++) {
		if (c->st == S_HANDSHAKE && !do_handshake(c))
			break;
		if (c->dead)
			break;
		if ((ev & EPOLLOUT) && c->wl)
			flush(c);
		if (c->dead)
			break;
		conn_read(c);
		if (c->st != S_HANDSHAKE)
			break;
	}
	if (c->dead)
		conn_finish(c);
}

/* ---- the run ---- */

static uint64_t sink_count(void)
{
	uint64_t v = 0;
	int fd;

	if (!opt.sink_count)
		return 0;
	fd = open(opt.sink_count, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (pread(fd, &v, sizeof(v), 0) != sizeof(v))
			v = 0;
		close(fd);
	}
	return v;
}

static bool quiet(void)
{
	if (inflight)
		return false;
	return !opt.sink_count ||
	       sink_count() - sink_base >= (uint64_t)accepted_total;
}

static void sample(double *cpu, double *aux, double *gen)
{
	*cpu = opt.npids ? tree_cpu_s(opt.pids, opt.npids) : 0;
	*aux = opt.naux ? tree_cpu_s(opt.aux, opt.naux) : 0;
	*gen = self_cpu_s();
}

static void kick(void)
{
	if (opt.sc->kind == K_RETR) {
		for (int i = 0; i < opt.conc; i++)
			if (slots[i])
				retr_start(slots[i]);
	} else {
		for (int i = 0; i < opt.conc; i++)
			if (!slots[i])
				slot_start(i);
	}
}

static void tick(double t)
{
	switch (phase) {
	case PH_SETUP:
		if (logged_in >= opt.conc) {
			phase = PH_WARM;
			t_phase = t;
			kick();
		} else if (t - t_phase > opt.timeout || errors) {
			die("%s: setup failed (%ld of %d sessions logged in)",
			    opt.sc->name, logged_in, opt.conc);
		}
		break;
	case PH_WARM:
		if (t - t_phase >= opt.warmup) {
			phase = PH_QUIET1;
			t_phase = t;
		}
		break;
	case PH_QUIET1:
		if (quiet()) {
			sample(&cpu0, &aux0, &gen0);
			t0 = now_s();
			phase = PH_MEASURE;
			exhausted = false;
			kick();
		} else if (t - t_phase > opt.drain) {
			die("%s: not quiet after %.0f s", opt.sc->name, opt.drain);
		}
		break;
	case PH_MEASURE:
		if (t - t0 >= opt.duration || errors >= max_errors ||
		    (opt.max_ops && ops_started >= opt.max_ops) ||
		    (exhausted && !inflight)) {
			phase = PH_QUIET2;
			t_phase = t;
		}
		break;
	case PH_QUIET2:
		if (quiet()) {
			sample(&cpu1, &aux1, &gen1);
			t1 = t_last_done > t0 ? t_last_done : now_s();
			phase = PH_DONE;
		} else if (t - t_phase > opt.drain) {
			fprintf(stderr, "postern-bench: %s: not quiet after %.0f s "
				"(%ld in flight, sink %llu of %ld)\n", opt.sc->name,
				opt.drain, inflight,
				(unsigned long long)(sink_count() - sink_base),
				accepted_total);
			errors++;
			sample(&cpu1, &aux1, &gen1);
			t1 = now_s();
			phase = PH_DONE;
		}
		break;
	default:
		break;
	}
}

static void check_deadlines(double t)
{
	for (int i = 0; i < nopen; i++) {
		struct conn *c = open_conns[i];

		if (!c->dead && t > c->deadline &&
		    !(c->st == S_READY && !c->in_op)) {
			conn_fail(c, "no progress for %.0f s in state %d",
				  opt.timeout, (int)c->st);
			conn_finish(c);
			i--;       /* conn_close moved another into this place */
		}
	}
}

static void loop_once(int wait_ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(ep, evs, 256, wait_ms);
	static double last_check;
	double t;

	if (n < 0 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;

		conn_event(c, evs[i].events);
	}
	t = now_s();
	if (t - last_check > 0.1) {
		check_deadlines(t);
		last_check = t;
	}
	bury();
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	size_t i;

	if (!nlat)
		return 0;
	i = (size_t)(p / 100.0 * (double)(nlat - 1) + 0.5);
	return lat[i] * 1000.0;
}

static void json_common(void)
{
	printf("\"scenario\": \"%s\", \"what\": \"%s\", \"conc\": %d, "
	       "\"errors\": %ld, \"tls\": \"%s\", \"handshakes\": %ld, "
	       "\"resumed\": %ld, \"in_use\": %ld", opt.sc->name, opt.sc->what,
	       opt.conc, errors, tls_desc, handshakes, resumed, in_use);
}

static void run_closed_loop(void)
{
	double secs, cpu, aux, gen;

	t_phase = now_s();
	sink_base = sink_count();
	if (opt.sc->kind == K_RETR) {
		phase = PH_SETUP;
		for (int i = 0; i < opt.conc; i++) {
			slots[i] = conn_open(i, opt.first + i % opt.count);
			slots[i]->deadline = now_s() + opt.timeout;
		}
	} else {
		phase = PH_WARM;
		/* a cold login's warm-up would use up fresh accounts */
		if (opt.warmup <= 0 || opt.sc->kind == K_COLD)
			phase = PH_QUIET1;
		kick();
	}
	while (phase != PH_DONE)
		loop_once(5), tick(now_s());
	/* the persistent sessions end; nothing is measured after this */
	for (int i = nopen - 1; i >= 0; i--)
		conn_close(open_conns[i]);
	bury();
	secs = t1 - t0;
	cpu = cpu1 - cpu0;
	aux = aux1 - aux0;
	gen = gen1 - gen0;
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	printf("{");
	json_common();
	printf(", \"ops\": %ld, \"seconds\": %.3f, \"ops_per_s\": %.2f, "
	       "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
	       "\"max_ms\": %.3f, \"server_cpu_s\": %.3f, \"cpu_ms_per_op\": %.4f, "
	       "\"aux_cpu_s\": %.3f, \"gen_cpu_s\": %.3f, \"gen_cpu_ms_per_op\": "
	       "%.4f, \"body_bytes\": %lld, \"accepted\": %ld}\n",
	       ops, secs, secs > 0 ? (double)ops / secs : 0, pct(50), pct(90),
	       pct(99), pct(100), cpu, ops ? cpu * 1000 / (double)ops : 0, aux, gen,
	       ops ? gen * 1000 / (double)ops : 0, bytes_body, accepted_total);
}

/* Opens sessions first+opened.. until `target` are logged in, at most
 * conc logging in at once. */
static void idle_fill(long target, long *opened)
{
	double start = now_s();

	while (logged_in < target) {
		while (*opened < target && *opened - logged_in < opt.conc &&
		       errors == 0) {
			conn_open(-1, opt.first + (int)*opened);
			(*opened)++;
		}
		loop_once(5);
		if (errors)
			die("%s: %ld sessions failed while opening", opt.sc->name,
			    errors);
		if (now_s() - start > opt.timeout + (double)target / 20)
			die("%s: only %ld of %ld sessions logged in", opt.sc->name,
			    logged_in, target);
	}
}

static void settle(double secs)
{
	double end = now_s() + secs;

	while (now_s() < end)
		loop_once(20);
}

static void run_idle(void)
{
	long opened = 0, n = opt.idle;
	long long pss0, rss0, pss1, rss1;
	int np0, np1;
	double ta, tb;

	if (opt.first + opt.idle_warm + n > opt.first + (long)opt.count)
		die("%s: --count %d accounts, need %ld", opt.sc->name, opt.count,
		    (long)opt.idle_warm + n);
	/* a few sessions first: threads, TLS, allocator, pools warm up */
	idle_fill(opt.idle_warm, &opened);
	settle(1.0);
	tree_mem_kib(opt.pids, opt.npids, &pss0, &rss0, &np0);
	sample(&cpu0, &aux0, &gen0);
	ta = now_s();
	idle_fill(opt.idle_warm + n, &opened);
	tb = now_s();
	settle(1.0);
	sample(&cpu1, &aux1, &gen1);
	tree_mem_kib(opt.pids, opt.npids, &pss1, &rss1, &np1);
	settle(opt.hold);     /* held: none may be closed meanwhile */
	if (errors)
		fprintf(stderr, "postern-bench: %ld held sessions ended\n", errors);
	printf("{");
	json_common();
	printf(", \"sessions\": %ld, \"open_seconds\": %.3f, "
	       "\"pss_before_kib\": %lld, \"pss_after_kib\": %lld, "
	       "\"rss_before_kib\": %lld, \"rss_after_kib\": %lld, "
	       "\"processes_before\": %d, \"processes_after\": %d, "
	       "\"pss_kib_per_session\": %.2f, \"rss_kib_per_session\": %.2f, "
	       "\"login_cpu_ms_per_session\": %.4f}\n",
	       n, tb - ta, pss0, pss1, rss0, rss1, np0, np1,
	       (double)(pss1 - pss0) / (double)n,
	       (double)(rss1 - rss0) / (double)n,
	       (cpu1 - cpu0) * 1000 / (double)n);
	for (int i = nopen - 1; i >= 0; i--)
		conn_close(open_conns[i]);
	bury();
}

static void build_message(void)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t cap = opt.msg_size + 4096, n = 0;
	uint32_t x = 2463534242u;

	message = xmalloc(cap);
	n += (size_t)snprintf(message, cap,
		"From: Bench <bench@%s>\r\nTo: <%s>\r\nSubject: postern-bench "
		"submission\r\nMIME-Version: 1.0\r\nContent-Type: "
		"application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
		"\r\n", opt.domain, opt.rcpt);
	while (n + 78 < opt.msg_size) {
		for (int i = 0; i < 76; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			message[n++] = alpha[x & 63];
		}
		message[n++] = '\r';
		message[n++] = '\n';
	}
	memcpy(message + n, ".\r\n", 3);
	message_len = n + 3;
}

/* ---- sink: the relay the servers submit to ---- */

static struct {
	int count_fd;
	bool quickack, defer;
	const char *spool;
	uint64_t count;
	pthread_mutex_t mu;
	atomic_int seq;
} sink = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int sink_write(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t r = write(fd, s, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		s += r;
		n -= (size_t)r;
	}
	return 0;
}

struct sink_out {
	int fd;
	size_t len;
	char buf[8192];
};

/* Replies are gathered while pipelined commands are in the buffer and sent
 * in one write before the next read (no Nagle stall between two replies). */
static int sink_reply(struct sink_out *o, const char *s)
{
	size_t n = strlen(s);

	if (o->len + n > sizeof(o->buf)) {
		if (sink_write(o->fd, o->buf, o->len))
			return -1;
		o->len = 0;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	return 0;
}

static int sink_flush(struct sink_out *o)
{
	int r = 0;

	if (o->len)
		r = sink_write(o->fd, o->buf, o->len);
	o->len = 0;
	return r;
}

static void *sink_conn(void *arg)
{
	int fd = (int)(intptr_t)arg, spool = -1, one = 1;
	struct sink_out *o = xmalloc(sizeof(*o));
	size_t cap = 1 << 20, len = 0, off = 0, msg_start = 0;
	char *buf = xmalloc(cap);
	bool data = false;
	struct timeval tv = { .tv_sec = 600 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	o->fd = fd;
	o->len = 0;
	if (sink.spool) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/conn-%d", sink.spool,
			 atomic_fetch_add(&sink.seq, 1));
		spool = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (spool < 0)
			die("sink: %s: %s", path, strerror(errno));
	}
	if (sink_reply(o, "220 sink.test ESMTP postern-bench sink\r\n"))
		goto out;
	for (;;) {
		char *nl;
		ssize_t r;

		if (len == cap) {
			if (off == 0 && msg_start == 0) {
				cap *= 2;
				buf = xrealloc(buf, cap);
			}
		}
		nl = memchr(buf + off, '\n', len - off);
		if (!nl) {
			size_t keep = data ? msg_start : off;

			/* keep the message being received; drop read lines */
			memmove(buf, buf + keep, len - keep);
			len -= keep;
			off -= keep;
			if (data)
				msg_start = 0;
			if (len == cap) {
				cap *= 2;
				buf = xrealloc(buf, cap);
			}
			if (sink_flush(o))
				goto out;
			r = read(fd, buf + len, cap - len);
			/* ACK at once: a client that sends a message in many
			 * small writes is not held by Nagle + delayed ACK */
			if (sink.quickack)
				setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one,
					   sizeof(one));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				goto out;
			len += (size_t)r;
			continue;
		}
		{
			char *line = buf + off;
			size_t ll = (size_t)(nl - line) + 1;

			off += ll;
			if (data) {
				if (ll >= 2 && line[0] == '.' &&
				    (line[1] == '\r' || line[1] == '\n')) {
					uint64_t v;

					if (spool >= 0) {
						struct stat sb;

						if (fstat(spool, &sb) == 0 &&
						    sb.st_size > (64 << 20) &&
						    ftruncate(spool, 0))
							die("sink: truncate: %s",
							    strerror(errno));
						if (write(spool, buf + msg_start,
							  (size_t)(line - buf) - msg_start) < 0 ||
						    fdatasync(spool))
							die("sink: spool: %s",
							    strerror(errno));
					}
					pthread_mutex_lock(&sink.mu);
					v = ++sink.count;
					if (pwrite(sink.count_fd, &v, sizeof(v), 0) !=
					    sizeof(v))
						die("sink: count file: %s",
						    strerror(errno));
					pthread_mutex_unlock(&sink.mu);
					data = false;
					if (sink_reply(o, "250 2.0.0 Ok: queued\r\n"))
						goto out;
				}
				continue;
			}
			if (!strncasecmp(line, "EHLO", 4)) {
				if (sink_reply(o, "250-sink.test\r\n250-PIPELINING\r\n"
					       "250-8BITMIME\r\n250-SIZE 209715200\r\n"
					       "250-ENHANCEDSTATUSCODES\r\n"
					       "250 SMTPUTF8\r\n"))
					goto out;
			} else if (sink.defer && !strncasecmp(line, "RCPT", 4)) {
				/* every recipient deferred: counted, not taken */
				uint64_t v;

				pthread_mutex_lock(&sink.mu);
				v = ++sink.count;
				if (pwrite(sink.count_fd, &v, sizeof(v), 0) != sizeof(v))
					die("sink: count file: %s", strerror(errno));
				pthread_mutex_unlock(&sink.mu);
				if (sink_reply(o, "451 4.3.0 Deferred by the sink\r\n"))
					goto out;
			} else if (sink.defer && !strncasecmp(line, "DATA", 4)) {
				if (sink_reply(o, "554 5.5.1 No valid recipients\r\n"))
					goto out;
			} else if (!strncasecmp(line, "DATA", 4)) {
				data = true;
				msg_start = off;
				if (sink_reply(o, "354 End data with <CR><LF>.<CR><LF>\r\n"))
					goto out;
			} else if (!strncasecmp(line, "QUIT", 4)) {
				sink_reply(o, "221 2.0.0 Bye\r\n");
				sink_flush(o);
				goto out;
			} else if (!strncasecmp(line, "HELO", 4) ||
				   !strncasecmp(line, "MAIL", 4) ||
				   !strncasecmp(line, "RCPT", 4) ||
				   !strncasecmp(line, "RSET", 4) ||
				   !strncasecmp(line, "NOOP", 4)) {
				if (sink_reply(o, "250 2.0.0 Ok\r\n"))
					goto out;
			} else {
				if (sink_reply(o, "502 5.5.2 Not implemented\r\n"))
					goto out;
			}
		}
	}
out:
	if (spool >= 0)
		close(spool);
	close(fd);
	free(buf);
	free(o);
	return NULL;
}

static int sink_main(int port, const char *count_file, const char *spool,
		     double lifetime)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint64_t zero = 0;
	double end = now_s() + lifetime;
	struct timeval tv = { .tv_sec = 1 };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 512))
		die("sink: 127.0.0.1:%d: %s", port, strerror(errno));
	sink.count_fd = open(count_file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (sink.count_fd < 0 || pwrite(sink.count_fd, &zero, 8, 0) != 8)
		die("sink: %s: %s", count_file, strerror(errno));
	sink.spool = spool;
	setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	fprintf(stderr, "postern-bench sink: listening on 127.0.0.1:%d%s\n", port,
		spool ? " (fdatasync per message)" : "");
	while (now_s() < end) {
		pthread_t th;
		pthread_attr_t at;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			continue;      /* timeout: check the lifetime */
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 256 << 10);
		if (pthread_create(&th, &at, sink_conn, (void *)(intptr_t)fd))
			close(fd);
		pthread_attr_destroy(&at);
	}
	return 0;
}

/* ---- main ---- */

static int usage(void)
{
	fprintf(stderr,
"usage: postern-bench run --scenario NAME --port N [options]\n"
"       postern-bench sink --port N --count-file F [--fsync DIR] [--quickack]\n"
"                          [--defer] [--lifetime S]\n"
"       postern-bench hash PASSWORD [M_KIB T P]\n"
"       postern-bench list\n"
"run options:\n"
"  --host A            IPv4 loopback address (127.0.0.1)\n"
"  --conc N            connections in flight (8)\n"
"  --duration S        measured window (10); --warmup S before it (2)\n"
"  --max-ops N         end the window after N operations\n"
"  --prefix P --domain D --first N --count N\n"
"                      accounts PNNNNN@D, numbers first..first+count-1\n"
"  --password PW       their password\n"
"  --rcpt ADDR         submission recipient (sink@relay.test)\n"
"  --msg-size N        submitted message size in octets (20480)\n"
"  --idle N            idle scenarios: sessions to hold (1000)\n"
"  --idle-warm N       held before the first reading (20)\n"
"  --hold S            idle sessions held after the reading (2)\n"
"  --pid P             a server process; it and its descendants are\n"
"                      measured (repeatable)\n"
"  --aux-pid P         measured and reported apart (aux_cpu_s)\n"
"  --sink-count F      the sink's counter: the window ends when the sink\n"
"                      has every accepted message\n"
"  --priority S        GnuTLS priority string (TLS 1.3, AES-256-GCM, X25519)\n"
"  --timeout S         per operation (60)\n"
"  --drain S           most time to wait for quiet at either end of the\n"
"                      window (300)\n");
	return 64;
}

static double num(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (!*s || *end)
		die("not a number: %s", s);
	return v;
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	int r;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "list")) {
		for (size_t i = 0; i < sizeof(scenarios) / sizeof(*scenarios); i++)
			printf("%-22s %s\n", scenarios[i].name, scenarios[i].what);
		return 0;
	}
	if (!strcmp(argv[1], "hash")) {
		char enc[256], salt[16];
		uint32_t m = argc > 3 ? (uint32_t)num(argv[3]) : 19456,
			 t = argc > 4 ? (uint32_t)num(argv[4]) : 2,
			 p = argc > 5 ? (uint32_t)num(argv[5]) : 1;

		if (argc < 3)
			return usage();
		if (gnutls_rnd(GNUTLS_RND_NONCE, salt, sizeof(salt)))
			die("no random salt");
		r = argon2id_hash_encoded(t, m, p, argv[2], strlen(argv[2]), salt,
					  sizeof(salt), 32, enc, sizeof(enc));
		if (r != ARGON2_OK)
			die("argon2: %s", argon2_error_message(r));
		printf("%s\n", enc);
		return 0;
	}
	if (!strcmp(argv[1], "sink")) {
		int port = 0;
		const char *count_file = NULL, *spool = NULL;
		double lifetime = 4 * 3600;

		for (int i = 2; i < argc; i++) {
			if (i + 1 >= argc && strcmp(argv[i], "--quickack") &&
			    strcmp(argv[i], "--defer"))
				return usage();
			if (!strcmp(argv[i], "--port"))
				port = (int)num(argv[++i]);
			else if (!strcmp(argv[i], "--count-file"))
				count_file = argv[++i];
			else if (!strcmp(argv[i], "--fsync"))
				spool = argv[++i];
			else if (!strcmp(argv[i], "--lifetime"))
				lifetime = num(argv[++i]);
			else if (!strcmp(argv[i], "--quickack"))
				sink.quickack = true;
			else if (!strcmp(argv[i], "--defer"))
				sink.defer = true;
			else
				return usage();
		}
		if (!port || !count_file)
			return usage();
		return sink_main(port, count_file, spool, lifetime);
	}
	if (strcmp(argv[1], "run"))
		return usage();
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(k, "--verbose")) {
			opt.verbose = true;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (!strcmp(k, "--scenario")) {
			for (size_t j = 0; j < sizeof(scenarios) / sizeof(*scenarios); j++)
				if (!strcmp(scenarios[j].name, v))
					opt.sc = &scenarios[j];
			if (!opt.sc)
				die("no scenario %s (postern-bench list)", v);
		} else if (!strcmp(k, "--host")) opt.host = v;
		else if (!strcmp(k, "--port")) opt.port = (int)num(v);
		else if (!strcmp(k, "--conc")) opt.conc = (int)num(v);
		else if (!strcmp(k, "--duration")) opt.duration = num(v);
		else if (!strcmp(k, "--warmup")) opt.warmup = num(v);
		else if (!strcmp(k, "--max-ops")) opt.max_ops = (long)num(v);
		else if (!strcmp(k, "--prefix")) opt.prefix = v;
		else if (!strcmp(k, "--domain")) opt.domain = v;
		else if (!strcmp(k, "--first")) opt.first = (int)num(v);
		else if (!strcmp(k, "--count")) opt.count = (int)num(v);
		else if (!strcmp(k, "--password")) opt.password = v;
		else if (!strcmp(k, "--rcpt")) opt.rcpt = v;
		else if (!strcmp(k, "--msg-size")) opt.msg_size = (size_t)num(v);
		else if (!strcmp(k, "--idle")) opt.idle = (int)num(v);
		else if (!strcmp(k, "--idle-warm")) opt.idle_warm = (int)num(v);
		else if (!strcmp(k, "--hold")) opt.hold = num(v);
		else if (!strcmp(k, "--timeout")) opt.timeout = num(v);
		else if (!strcmp(k, "--drain")) opt.drain = num(v);
		else if (!strcmp(k, "--priority")) opt.priority = v;
		else if (!strcmp(k, "--server-name")) opt.server_name = v;
		else if (!strcmp(k, "--sink-count")) opt.sink_count = v;
		else if (!strcmp(k, "--pid") || !strcmp(k, "--aux-pid")) {
			bool aux = k[2] == 'a';
			int *n = aux ? &opt.naux : &opt.npids;

			if (*n == 16)
				die("too many PIDs");
			(aux ? opt.aux : opt.pids)[(*n)++] = (int)num(v);
		} else {
			return usage();
		}
	}
	if (!opt.sc || !opt.port || opt.conc < 1 || opt.duration <= 0)
		return usage();
	if (opt.count <= 0)
		opt.count = opt.conc;
	if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1 ||
	    (ntohl(server_addr.sin_addr.s_addr) >> 24) != 127)
		die("--host must be an IPv4 loopback address");
	server_addr.sin_family = AF_INET;
	server_addr.sin_port = htons((uint16_t)opt.port);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((r = gnutls_global_init()) ||
	    (r = gnutls_certificate_allocate_credentials(&xcred)))
		die("gnutls: %s", gnutls_strerror(r));
	{
		const char *errpos = NULL;

		if ((r = gnutls_priority_init(&prio, opt.priority, &errpos)))
			die("--priority at \"%s\": %s", errpos ? errpos : "",
			    gnutls_strerror(r));
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll: %s", strerror(errno));
	slots = calloc((size_t)opt.conc, sizeof(*slots));
	tickets = calloc((size_t)opt.conc, sizeof(*tickets));
	seq = calloc((size_t)opt.conc, sizeof(*seq));
	if (!slots || !tickets || !seq)
		die("out of memory");
	if (opt.sc->kind == K_RETR && opt.count < opt.conc)
		die("%s: --count must be at least --conc (one mailbox each)",
		    opt.sc->name);
	build_message();
	if (opt.sc->kind == K_IDLE)
		run_idle();
	else
		run_closed_loop();
	fflush(stdout);
	return errors ? 1 : 0;
}
