/* dkim_verify — libopendkim's verifier over a message on stdin, with the
 * public keys read from a file instead of DNS (lines "SELECTOR._domainkey.
 * DOMAIN TXT-TEXT", what `postern dkim keygen` prints, unquoted). It is
 * opendkim-testmsg's verifying half with DKIM_QUERY_FILE, which that tool
 * does not expose. Prints "pass DOMAIN SELECTOR ALG" and exits 0 for a good
 * signature; anything else prints why and exits 1. For the tests only. */
#include <opendkim/dkim.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	dkim_query_t q = DKIM_QUERY_FILE;
	size_t cap = 1 << 20, len = 0, n;
	char *buf = malloc(cap);
	DKIM_SIGINFO *sig;
	DKIM_STAT st;
	DKIM_LIB *lib;
	DKIM *d;
	int alg = -1, ret = 0;

	if (argc != 2 || !buf) {
		fprintf(stderr, "usage: dkim_verify KEYFILE < message\n");
		return 2;
	}
	while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len == cap && !(buf = realloc(buf, cap *= 2)))
			return 2;
	}
	lib = dkim_init(NULL, NULL);
	if (!lib || dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD,
				 &q, sizeof(q)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, argv[1],
			 strlen(argv[1])) != DKIM_STAT_OK) {
		fprintf(stderr, "dkim_verify: libopendkim setup failed\n");
		return 2;
	}
	d = dkim_verify(lib, (const unsigned char *)"test", NULL, &st);
	if (d && st == DKIM_STAT_OK)
		st = dkim_chunk(d, (unsigned char *)buf, len);
	if (d && st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (d && st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	sig = d ? dkim_getsignature(d) : NULL;
	if (sig)
		dkim_sig_getsignalg(sig, &alg);
	if (st != DKIM_STAT_OK || !sig ||
	    !(dkim_sig_getflags(sig) & DKIM_SIGFLAG_PASSED) ||
	    dkim_sig_getbh(sig) != DKIM_SIGBH_MATCH) {
		printf("fail %s%s%s\n", dkim_getresultstr(st),
		       d && dkim_geterror(d) ? ": " : "",
		       d && dkim_geterror(d) ? dkim_geterror(d) : "");
		ret = 1;
	} else {
		printf("pass %s %s %s\n", dkim_sig_getdomain(sig),
		       dkim_sig_getselector(sig),
		       alg == DKIM_SIGN_ED25519SHA256 ? "ed25519-sha256" :
		       alg == DKIM_SIGN_RSASHA256 ? "rsa-sha256" : "other");
	}
	if (d)
		dkim_free(d);
	dkim_close(lib);
	free(buf);
	return ret;
}
