/* smtp_data.h — DATA and BDAT: the commands and the octets that follow.
 * Threading: the session's loop thread. */
#ifndef POSTERN_SMTP_DATA_H
#define POSTERN_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_session;

int smtp_data_check(struct smtp_session *s, char *args);
void smtp_data_begin(struct smtp_session *s);
void smtp_data_on_line(struct smtp_session *s, char *p, size_t len,
		       bool partial);
void smtp_bdat_cmd(struct smtp_session *s, char *args);
void smtp_bdat_on_data(struct smtp_session *s, char *p, size_t len);

#endif
