/* pop3_args.h — POP3 command arguments (RFC 1939 3: arguments are
 * separated by one space; numbers are decimal digits, nothing else), as
 * pure functions with no I/O and no session. Whether a message number
 * names a message of the mailbox is the command's to check.
 * Threading: reentrant. */
#ifndef POSTERN_POP3_ARGS_H
#define POSTERN_POP3_ARGS_H

#include <stdint.h>

enum pop3_args_err {
	POP3_ARGS_OK = 0,
	POP3_ARGS_MISSING,      /* an argument is not there */
	POP3_ARGS_MSGNO,        /* the message number is not 1..2^32-1 */
	POP3_ARGS_COUNT,        /* TOP's line count is not 0..2^64-1 */
};

/* "n": LIST n, UIDL n, RETR, DELE. */
enum pop3_args_err pop3_args_msgno(const char *args, uint32_t *msgno);
/* "n lines": TOP. */
enum pop3_args_err pop3_args_top(const char *args, uint32_t *msgno,
				 uint64_t *lines);
/* "MECHANISM [initial-response]": AUTH. Cuts args in place; *initial is
 * NULL when there is none. */
void pop3_args_auth(char *args, char **mech, char **initial);

#endif
