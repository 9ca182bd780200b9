/* pop3_maildrop.c — the mailbox as a POP3 session sees it: the lock that
 * gives one session at a time a mailbox ([IN-USE]), the snapshot taken at
 * login under the account's POP settings, and the UPDATE state that applies
 * deletions and downloads in one store commit at QUIT (and never on a
 * dropped connection). A recent: session lists what the account received in
 * the last recent_days wherever it was filed, and its QUIT changes nothing. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "pop3d/pop3_login.h"
#include "pop3d/pop3_maildrop.h"
#include "pop3d/pop3_reply.h"
#include "pop3d/pop3_session.h"

/* ---- the lock (per process: pop3d is the only POP reader) ---- */

#define LOCK_BUCKETS 4096

struct mlock {
	struct mlock *next;
	uint64_t account_id;
	bool locked;
	uint64_t last_login_ms;
};

static pthread_mutex_t lock_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mlock *locks[LOCK_BUCKETS];

static int pop3__table_lock(uint64_t account_id, uint64_t login_delay_ms,
			    uint64_t *wait_s)
{
	struct mlock *l;
	uint64_t now = auth_now_ms();
	int r = 0;

	pthread_mutex_lock(&lock_mu);
	for (l = locks[account_id % LOCK_BUCKETS]; l; l = l->next)
		if (l->account_id == account_id)
			break;
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l) {
			pthread_mutex_unlock(&lock_mu);
			return -ENOMEM;
		}
		l->account_id = account_id;
		l->next = locks[account_id % LOCK_BUCKETS];
		locks[account_id % LOCK_BUCKETS] = l;
	}
	if (l->locked) {
		r = -PST_EBUSY;
	} else if (login_delay_ms && l->last_login_ms &&
		   now - l->last_login_ms < login_delay_ms) {
		*wait_s = (login_delay_ms - (now - l->last_login_ms) + 999) / 1000;
		r = -EAGAIN;
	} else {
		l->locked = true;
		l->last_login_ms = now;
	}
	pthread_mutex_unlock(&lock_mu);
	return r;
}

static void pop3__table_unlock(uint64_t account_id)
{
	pthread_mutex_lock(&lock_mu);
	for (struct mlock *l = locks[account_id % LOCK_BUCKETS]; l; l = l->next)
		if (l->account_id == account_id)
			l->locked = false;
	pthread_mutex_unlock(&lock_mu);
}

/* Then the store's lease, for pop3d on other machines sharing a PostgreSQL
 * store (nothing on LMDB), outside lock_mu as it is a query: on the read
 * lane's thread pinned to the account (pop3__open_job), or inline on
 * LMDB. A refused or failed lease: the caller gives the table entry back
 * on the loop, if its session still holds it (one that ended meanwhile
 * gave it back already, and a later session may hold it now). */
static int pop3__lease_take(struct store *st, uint64_t account_id)
{
	int r = store_lease_take(st, account_id);

	if (r) {
		if (r != -PST_EBUSY)
			log_event(LOGL_ERR, 0, "lease_failed", "account=%llu "
				  "error=\"%s\"", (unsigned long long)account_id,
				  pst_strerror(r));
		r = -PST_EBUSY;
	}
	return r;
}

static int pop3__lease_release_job(struct store_read *r, void *arg)
{
	store_lease_release(store_read_store(r), *(uint64_t *)arg);
	return 0;
}

static void pop3__lease_released(void *arg, int result)
{
	(void)result;
	free(arg);
}

/* The lease back, on the thread (connection) that took it: queued after
 * the take on the account's pinned lane thread, so it runs after it even
 * when the session ends while the take is under way. */
static void pop3__lease_release(uint64_t account_id)
{
	uint64_t *id;

	if (!store_reads_on_lane(pop3d.store)) {
		store_lease_release(pop3d.store, account_id);
		return;
	}
	if ((id = malloc(sizeof(*id)))) {
		*id = account_id;
		/* owed: never refused for a full lane, one per lease */
		if (store_read_async_owed(pop3d.store, account_id,
					  pop3__lease_release_job, id,
					  pop3__lease_released) == 0)
			return;
		free(id);
	}
	/* Only without memory or lane (shutdown): the connection's end,
	 * with the process, releases it. */
	log_event(LOGL_ERR, 0, "lease_release_failed", "account=%llu",
		  (unsigned long long)account_id);
}

void pop3_maildrop_unlock(uint64_t account_id)
{
	pop3__table_unlock(account_id);
	pop3__lease_release(account_id);
}

