/* relay_reply.c — see relay_reply.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "submitd/relay_reply.h"

void relay_reply_init(struct relay_reply *r)
{
	memset(r, 0, sizeof(*r));
}

static bool relay_reply__digit(char c, char lo, char hi)
{
	return c >= lo && c <= hi;
}

/* "5.1.1 " at the start of text; class must match the reply's. Returns the
 * octets it takes (with the space), 0 if there is none. */
static size_t relay_reply__enh(const char *p, size_t len, int code,
			       unsigned out[3])
{
	size_t i = 0;

	for (int part = 0; part < 3; part++) {
		size_t start = i;
		unsigned v = 0;

		while (i < len && i - start < 3 && p[i] >= '0' && p[i] <= '9')
			v = v * 10 + (unsigned)(p[i++] - '0');
		if (i == start || (part == 0 && i - start != 1))
			return 0;
		out[part] = v;
		if (part < 2) {
			if (i >= len || p[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && p[i] != ' ')
		return 0;
	if (out[0] != (unsigned)(code / 100))
		return 0;
	return i < len ? i + 1 : i;
}

int relay_reply_line(struct relay_reply *r, const char *line, size_t len)
{
	int code;
	bool last;
	size_t tlen;

	if (r->done)
		return -EINVAL;
	if (len < 3 || !relay_reply__digit(line[0], '2', '5') ||
	    !relay_reply__digit(line[1], '0', '5') ||
	    !relay_reply__digit(line[2], '0', '9'))
		return -PST_EPROTO;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -PST_EPROTO;
	for (size_t i = 3; i < len; i++)
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') ||
		    line[i] == 0x7f)
			return -PST_EPROTO;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines && code != r->code)
		return -PST_EPROTO;
	if (r->nlines >= RELAY_REPLY_LINES_MAX)
		return -PST_EPROTO;
	last = len == 3 || line[3] == ' ';
	line += len > 3 ? 4 : 3;
	len -= len > 3 ? 4 : 3;
	if (r->nlines == 0) {
		r->code = code;
		size_t k = relay_reply__enh(line, len, code, r->enh);

		r->has_enh = k > 0;
		if (!r->has_enh)
			memset(r->enh, 0, sizeof(r->enh));
	}
	/* Keep the text while it fits; offsets stay < RELAY_REPLY_TEXT_MAX. */
	if (r->nlines && r->text_len + 1 < sizeof(r->text))
		r->text[r->text_len++] = '\n';
	r->lines[r->nlines++] = (unsigned short)r->text_len;
	tlen = sizeof(r->text) - 1 - r->text_len;
	if (len < tlen)
		tlen = len;
	memcpy(r->text + r->text_len, line, tlen);
	r->text_len += tlen;
	r->text[r->text_len] = '\0';
	r->done = last;
	return last ? 1 : 0;
}

const char *relay_reply_text(const struct relay_reply *r, unsigned i,
			     char *buf, size_t cap)
{
	const char *p, *end;
	size_t n;

	if (i >= r->nlines || cap == 0)
		return cap ? (buf[0] = '\0', buf) : "";
	p = r->text + r->lines[i];
	end = strchr(p, '\n');
	n = end ? (size_t)(end - p) : strlen(p);
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

bool relay_reply_has_ext(const struct relay_reply *r, const char *kw,
			 char *params, size_t cap)
{
	size_t kl = strlen(kw);

	for (unsigned i = 1; i < r->nlines; i++) {
		char line[512];

		relay_reply_text(r, i, line, sizeof(line));
		if (strncasecmp(line, kw, kl) != 0 ||
		    (line[kl] != '\0' && line[kl] != ' ' && line[kl] != '='))
			continue;
		if (params && cap)
			snprintf(params, cap, "%s",
				 line[kl] ? line + kl + 1 : "");
		return true;
	}
	return false;
}

void relay_reply_summary(const struct relay_reply *r, char *out, size_t cap)
{
	char last[400];

	relay_reply_text(r, r->nlines ? r->nlines - 1 : 0, last, sizeof(last));
	if (r->has_enh && r->nlines > 1 && !(last[0] >= '0' && last[0] <= '9')) {
		/* the enhanced code is on the first line only */
		snprintf(out, cap, "%d %u.%u.%u %s", r->code, r->enh[0],
			 r->enh[1], r->enh[2], last);
		return;
	}
	snprintf(out, cap, "%d %s", r->code, last);
}
