/* pop3_retr.c — RETR and TOP, streamed from the store a chunk at a time.
 *
 * Each chunk is copied out of a short read transaction (none is held while
 * the client reads), then written with dot-stuffing in slices while the
 * connection is writable; when it is not, streaming stops and on_drained
 * resumes it. Input processing is paused meanwhile, so pipelined commands
 * are answered in order. Memory per RETR: one chunk, whatever the message
 * size. Chunks are read by the body id the listing found: one lookup per
 * chunk, not the message record again for each (a body id is never
 * reused, so a message removed since login is either whole, while another
 * message shares its body, or gone: -ERR). The state of the line being sent (dot-stuffing, TOP's count in
 * pop3_top.c) carries from slice to slice and chunk to chunk. A message
 * stored without the header's blank line gets it at the end when
 * add_missing_blank_line is set; its snapshot size already counts it. */
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "pop3d/pop3_retr.h"
#include "pop3d/pop3_session.h"
#include "pop3d/pop3_top.h"

#define RETR_SLICE 16384

void pop3_retr_free(struct pop3_session *s)
{
	free(s->retr.buf);
	memset(&s->retr, 0, sizeof(s->retr));
}

static int pop3__retr_fetch(struct pop3_session *s);

int pop3_retr_prepare(struct pop3_session *s, uint32_t msg)
{
	struct pop3_retr *r = &s->retr;

	/* The first chunk before "+OK": a message removed since login (by an
	 * administrator) gets an -ERR, not a broken reply. */
	r->msg = msg;
	r->chunk = 0;
	r->records = 0;
	r->len = r->off = 0;
	return s->msgs[msg].nchunks ? pop3__retr_fetch(s) : 0;
}

void pop3_retr_start(struct pop3_session *s, uint32_t msg, bool top,
		     uint64_t lines)
{
	struct pop3_retr *r = &s->retr;

	r->active = true;
	r->top = top;
	r->count = !top;
	r->line_start = true;
	pop3_top_init(&r->lines, lines);
	io_conn_pause(s->io);
	pop3_retr_pump(s);
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
	io_conn_resume(s->io);
}

static int pop3__retr_fetch(struct pop3_session *s)
{
	struct pop3_retr *r = &s->retr;
	const struct pop3_msg *m = &s->msgs[r->msg];
	struct store_read *rd;
	const void *p;
	size_t n;
	int e;

	if (!r->buf && !(r->buf = malloc(STORE_CHUNK_SIZE)))
		return -ENOMEM;
	if ((e = store_read_begin(pop3d.store, &rd)))
		return e;
	e = store_body_read(rd, m->body_id, r->chunk, &p, &n);
	if (e == 0 && fails_assert(n <= STORE_CHUNK_SIZE))
		e = -PST_ECORRUPT;   /* a damaged store: this session only */
	if (e == 0)
		memcpy(r->buf, p, n);
	r->records += store_read_msgs(rd);
	store_read_end(rd);
	if (e)
		return e;
	r->len = n;
	r->off = 0;
	r->chunk++;
	return 0;
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
			if ((e = pop3__retr_fetch(s))) {
				/* The reply has begun: all we can do is drop
				 * the connection rather than send a lie. */
				log_event(LOGL_ERR, s->id, "retr_failed",
					  "uid=%llu error=\"%s\"",
					  (unsigned long long)s->msgs[r->msg].uid,
					  pst_strerror(e));
				r->active = false;
				pop3_session_end(s);
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