/* The session gives up the mailbox before it writes QUIT's reply: a
 * client that reconnects the moment it reads +OK must find it free, so the
 * lock cannot wait for the connection to close (on_close runs after the
 * reply is flushed, a loop turn or more later, maybe on another worker
 * than the next login's). */
static void pop3__release(struct pop3_session *s)
{
	if (s->locked) {
		pop3_maildrop_unlock(s->account.id);
		s->locked = false;
	}
}

/* ---- the snapshot ---- */

/* What the listing needs and what it found: no session pointer, as it is
 * filled on a lane thread on PostgreSQL; moved into the session after. */
struct snap {
	uint64_t account_id;
	uint32_t cap, limit, n;
	uint64_t since_uid, recent_after, total, records;
	bool folders[STORE_FOLDER_N], recent, add_blank;
	struct pop3_msg *msgs;
};

static int pop3__snap_add(const struct store_msg *m, void *arg)
{
	struct snap *sn = arg;

	if (m->folder >= STORE_FOLDER_N || !sn->folders[m->folder] ||
	    m->uid <= sn->since_uid)
		return 0;
	if (sn->recent) {
		/* recent: every message of the last days, downloaded or not */
		if (m->internal_date < sn->recent_after)
			return 0;
	} else if (m->flags & STORE_MSG_POP_HIDDEN) {
		return 0;
	}
	if (sn->limit && sn->n == sn->limit)
		return 1;   /* the oldest N only; they come in uid order */
	if (sn->n == sn->cap) {
		uint32_t cap = sn->cap ? sn->cap * 2 : 64;
		struct pop3_msg *nm = realloc(sn->msgs, cap * sizeof(*nm));

		if (!nm)
			return -ENOMEM;
		sn->msgs = nm;
		sn->cap = cap;
	}
	struct pop3_msg *pm = &sn->msgs[sn->n++];

	memset(pm, 0, sizeof(*pm));
	pm->uid = m->uid;
	/* The store recorded at delivery whether the header ends with a blank
	 * line, so the added CRLF is counted here without reading bodies. */
	pm->blank_added = sn->add_blank &&
			  (m->flags & STORE_MSG_NO_BLANK_LINE);
	pm->size = m->size + (pm->blank_added ? 2 : 0);
	pm->nchunks = m->nchunks;
	pm->body_id = m->body_id;
	memcpy(pm->uidl, m->uidl, sizeof(pm->uidl));
	sn->total += pm->size;
	return 0;
}

/* On the loop: what the listing of session s is to select. */
static void pop3__snap_init(struct pop3_session *s, struct snap *sn)
{
	const struct store_pop *pop = &s->account.pop;
	bool mail = pop->spam != STORE_SPAM_ONLY;

	memset(sn, 0, sizeof(*sn));
	sn->account_id = s->account.id;
	sn->limit = pop->list_limit;
	sn->recent = s->flags & POP3_F_RECENT;
	sn->add_blank = s->cfg->pop3d.add_missing_blank_line;
	sn->since_uid = pop->access == STORE_POP_SINCE_NOW
			? s->account.pop_since_uid : 0;
	/* Normal sessions see Inbox (and Spam, per pop-spam). Recent mode is
	 * all mail the account received in the last days wherever it was
	 * filed (Gmail's), so Archive too: a first client's downloads that
	 * pop-after=archive moved there stay visible to the second. */
	sn->folders[STORE_INBOX] = mail;
	sn->folders[STORE_ARCHIVE] = mail && sn->recent;
	sn->folders[STORE_SPAM] = pop->spam != STORE_SPAM_EXCLUDE;
	sn->recent_after = (uint64_t)time(NULL) -
			   s->cfg->pop3d.recent_days * 86400;
}

/* The listing itself: inline on LMDB, on a lane thread on PostgreSQL. */
static int pop3__snap_read(struct store_read *r, struct snap *sn)
{
	int e;

	if (sn->recent) {
		/* Hidden and archived mail too, by date: a pass over the
		 * account's records (no bodies). */
		e = store_msg_each_after(r, sn->account_id, sn->since_uid,
					 pop3__snap_add, sn);
	} else {
		unsigned mask = 0;

		for (unsigned f = 0; f < STORE_FOLDER_N; f++)
			mask |= sn->folders[f] ? 1u << f : 0;
		/* Through the store's POP index: the records of the batch
		 * only, however many the account keeps hidden. */
		e = store_msg_pop_each(r, sn->account_id, mask, sn->since_uid,
				       pop3__snap_add, sn);
	}
	sn->records = store_read_msgs(r);
	return e < 0 ? e : 0;
}

