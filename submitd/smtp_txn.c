/* smtp_txn.c — see smtp_txn.h. */
#include <stdlib.h>
#include <string.h>

#include "submitd/smtp_body.h"
#include "submitd/smtp_txn.h"

void smtp_txn_reset(struct smtp_txn *t)
{
	free(t->rcpts);
	smtp_body_free(&t->body);
	memset(t, 0, sizeof(*t));
}
