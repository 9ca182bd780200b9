/* webd_page.c — see webd_page.h. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "webd/webd_page.h"

static const struct { enum webd_menu m; const char *path, *label; }
webd_page__menu[] = {
	{ WEBD_M_ACCOUNT, "/account", "Account" },
	{ WEBD_M_POP, "/account/pop", "POP download" },
	{ WEBD_M_APPS, "/account/app-passwords", "App passwords" },
	{ WEBD_M_PASSWORD, "/account/password", "Password" },
	{ WEBD_M_TWOSTEP, "/account/two-step", "2-Step Verification" },
	{ WEBD_M_ADMIN, "/admin", "Administration" },
};

void webd_page_begin(struct wbuf *b, const char *title,
		     const struct webd_page_who *who, enum webd_menu cur)
{
	wbuf_printf(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		    "<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
		    "content=\"width=device-width, initial-scale=1\">\n"
		    "<title>");
	wbuf_esc(b, title);
	wbuf_printf(b, " · Postern</title>\n<link rel=\"stylesheet\" "
		    "href=\"%s\">\n</head>\n<body>\n<header>\n"
		    "<span class=\"brand\">Postern</span>\n", WEBD_PAGE_CSS_PATH);
	if (who && who->address) {
		webd_page_form(b, "signout", "/signout", who->csrf, NULL);
		wbuf_printf(b, "<span class=\"who\">");
		wbuf_esc(b, who->address);
		wbuf_printf(b, "</span> <button type=\"submit\">Sign out</button>"
			    "</form>\n</header>\n<nav>\n");
		for (size_t i = 0; i < sizeof(webd_page__menu) /
				       sizeof(webd_page__menu[0]); i++) {
			if (webd_page__menu[i].m == WEBD_M_ADMIN && !who->admin)
				continue;
			wbuf_printf(b, "<a href=\"%s\"%s>%s</a>\n",
				    webd_page__menu[i].path,
				    webd_page__menu[i].m == cur
				    ? " aria-current=\"page\"" : "",
				    webd_page__menu[i].label);
		}
		wbuf_printf(b, "</nav>\n");
	} else {
		wbuf_printf(b, "</header>\n");
	}
	wbuf_printf(b, "<main>\n<h1>");
	wbuf_esc(b, title);
	wbuf_printf(b, "</h1>\n");
}

void webd_page_end(struct wbuf *b)
{
	wbuf_printf(b, "</main>\n</body>\n</html>\n");
}

void webd_page_msg(struct wbuf *b, const char *kind, const char *text)
{
	wbuf_printf(b, "<p class=\"msg %s\" role=\"status\">", kind);
	wbuf_esc(b, text);
	wbuf_printf(b, "</p>\n");
}

void webd_page_form(struct wbuf *b, const char *cls, const char *path,
		    const char *csrf, const char *action)
{
	wbuf_printf(b, "<form class=\"%s\" method=\"post\" action=\"%s\">",
		    cls, path);
	webd_page_csrf(b, csrf);
	if (action)
		wbuf_printf(b, "<input type=\"hidden\" name=\"action\" "
			    "value=\"%s\">", action);
	wbuf_printf(b, "\n");
}

void webd_page_csrf(struct wbuf *b, const char *csrf)
{
	wbuf_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
	wbuf_esc(b, csrf ? csrf : "");
	wbuf_printf(b, "\">");
}

void webd_page_radio(struct wbuf *b, const char *name, const char *value,
		     bool on, const char *label)
{
	wbuf_printf(b, "<label class=\"choice\"><input type=\"radio\" "
		    "name=\"%s\" value=\"%s\"%s> ", name, value,
		    on ? " checked" : "");
	wbuf_esc(b, label);
	wbuf_printf(b, "</label>\n");
}

void webd_page_time(struct wbuf *b, uint64_t unix_s)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	char out[40];

	if (!unix_s || !gmtime_r(&t, &tm)) {
		wbuf_printf(b, "never");
		return;
	}
	strftime(out, sizeof(out), "%Y-%m-%d %H:%M UTC", &tm);
	wbuf_printf(b, "%s", out);
}

void webd_page_time_from(struct wbuf *b, uint64_t unix_s, const char *addr)
{
	webd_page_time(b, unix_s);
	if (unix_s && addr[0]) {
		wbuf_printf(b, " from ");
		wbuf_esc(b, addr);
	}
}

const char webd_page_css[] =
	"*{box-sizing:border-box}\n"
	"body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\","
	"Roboto,sans-serif;color:#1f2328;background:#f6f7f9}\n"
	"header{display:flex;flex-wrap:wrap;align-items:center;"
	"justify-content:space-between;gap:.5rem;padding:.75rem 1rem;"
	"background:#1d3557;color:#fff}\n"
	".brand{font-weight:700;font-size:1.2rem;letter-spacing:.02em}\n"
	".signout{display:flex;align-items:center;gap:.5rem;margin:0;"
	"flex-wrap:wrap}\n"
	".who{overflow-wrap:anywhere}\n"
	".signout button{background:#fff;color:#1d3557;border:0}\n"
	"nav{display:flex;flex-wrap:wrap;gap:.25rem;padding:.5rem 1rem;"
	"background:#e7ecf3;border-bottom:1px solid #d0d7de}\n"
	"nav a{padding:.4rem .7rem;border-radius:.4rem;color:#1d3557;"
	"text-decoration:none}\n"
	"nav a[aria-current]{background:#1d3557;color:#fff}\n"
	"main{max-width:46rem;margin:0 auto;padding:1rem}\n"
	"h1{font-size:1.5rem;margin:.5rem 0 1rem}\n"
	"h2{font-size:1.15rem;margin:1.5rem 0 .5rem}\n"
	"section,form.card{background:#fff;border:1px solid #d0d7de;"
	"border-radius:.5rem;padding:1rem;margin:0 0 1rem}\n"
	"fieldset{border:0;margin:0 0 1rem;padding:0}\n"
	"legend{font-weight:600;margin-bottom:.3rem}\n"
	"label{display:block;margin:.3rem 0}\n"
	"label.choice{display:flex;gap:.5rem;align-items:flex-start}\n"
	"label.choice input{margin-top:.35rem}\n"
	"input[type=text],input[type=email],input[type=password],"
	"input[type=number],select{display:block;width:100%;max-width:24rem;"
	"padding:.5rem;font:inherit;border:1px solid #8c959f;"
	"border-radius:.35rem;background:#fff}\n"
	"button{font:inherit;padding:.5rem 1rem;border-radius:.35rem;"
	"white-space:nowrap;"
	"border:1px solid #1d3557;background:#1d3557;color:#fff;"
	"cursor:pointer}\n"
	"button.danger{background:#fff;color:#b42318;border-color:#b42318}\n"
	".msg{padding:.6rem .8rem;border-radius:.4rem;margin:0 0 1rem}\n"
	".msg.ok{background:#e6f4ea;border:1px solid #9ccfa8}\n"
	".msg.error{background:#fdecea;border:1px solid #f1a7a0}\n"
	".hint{color:#57606a;font-size:.9rem}\n"
	".secret{font:1.4rem/1.4 ui-monospace,monospace;letter-spacing:.05em;"
	"background:#fff8c5;padding:.5rem .8rem;border-radius:.4rem;"
	"display:inline-block;overflow-wrap:anywhere}\n"
	"table{border-collapse:collapse;width:100%}\n"
	"th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid "
	"#d0d7de;vertical-align:top;overflow-wrap:break-word}\n"
	".wide{overflow-x:auto}\n"
	".inline{display:inline;margin:0}\n"
	".qr{width:14rem;max-width:100%;height:auto;background:#fff}\n"
	"ul.changes{margin:.3rem 0 0;padding-left:1.2rem}\n"
	"ul.codes{list-style:none;padding:0;display:grid;gap:.5rem;"
	"grid-template-columns:repeat(auto-fill,minmax(10rem,1fr))}\n"
	"ul.codes li{text-align:center;font-size:1.15rem}\n"
	"section>h2:first-child,section>p:first-child{margin-top:0}\n"
	"td.addr{overflow-wrap:anywhere}\n"
	/* Lists of records: rows of cells on a desktop, one card per record
	 * (each value after its column's name) on a phone. */
	"@media (max-width:40rem){main{padding:.75rem}"
	"table.stack tr.head{display:none}"
	"table.stack,table.stack tbody,table.stack tr,table.stack td{"
	"display:block;width:100%}"
	"table.stack tr{border-bottom:1px solid #d0d7de;padding:.5rem 0}"
	"table.stack td{border:0;padding:.1rem 0}"
	"table.stack td[data-label]::before{content:attr(data-label) \": \";"
	"font-weight:600}}\n";