/* On the loop: the listing becomes the session's. */
static void pop3__snap_take(struct pop3_session *s, struct snap *sn)
{
	free(s->msgs);
	s->msgs = sn->msgs;
	s->nmsgs = sn->n;
	s->total_size = sn->total;
	sn->msgs = NULL;
	/* What the listing cost in records, whatever the clock says: the
	 * scale benchmark and test_pop3_bigbox.py read it. */
	log_event(LOGL_DEBUG, s->id, "maildrop", "listed=%u records_read=%llu",
		  s->nmsgs, (unsigned long long)sn->records);
}

/* ---- opening the mailbox: the lock, then the snapshot ---- */

struct open_job {
	struct snap sn;
	int lock_e;
	/* Set on the loop when the session ends before the job ran: the
	 * listing, which nobody will read, is skipped; the lease is still
	 * taken, as the release queued behind it by the session's end must
	 * find it held (a take skipped would leave that release to unlock
	 * what the connection does not hold). */
	atomic_bool gone;
};

/* On the account's pinned lane thread: the lease, then the listing. */
static int pop3__open_job(struct store_read *r, void *arg)
{
	struct open_job *oj = arg;

	oj->lock_e = pop3__lease_take(store_read_store(r), oj->sn.account_id);
	if (oj->lock_e || atomic_load(&oj->gone))
		return 0;
	return pop3__snap_read(r, &oj->sn);
}

static void pop3__opened(struct pop3_session *s, struct snap *sn, int lock_e,
			 int snap_e)
{
	if (lock_e) {
		pop3__table_unlock(s->account.id);
		s->locked = false;
	} else if (!snap_e) {
		pop3__snap_take(s, sn);
	}
	free(sn->msgs);
	sn->msgs = NULL;
	pop3_login_opened(s, lock_e, snap_e, 0);
}

/* On the loop, from the lane. */
static void pop3__open_arrived(void *sess, void *arg, int result)
{
	struct open_job *oj = arg;
	struct pop3_session *s = sess;

	if (s)
		s->opening = NULL;
	/* A session that ended meanwhile gave the table entry back and
	 * queued the lease's release after this take (pop3__on_close). */
	if (s && !io_conn_closing(s->io))
		pop3__opened(s, &oj->sn, oj->lock_e, result);
	free(oj->sn.msgs);
	free(oj);
}

void pop3_maildrop_open(struct pop3_session *s)
{
	struct open_job *oj;
	struct store_read *r;
	uint64_t wait_s = 0;
	struct snap sn;
	int e;

	e = pop3__table_lock(s->account.id, s->cfg->pop3d.login_delay,
			     &wait_s);
	if (e) {
		pop3_login_opened(s, e == -ENOMEM ? -PST_EBUSY : e, 0, wait_s);
		return;
	}
	s->locked = true;   /* from here on_close gives both back */
	if (!store_reads_on_lane(pop3d.store)) {
		/* LMDB: the lease is nothing, the listing an mmap walk */
		pop3__snap_init(s, &sn);
		if ((e = pop3__lease_take(pop3d.store, s->account.id))) {
			pop3__opened(s, &sn, e, 0);
			return;
		}
		if (!(e = store_read_begin(pop3d.store, &r))) {
			e = pop3__snap_read(r, &sn);
			store_read_end(r);
		}
		pop3__opened(s, &sn, 0, e);
		return;
	}
	if (!(oj = calloc(1, sizeof(*oj)))) {
		pop3_login_opened(s, 0, -ENOMEM, 0);
		return;
	}
	pop3__snap_init(s, &oj->sn);
	io_conn_pause(s->io);
	/* Counted against pg_read_queue like any read: -EAGAIN when it is
	 * full (a temporary error to the client). Nothing was queued, so
	 * no release is owed: the table entry goes back here. */
	e = store_read_post(pop3d.store, s->account.id, pop3__open_job, oj,
			    io_conn_worker(s->io), s->id, pop3__open_arrived);
	if (e) {
		free(oj);
		pop3__table_unlock(s->account.id);
		s->locked = false;
		pop3_login_opened(s, 0, e, 0);
		return;
	}
	s->opening = oj;
	/* Queued behind whatever the account's lane thread runs: the tests
	 * of the lane's bound (test_pg_lane.py) wait for it. */
	log_event(LOGL_DEBUG, s->id, "mailbox_opening", NULL);
}

