/* webd_acct_pop.c — the POP download page, in the words of the provider
 * pages people know ("Enable POP for all mail", "When messages are
 * accessed with POP ..."). The next POP3 session reads the account record
 * at login, so a saved change applies from the next session on. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/err.h"
#include "webd/webd_acct_int.h"

struct webd_choice { const char *word, *label; };

/* Indexed by the store's enums; the words are the CLI's. */
static const struct webd_choice webd_pop__access[] = {
	[STORE_POP_ALL] = { "all", "Enable POP for all mail (even mail "
			    "that's already been downloaded)" },
	[STORE_POP_SINCE_NOW] = { "since-now", "Enable POP for mail that "
				  "arrives from now on" },
	[STORE_POP_OFF] = { "off", "Disable POP" },
};
static const struct webd_choice webd_pop__after[] = {
	[STORE_AFTER_KEEP] = { "keep", "keep Postern's copy in the Inbox" },
	[STORE_AFTER_READ] = { "read", "mark Postern's copy as read" },
	[STORE_AFTER_ARCHIVE] = { "archive", "archive Postern's copy" },
	[STORE_AFTER_DELETE] = { "delete", "delete Postern's copy" },
};
static const struct webd_choice webd_pop__spam[] = {
	[STORE_SPAM_EXCLUDE] = { "exclude", "Leave spam messages out of POP "
				 "download" },
	[STORE_SPAM_INCLUDE] = { "include", "Include spam messages in POP "
				 "download" },
	[STORE_SPAM_ONLY] = { "only", "Download only spam messages" },
};
static const struct webd_choice webd_pop__mode[] = {
	[STORE_MODE_STANDARD] = { "standard", "Standard: a message is offered "
				  "until your mail client deletes it" },
	[STORE_MODE_ONCE] = { "once", "Once: a message your mail client has "
			      "downloaded is not offered again" },
};

#define WEBD_N(a) (sizeof(a) / sizeof((a)[0]))

/* The display order of the status choices. */
static const uint8_t webd_pop__access_order[] = { STORE_POP_ALL,
	STORE_POP_SINCE_NOW, STORE_POP_OFF };
static const uint8_t webd_pop__after_order[] = { STORE_AFTER_KEEP,
	STORE_AFTER_READ, STORE_AFTER_ARCHIVE, STORE_AFTER_DELETE };

static void webd_pop__group(struct wbuf *b, const char *legend,
			    const char *name, const struct webd_choice *c,
			    const uint8_t *order, size_t n, unsigned cur)
{
	wbuf_printf(b, "<fieldset>\n<legend>%s</legend>\n", legend);
	for (size_t i = 0; i < n; i++) {
		unsigned v = order ? order[i] : (unsigned)i;

		webd_page_radio(b, name, c[v].word, v == cur, c[v].label);
	}
	wbuf_printf(b, "</fieldset>\n");
}

void webd_pop_fields(struct wbuf *b, const struct store_pop *pop)
{
	webd_pop__group(b, "Status", "pop", webd_pop__access,
			webd_pop__access_order, WEBD_N(webd_pop__access_order),
			pop->access);
	webd_pop__group(b, "When messages are accessed with POP", "after",
			webd_pop__after, webd_pop__after_order,
			WEBD_N(webd_pop__after_order), pop->after);
	webd_pop__group(b, "Spam", "spam", webd_pop__spam, NULL,
			WEBD_N(webd_pop__spam), pop->spam);
	webd_pop__group(b, "Download mode", "mode", webd_pop__mode, NULL,
			WEBD_N(webd_pop__mode), pop->mode);
	wbuf_printf(b, "<fieldset>\n<legend>Messages per POP session</legend>\n"
		    "<label for=\"limit\">Offer at most this many messages "
		    "each time your mail client checks (0: all)</label>\n"
		    "<input type=\"number\" id=\"limit\" name=\"limit\" min=\"0\" "
		    "max=\"100000\" value=\"%u\">\n</fieldset>\n",
		    pop->list_limit);
}

void webd_pop_form(struct wbuf *b, const struct store_pop *pop,
		   const char *csrf, const char *action, const char *hidden_addr)
{
	/* An administrator's form is one action of several. */
	webd_page_form(b, "card", action, csrf, hidden_addr ? "pop" : NULL);
	if (hidden_addr) {
		wbuf_printf(b, "<input type=\"hidden\" name=\"address\" "
			    "value=\"");
		wbuf_esc(b, hidden_addr);
		wbuf_printf(b, "\">\n");
	}
	webd_pop_fields(b, pop);
	wbuf_printf(b, "<button type=\"submit\">Save Changes</button>\n"
		    "</form>\n");
}

int webd_pop_parse(const struct webd_form *f, struct store_pop *pop,
		   const char **bad)
{
	const char *v;
	uint64_t n;

	if ((v = webd_form_get(f, "pop")) &&
	    store_pop_access_parse(v, &pop->access))
		return *bad = "POP download", -EINVAL;
	if ((v = webd_form_get(f, "after")) &&
	    store_pop_after_parse(v, &pop->after))
		return *bad = "When messages are accessed with POP", -EINVAL;
	if ((v = webd_form_get(f, "spam")) &&
	    store_pop_spam_parse(v, &pop->spam))
		return *bad = "Spam", -EINVAL;
	if ((v = webd_form_get(f, "mode")) &&
	    store_pop_mode_parse(v, &pop->mode))
		return *bad = "Download mode", -EINVAL;
	if ((v = webd_form_get(f, "limit"))) {
		if (cfg_parse_uint(v, 0, 100000, &n))
			return *bad = "Messages per POP session (0 to 100000)",
			       -EINVAL;
		pop->list_limit = (uint32_t)n;
	}
	return 0;
}

