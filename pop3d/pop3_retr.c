/* pop3_retr.c — RETR and TOP, streamed from the store a chunk at a time.
 *
 * Each chunk is copied out of a short read transaction (none is held while
 * the client reads), then written with dot-stuffing in slices while the
 * connection is writable; when it is not, streaming stops and on_drained
 * resumes it. Input processing is paused meanwhile, so pipelined commands
 * are answered in order. Memory per RETR: one chunk, whatever the message
 * size (on PostgreSQL two: the next chunk is read on the store's read lane
 * while this one is written, so the loop never waits for the database and
 * the round trips overlap the writing). Chunks are read by the body id the listing found: one lookup per
 * chunk, not the message record again for each (a body id is never
 * reused, so a message removed since login is either whole, while another
 * message shares its body, or gone: -ERR). The state of the line being sent (dot-stuffing, TOP's count in
 * pop3_top.c) carries from slice to slice and chunk to chunk. A message
 * stored without the header's blank line gets it at the end when
 * add_missing_blank_line is set; its snapshot size already counts it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "pop3d/pop3_reply.h"
#include "pop3d/pop3_retr.h"
#include "pop3d/pop3_session.h"
#include "pop3d/pop3_top.h"

#define RETR_SLICE 16384

void pop3_retr_free(struct pop3_session *s)
{
	free(s->retr.buf);
	free(s->retr.next);
	memset(&s->retr, 0, sizeof(s->retr));
}

/* One chunk of a body into buf (STORE_CHUNK_SIZE): on the loop (LMDB) or
 * a lane thread (PostgreSQL). */
static int pop3__chunk_read(struct store_read *rd, uint64_t body_id,
			    uint32_t chunk, char *buf, size_t *len)
{
	const void *p;
	size_t n;
	int e = store_body_read(rd, body_id, chunk, &p, &n);

	if (e == 0 && fails_assert(n <= STORE_CHUNK_SIZE))
		e = -PST_ECORRUPT;   /* a damaged store: this session only */
	if (e == 0) {
		memcpy(buf, p, n);
		*len = n;
	}
	return e;
}

/* LMDB: the next chunk, read inline (an mmap lookup). */
static int pop3__retr_fetch(struct pop3_session *s)
{
	struct pop3_retr *r = &s->retr;
	const struct pop3_msg *m = &s->msgs[r->msg];
	struct store_read *rd;
	size_t n = 0;
	int e;

	if (!r->buf && !(r->buf = malloc(STORE_CHUNK_SIZE)))
		return -ENOMEM;
	if ((e = store_read_begin(pop3d.store, &rd)))
		return e;
	e = pop3__chunk_read(rd, m->body_id, r->chunk, r->buf, &n);
	r->records += store_read_msgs(rd);
	store_read_end(rd);
	if (e)
		return e;
	r->len = n;
	r->off = 0;
	r->chunk++;
	return 0;
}

/* PostgreSQL: chunk r->chunk is read on the lane into the spare buffer
 * while the current one is written (pop3__retr_ask, pop3__retr_arrived). */
struct retr_job {
	uint64_t body_id;
	uint32_t chunk, gen;
	char *buf;                    /* the job's until it arrives */
	size_t len;
	uint64_t records;
};

static int pop3__retr_job(struct store_read *rd, void *arg)
{
	struct retr_job *j = arg;
	int e = pop3__chunk_read(rd, j->body_id, j->chunk, j->buf, &j->len);

	j->records = store_read_msgs(rd);
	return e;
}

static void pop3__retr_arrived(void *sess, void *arg, int result);