void pop3_maildrop_free(struct pop3_session *s)
{
	/* On the loop, as pop3__open_arrived: the job outlives the session
	 * (it frees itself when it arrives), the pointer does not. */
	if (s->opening)
		atomic_store(&s->opening->gone, true);
	s->opening = NULL;
	free(s->msgs);
	s->msgs = NULL;
	s->nmsgs = 0;
}

/* ---- logout line ---- */

void pop3_maildrop_log_logout(struct pop3_session *s, const char *how)
{
	gnutls_hash_hd_t h;
	uint8_t d[32];

	/* A short hash of the UIDL list: equal between two sessions of an
	 * unchanged mailbox, so UIDLs that changed stand out in the log. */
	gnutls_hash_init(&h, GNUTLS_DIG_SHA256);
	for (uint32_t i = 0; i < s->nmsgs; i++) {
		gnutls_hash(h, s->msgs[i].uidl, strlen(s->msgs[i].uidl));
		gnutls_hash(h, "\n", 1);
	}
	gnutls_hash_deinit(h, d);
	metrics_add(MS_POP3_RETRIEVED, s->n_retrieved);
	metrics_add(MS_POP3_SENT_BYTES, s->bytes_out);
	/* Deletions took effect only when the UPDATE committed ("quit"). */
	if (METRICS_ON() && strcmp(how, "quit") == 0)
		metrics_add(MS_POP3_DELETED, s->n_deleted);
	log_event(LOGL_INFO, s->id, "logout", "how=%s listed=%u retrieved=%llu "
		  "deleted=%llu bytes=%llu uidl_hash=%02x%02x%02x%02x", how,
		  s->nmsgs, (unsigned long long)s->n_retrieved,
		  (unsigned long long)s->n_deleted,
		  (unsigned long long)s->bytes_out, d[0], d[1], d[2], d[3]);
}

/* ---- UPDATE ---- */

struct pop3_update {
	struct io_post post;
	struct io_worker *w;
	uint64_t account_id;
	uint8_t after;
	int result;
	uint32_t n;
	uint64_t uids[];
};

static int pop3__update_write(struct store_write *w, void *arg)
{
	struct pop3_update *u = arg;

	for (uint32_t i = 0; i < u->n; i++) {
		struct store_msg m;
		int e = store_msg_get(store_write_reader(w), u->account_id,
				      u->uids[i], &m);

		if (e == -PST_ENOTFOUND)
			continue;   /* gone meanwhile (an admin): fine */
		if (e)
			return e;
		switch (u->after) {
		case STORE_AFTER_DELETE:
			e = store_msg_del(w, u->account_id, m.uid);
			break;
		case STORE_AFTER_KEEP:
			m.flags |= STORE_MSG_POP_HIDDEN;
			e = store_msg_update(w, u->account_id, &m);
			break;
		case STORE_AFTER_READ:
			m.flags |= STORE_MSG_POP_HIDDEN | STORE_MSG_SEEN;
			e = store_msg_update(w, u->account_id, &m);
			break;
		case STORE_AFTER_ARCHIVE:
			m.folder = STORE_ARCHIVE;
			e = store_msg_update(w, u->account_id, &m);
			break;
		}
		if (e)
			return e;
	}
	return 0;
}

/* ---- the last reply ---- */

struct bye_job {
	uint64_t account_id;
	bool ok;
	const char *how;
	char text[96];
};

static void pop3__bye_send(struct pop3_session *s, const struct bye_job *b)
{
	if (b->ok)
		pop3_reply_ok(s->io, "%s", b->text);
	else
		pop3_reply_err(s->io, "%s", b->text);
	pop3_maildrop_log_logout(s, b->how);
	pop3_session_end(s);
}

static int pop3__bye_job(struct store_read *r, void *arg)
{
	store_lease_release(store_read_store(r), ((struct bye_job *)arg)->account_id);
	return 0;
}

static void pop3__bye_arrived(void *sess, void *arg, int result)
{
	struct pop3_session *s = sess;

	(void)result;
	if (s && !io_conn_closing(s->io))
		pop3__bye_send(s, arg);
	free(arg);
}

/* QUIT's answer after the mailbox is given back (table and lease): a
 * client that reconnects the moment it reads +OK, to this node or
 * another, finds it free. On PostgreSQL the answer waits for the release
 * on the lane thread that holds the lease (the session paused). */
