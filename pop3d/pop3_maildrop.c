/* pop3_maildrop.c — the mailbox as a POP3 session sees it: the lock that
 * gives one session at a time a mailbox ([IN-USE]), the snapshot taken at
 * login under the account's POP settings, and the UPDATE state that applies
 * deletions and downloads in one store commit at QUIT (and never on a
 * dropped connection). A recent: session lists what the account received in
 * the last recent_days wherever it was filed, and its QUIT changes nothing. */
#include <errno.h>
#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
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

int pop3_maildrop_lock(uint64_t account_id, uint64_t login_delay_ms,
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
	/* Then the store's lease, for pop3d on other machines sharing a
	 * PostgreSQL store (nothing on LMDB); outside lock_mu, as it may be
	 * a query. Taken and given back on this loop's thread. */
	if (r == 0 && (r = store_lease_take(pop3d.store, account_id))) {
		pthread_mutex_lock(&lock_mu);
		l->locked = false;
		pthread_mutex_unlock(&lock_mu);
		if (r != -PST_EBUSY)
			log_event(LOGL_ERR, 0, "lease_failed", "account=%llu "
				  "error=\"%s\"", (unsigned long long)account_id,
				  pst_strerror(r));
		r = -PST_EBUSY;
	}
	return r;
}

void pop3_maildrop_unlock(uint64_t account_id)
{
	pthread_mutex_lock(&lock_mu);
	for (struct mlock *l = locks[account_id % LOCK_BUCKETS]; l; l = l->next)
		if (l->account_id == account_id)
			l->locked = false;
	pthread_mutex_unlock(&lock_mu);
	store_lease_release(pop3d.store, account_id);
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

struct snap {
	struct pop3_session *s;
	uint32_t cap, limit;
	uint64_t since_uid, recent_after;
	bool folders[STORE_FOLDER_N], recent, add_blank;
};

static int pop3__snap_add(const struct store_msg *m, void *arg)
{
	struct snap *sn = arg;
	struct pop3_session *s = sn->s;

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
	if (sn->limit && s->nmsgs == sn->limit)
		return 1;   /* the oldest N only; they come in uid order */
	if (s->nmsgs == sn->cap) {
		uint32_t cap = sn->cap ? sn->cap * 2 : 64;
		struct pop3_msg *nm = realloc(s->msgs, cap * sizeof(*nm));

		if (!nm)
			return -ENOMEM;
		s->msgs = nm;
		sn->cap = cap;
	}
	struct pop3_msg *pm = &s->msgs[s->nmsgs++];

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
	s->total_size += pm->size;
	return 0;
}

int pop3_maildrop_snapshot(struct pop3_session *s, bool domain_allowed)
{
	const struct store_pop *pop = &s->account.pop;
	bool mail = pop->spam != STORE_SPAM_ONLY;
	struct snap sn = {
		.s = s, .limit = pop->list_limit,
		.recent = s->flags & POP3_F_RECENT,
		.add_blank = s->cfg->pop3d.add_missing_blank_line,
		.since_uid = pop->access == STORE_POP_SINCE_NOW
			     ? s->account.pop_since_uid : 0,
	};
	struct store_read *r;
	int e;

	/* Normal sessions see Inbox (and Spam, per pop-spam). Recent mode is
	 * all mail the account received in the last days wherever it was
	 * filed (Gmail's), so Archive too: a first client's downloads that
	 * pop-after=archive moved there stay visible to the second. */
	sn.folders[STORE_INBOX] = mail;
	sn.folders[STORE_ARCHIVE] = mail && sn.recent;
	sn.folders[STORE_SPAM] = pop->spam != STORE_SPAM_EXCLUDE;

	sn.recent_after = (uint64_t)time(NULL) -
			  s->cfg->pop3d.recent_days * 86400;
	if ((e = store_read_begin(pop3d.store, &r)))
		return e;
	if (sn.recent) {
		/* Hidden and archived mail too, by date: a pass over the
		 * account's records (no bodies). */
		e = store_msg_each_after(r, s->account.id, sn.since_uid,
					 pop3__snap_add, &sn);
	} else {
		unsigned mask = 0;

		for (unsigned f = 0; f < STORE_FOLDER_N; f++)
			mask |= sn.folders[f] ? 1u << f : 0;
		/* Through the store's POP index: the records of the batch
		 * only, however many the account keeps hidden. */
		e = store_msg_pop_each(r, s->account.id, mask, sn.since_uid,
				       pop3__snap_add, &sn);
	}
	/* What the listing cost in records, whatever the clock says: the
	 * scale benchmark and test_pop3_bigbox.py read it. */
	log_event(LOGL_DEBUG, s->id, "maildrop", "listed=%u records_read=%llu",
		  s->nmsgs, (unsigned long long)store_read_msgs(r));
	store_read_end(r);
	return e < 0 ? e : 0;
}

void pop3_maildrop_free(struct pop3_session *s)
{
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

static void pop3__update_answer(void *sess, struct io_post *m)
{
	struct pop3_update *u = (struct pop3_update *)m;
	struct pop3_session *s = sess;

	/* The update held the lock from QUIT to its commit, even if the
	 * client went away meanwhile: deletions are durable before another
	 * session can list the mailbox, and it is free before +OK. */
	pop3_maildrop_unlock(u->account_id);
	if (s) {
		if (u->result) {
			log_event(LOGL_ERR, s->id, "update_failed",
				  "error=\"%s\"", pst_strerror(u->result));
			pop3_reply_err(s->io, "[SYS/TEMP] Some deleted messages "
				       "were not removed; try again");
			pop3_maildrop_log_logout(s, "update_failed");
		} else {
			pop3_reply_ok(s->io, "Postern POP3 server signing off (%u "
				      "messages done with)", u->n);
			pop3_maildrop_log_logout(s, "quit");
		}
		pop3_session_end(s);
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
	pop3__release(s);
	pop3_reply_ok(s->io, "Postern POP3 server signing off (recent mode: "
		      "mailbox unchanged)");
	pop3_maildrop_log_logout(s, "quit");
	pop3_session_end(s);
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
		pop3__release(s);
		pop3_reply_ok(s->io, "Postern POP3 server signing off");
		pop3_maildrop_log_logout(s, "quit");
		pop3_session_end(s);
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