static int pop3__retr_ask(struct pop3_session *s)
{
	struct pop3_retr *r = &s->retr;
	struct retr_job *j = calloc(1, sizeof(*j));
	int e;

	if (!j)
		return -ENOMEM;
	if (!(j->buf = r->next ? r->next : malloc(STORE_CHUNK_SIZE))) {
		free(j);
		return -ENOMEM;
	}
	r->next = NULL;
	j->body_id = s->msgs[r->msg].body_id;
	j->chunk = r->chunk;
	j->gen = r->gen;
	/* A chunk after +OK is owed (never refused for a full lane: that
	 * would cut the message) when it is the session's only read in
	 * flight, so one per session at most; the first chunk, or one
	 * behind a TOP's leftover read-ahead, counts like any read. */
	if (r->active && r->in_flight == 0)
		e = store_read_post_owed(pop3d.store, STORE_LANE_ANY,
					 pop3__retr_job, j, io_conn_worker(s->io),
					 s->id, pop3__retr_arrived);
	else
		e = store_read_post(pop3d.store, STORE_LANE_ANY, pop3__retr_job,
				    j, io_conn_worker(s->io), s->id,
				    pop3__retr_arrived);
	if (e) {
		r->next = j->buf;
		free(j);
		return e;
	}
	r->fetching = true;
	r->in_flight++;
	return 0;
}

/* The chunk fetched ahead becomes the one written; the next is asked. */
static int pop3__retr_advance(struct pop3_session *s)
{
	struct pop3_retr *r = &s->retr;
	char *spare = r->buf;

	r->buf = r->next;
	r->len = r->next_len;
	r->off = 0;
	r->next = spare;
	r->next_ready = false;
	r->chunk++;
	return r->chunk < s->msgs[r->msg].nchunks ? pop3__retr_ask(s) : 0;
}

/* The first chunk could not be read: gone since login, or the store (or
 * its full read lane) cannot now. */
static void pop3__retr_unavailable(struct pop3_session *s, int e)
{
	if (e == -PST_ENOTFOUND)
		pop3_reply_err(s->io, "[SYS/TEMP] Message %u is no longer "
			       "available", s->retr.msg + 1);
	else
		pop3_reply_err(s->io, "[SYS/TEMP] Message %u cannot be read "
			       "now; try again later", s->retr.msg + 1);
}

/* The first chunk is there (or the body is empty): the status line, then
 * the body. */
static void pop3__retr_go(struct pop3_session *s)
{
	struct pop3_retr *r = &s->retr;

	if (r->top)
		pop3_reply_ok(s->io, "Top of message follows");
	else
		pop3_reply_ok(s->io, "%llu octets",
			      (unsigned long long)s->msgs[r->msg].size);
	r->active = true;
	io_conn_pause(s->io);
	pop3_retr_pump(s);
}

static void pop3__retr_failed(struct pop3_session *s, int e)
{
	struct pop3_retr *r = &s->retr;

	/* The reply has begun: all we can do is drop the connection rather
	 * than send a lie. */
	log_event(LOGL_ERR, s->id, "retr_failed", "uid=%llu error=\"%s\"",
		  (unsigned long long)s->msgs[r->msg].uid, pst_strerror(e));
	r->active = false;
	pop3_session_end(s);
}

static void pop3__retr_arrived(void *sess, void *arg, int result)
{
	struct pop3_session *s = sess;
	struct retr_job *j = arg;
	struct pop3_retr *r;

	if (s)
		s->retr.in_flight--;
	if (!s || io_conn_closing(s->io) || j->gen != s->retr.gen) {
		free(j->buf);   /* gone, or a TOP that ended before it */
		free(j);
		return;
	}
	r = &s->retr;
	r->fetching = false;
	r->records += j->records;
	free(r->next);
	r->next = j->buf;
	r->next_len = j->len;
	free(j);
	if (result && !r->active) {   /* the first chunk: before +OK */
		pop3__retr_unavailable(s, result);
		io_conn_resume(s->io);
		return;
	}
	if (result) {
		pop3__retr_failed(s, result);
		return;
	}
	r->next_ready = true;
	if (!r->active)
		pop3__retr_go(s);
	else
		pop3_retr_pump(s);
	io_conn_flush(s->io);
}