static void pop3__bye(struct pop3_session *s, uint64_t account_id, bool ok,
		      const char *how, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void pop3__bye(struct pop3_session *s, uint64_t account_id, bool ok,
		      const char *how, const char *fmt, ...)
{
	struct bye_job b = { account_id, ok, how, "" }, *bj;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b.text, sizeof(b.text), fmt, ap);
	va_end(ap);
	pop3__table_unlock(account_id);
	if (store_reads_on_lane(pop3d.store) && (bj = malloc(sizeof(*bj)))) {
		*bj = b;
		io_conn_pause(s->io);
		if (store_read_post_owed(pop3d.store, account_id,
					 pop3__bye_job, bj,
					 io_conn_worker(s->io), s->id,
					 pop3__bye_arrived) == 0)
			return;
		free(bj);
	}
	pop3__lease_release(account_id);
	pop3__bye_send(s, &b);
}

static void pop3__update_answer(void *sess, struct io_post *m)
{
	struct pop3_update *u = (struct pop3_update *)m;
	struct pop3_session *s = sess;

	/* The update held the lock from QUIT to its commit, even if the
	 * client went away meanwhile: deletions are durable before another
	 * session can list the mailbox, and it is free before +OK. */
	if (!s) {
		pop3_maildrop_unlock(u->account_id);
	} else if (u->result) {
		log_event(LOGL_ERR, s->id, "update_failed", "error=\"%s\"",
			  pst_strerror(u->result));
		pop3__bye(s, u->account_id, false, "update_failed",
			  "[SYS/TEMP] Some deleted messages were not removed; "
			  "try again");
	} else {
		pop3__bye(s, u->account_id, true, "quit", "Postern POP3 server "
			  "signing off (%u messages done with)", u->n);
	}
	free(u);
}

static void pop3__update_done(void *arg, int result)
{
	struct pop3_update *u = arg;

	u->result = result;
	io_worker_post(u->w, &u->post);
}

/* A recent: session is a second client that must not disturb the first:
 * its DELEs were accepted (RFC 1939 clients delete after downloading and
 * must not see errors) but remove and mark nothing, like its downloads. */
static void pop3__update_recent(struct pop3_session *s)
{
	uint32_t marked = 0;

	for (uint32_t i = 0; i < s->nmsgs; i++)
		marked += s->msgs[i].deleted;
	if (marked)
		log_event(LOGL_INFO, s->id, "recent_dele_ignored", "marked=%u "
			  "reason=\"recent mode leaves the mailbox unchanged\"",
			  marked);
	s->locked = false;
	pop3__bye(s, s->account.id, true, "quit", "Postern POP3 server signing "
		  "off (recent mode: mailbox unchanged)");
}

void pop3_maildrop_update(struct pop3_session *s)
{
	bool once = s->account.pop.mode == STORE_MODE_ONCE;
	struct pop3_update *u;
	uint32_t n = 0;

	if (s->flags & POP3_F_RECENT) {
		pop3__update_recent(s);
		return;
	}
	for (uint32_t i = 0; i < s->nmsgs; i++) {
		if (s->msgs[i].deleted)
			s->n_deleted++;
		if (s->msgs[i].deleted || (once && s->msgs[i].retrieved))
			n++;
	}
	if (n == 0) {
		s->locked = false;
		pop3__bye(s, s->account.id, true, "quit",
			  "Postern POP3 server signing off");
		return;
	}
	u = calloc(1, sizeof(*u) + n * sizeof(uint64_t));
	if (!u) {
		pop3__release(s);
		pop3_reply_err(s->io, "[SYS/TEMP] Out of memory; nothing removed");
		pop3_session_end(s);
		return;
	}
	for (uint32_t i = 0; i < s->nmsgs; i++)
		if (s->msgs[i].deleted || (once && s->msgs[i].retrieved))
			u->uids[u->n++] = s->msgs[i].uid;
	u->w = io_conn_worker(s->io);
	u->post.sess = s->id;
	u->post.fn = pop3__update_answer;
	u->account_id = s->account.id;
	u->after = s->account.pop.after;
	io_conn_pause(s->io);
	if (store_write_async(pop3d.store, pop3__update_write, u, pop3__update_done)) {
		free(u);
		pop3__release(s);
		pop3_reply_err(s->io, "[SYS/TEMP] Store unavailable; nothing "
			       "removed");
		pop3_session_end(s);
		return;
	}
	s->locked = false;   /* the update owns the lock now; its answer frees it */
}