static void webd_pop__li(struct wbuf *b, const char *what, const char *from,
			 const char *to)
{
	wbuf_printf(b, "<li>%s: ", what);
	wbuf_esc(b, from);
	wbuf_printf(b, " → ");
	wbuf_esc(b, to);
	wbuf_printf(b, "</li>\n");
}

unsigned webd_pop_diff(struct wbuf *b, const struct store_pop *o,
		       const struct store_pop *n)
{
	unsigned k = 0;

	if (o->access != n->access && ++k)
		webd_pop__li(b, "POP download", webd_pop__access[o->access].label,
			     webd_pop__access[n->access].label);
	if (o->after != n->after && ++k)
		webd_pop__li(b, "When messages are accessed with POP",
			     webd_pop__after[o->after].label,
			     webd_pop__after[n->after].label);
	if (o->spam != n->spam && ++k)
		webd_pop__li(b, "Spam", webd_pop__spam[o->spam].label,
			     webd_pop__spam[n->spam].label);
	if (o->mode != n->mode && ++k)
		webd_pop__li(b, "Download mode", webd_pop__mode[o->mode].label,
			     webd_pop__mode[n->mode].label);
	if (o->list_limit != n->list_limit && ++k) {
		char from[16], to[16];

		snprintf(from, sizeof(from), "%u", o->list_limit);
		snprintf(to, sizeof(to), "%u", n->list_limit);
		webd_pop__li(b, "Messages per POP session", from, to);
	}
	return k;
}

void webd_pop_words(const struct store_pop *p, char *out, size_t cap)
{
	snprintf(out, cap, "pop=%s pop-after=%s pop-spam=%s pop-mode=%s "
		 "pop-list-limit=%u", store_pop_access_name(p->access),
		 store_pop_after_name(p->after), store_pop_spam_name(p->spam),
		 store_pop_mode_name(p->mode), p->list_limit);
}

struct pop_set { uint64_t id; struct store_pop pop, old; };

static int webd_pop__write(struct store_write *w, void *arg)
{
	struct pop_set *ps = arg;
	struct store_account a;
	int e = store_account_get_by_id(store_write_reader(w), ps->id, &a);

	if (e)
		return e;
	ps->old = a.pop;
	/* "From now on" starts when it is chosen, not at each save. */
	if (ps->pop.access == STORE_POP_SINCE_NOW &&
	    a.pop.access != STORE_POP_SINCE_NOW)
		a.pop_since_uid = a.next_uid - 1;
	a.pop = ps->pop;
	return store_account_put(w, &a, false);
}

/* Saves pop for account id; the changes, as list items, into list. */
int webd_pop_save(struct webd_call *k, uint64_t id, const struct store_pop *pop,
		  struct wbuf *list, unsigned *changed)
{
	struct pop_set ps = { .id = id, .pop = *pop };
	char words[160];
	int e;

	if ((e = store_write(k->a->st, webd_pop__write, &ps)))
		return e;
	*changed = webd_pop_diff(list, &ps.old, pop);
	if (*changed) {
		webd_pop_words(pop, words, sizeof(words));
		webd_call_log_change(k, "pop", words);
	}
	return 0;
}

void webd_pop_domain_note(struct webd_call *k, const char *domain)
{
	struct store_domain d;
	struct store_read *r;

	if (store_read_begin(k->a->st, &r))
		return;
	if (store_domain_get(r, domain, &d) == 0 && !d.pop_allowed) {
		wbuf_printf(&k->page, "<p class=\"msg error\">POP is off for "
			    "every account of ");
		wbuf_esc(&k->page, domain);
		wbuf_printf(&k->page, ": an administrator of the domain has "
			    "disabled it. Your choices below are kept and apply "
			    "when it is enabled again.</p>\n");
	}
	store_read_end(r);
}

int webd_acct_pop(struct webd_call *k)
{
	struct store_pop pop = k->acct.pop;
	struct wbuf list = { 0 };
	const char *bad = NULL;
	unsigned changed = 0;
	int e = 0;

	if (k->post) {
		if (webd_pop_parse(k->form, &pop, &bad) == 0 &&
		    (e = webd_pop_save(k, k->acct.id, &pop, &list, &changed))) {
			wbuf_free(&list);
			return e;
		}
		if (!bad && (e = webd_call_reload(k))) {
			wbuf_free(&list);
			return e;
		}
	}
	webd_call_begin(k, "POP download", WEBD_M_POP);
	if (bad) {
		wbuf_printf(&k->page, "<p class=\"msg error\">Not saved: "
			    "choose a valid value for ");
		wbuf_esc(&k->page, bad);
		wbuf_printf(&k->page, ".</p>\n");
	} else if (k->post && changed) {
		wbuf_printf(&k->page, "<div class=\"msg ok\" role=\"status\">"
			    "Saved. Your mail client's next POP session "
			    "follows these settings. Changed:\n"
			    "<ul class=\"changes\">\n");
		wbuf_append(&k->page, list.p ? list.p : "", list.len);
		wbuf_printf(&k->page, "</ul></div>\n");
	} else if (k->post) {
		webd_page_msg(&k->page, "ok", "Saved; nothing was changed.");
	}
	wbuf_free(&list);
	webd_pop_domain_note(k, strrchr(k->acct.address, '@') + 1);
	webd_pop_form(&k->page, bad ? &pop : &k->acct.pop, k->sess.csrf,
		      "/account/pop", NULL);
	webd_page_end(&k->page);
	return 0;
}