void pop3_retr_begin(struct pop3_session *s, uint32_t msg, bool top,
		     uint64_t lines)
{
	struct pop3_retr *r = &s->retr;
	bool empty = s->msgs[msg].nchunks == 0;
	int e;

	r->msg = msg;
	r->chunk = 0;
	r->records = 0;
	r->len = r->off = 0;
	r->top = top;
	r->count = !top;
	r->line_start = true;
	r->next_ready = false;
	pop3_top_init(&r->lines, lines);
	/* The first chunk before "+OK": a message removed since login (by an
	 * administrator) gets an -ERR, not a broken reply. */
	if (!store_reads_on_lane(pop3d.store) || empty) {
		if (!empty && (e = pop3__retr_fetch(s))) {
			pop3__retr_unavailable(s, e);
			return;
		}
		pop3__retr_go(s);
		return;
	}
	io_conn_pause(s->io);   /* pop3__retr_arrived answers */
	if ((e = pop3__retr_ask(s))) {
		pop3__retr_unavailable(s, e);
		io_conn_resume(s->io);
	}
}

/* whole: the message was sent to its end (RETR, or a TOP that asked for
 * more lines than the body has), so the blank line the snapshot counted in
 * its size is due. */
static void pop3__retr_finish(struct pop3_session *s, bool whole)
{
	struct pop3_retr *r = &s->retr;

	if (!r->line_start)
		io_conn_write(s->io, "\r\n", 2);
	if (whole && s->msgs[r->msg].blank_added) {
		io_conn_write(s->io, "\r\n", 2);
		s->bytes_out += 2;
	}
	io_conn_write(s->io, ".\r\n", 3);
	/* What the reply cost the store, for test_pop3_bigbox.py. */
	log_event(LOGL_DEBUG, s->id, "retr", "uid=%llu chunks=%u "
		  "records_read=%llu", (unsigned long long)s->msgs[r->msg].uid,
		  r->chunk, (unsigned long long)r->records);
	if (r->count) {
		s->msgs[r->msg].retrieved = true;
		s->n_retrieved++;
	}
	r->active = false;
	free(r->buf);
	r->buf = NULL;
	/* A TOP may end with a chunk still being read ahead: its answer is
	 * told apart by gen and frees its own buffer. */
	r->gen++;
	r->fetching = r->next_ready = false;
	free(r->next);
	r->next = NULL;
	io_conn_resume(s->io);
}

/* Write one line piece (up to and including '\n', or the slice end). */
static void pop3__retr_piece(struct pop3_session *s, char *p, size_t n)
{
	if (s->cfg->pop3d.nul_to_0x80)
		for (char *z = memchr(p, '\0', n); z;
		     z = memchr(z, '\0', n - (size_t)(z - p)))
			*z = (char)0x80;
	io_conn_write(s->io, p, n);
	s->bytes_out += n;
}

void pop3_retr_pump(struct pop3_session *s)
{
	struct pop3_retr *r = &s->retr;

	while (r->active && io_conn_writable(s->io)) {
		size_t end;

		if (r->off == r->len) {
			int e;

			if (r->chunk == s->msgs[r->msg].nchunks) {
				pop3__retr_finish(s, true);
				return;
			}
			if (!store_reads_on_lane(pop3d.store)) {
				e = pop3__retr_fetch(s);
			} else if (!r->next_ready) {
				/* Not read yet: its arrival pumps again. */
				if (!r->fetching && (e = pop3__retr_ask(s)))
					pop3__retr_failed(s, e);
				return;
			} else {
				e = pop3__retr_advance(s);
			}
			if (e) {
				pop3__retr_failed(s, e);
				return;
			}
		}
		end = r->off + RETR_SLICE < r->len ? r->off + RETR_SLICE : r->len;
		while (r->off < end) {
			char *p = r->buf + r->off;
			char *lf = memchr(p, '\n', end - r->off);
			size_t n = lf ? (size_t)(lf - p) + 1 : end - r->off;

			if (r->line_start && p[0] == '.')
				io_conn_write(s->io, ".", 1);   /* dot-stuffing */
			pop3__retr_piece(s, p, n);
			r->off += n;
			r->line_start = lf != NULL;
			/* The line state lives in r->lines, not in this slice:
			 * a line, or the header's blank line, may be cut by the
			 * slice or chunk end. */
			if (r->top && pop3_top_feed(&r->lines, p, n)) {
				pop3__retr_finish(s, false);
				return;
			}
		}
	}
}
