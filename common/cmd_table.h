/* cmd_table.h — the verb lookup both protocol engines share.
 *
 * A command table is an array of protocol-specific structs whose first
 * member is `const char *verb` (upper case); the engines keep their own
 * typed check/proceed functions and reply texts, and this finds the entry:
 * the verb is the line up to the first space, matched case-insensitively,
 * and at most verb_max octets; *args points past the one space after it
 * (RFC 1939: PASS takes the rest of the line, spaces included).
 * Threading: reentrant. */
#ifndef POSTERN_CMD_TABLE_H
#define POSTERN_CMD_TABLE_H

#include <stddef.h>

/* The entry for line's verb, or NULL (unknown). *verb_len is the length of
 * what the client sent as its verb, for logging an unknown one. */
const void *cmd_table_find(const void *table, size_t n, size_t stride,
			   size_t verb_max, char *line, size_t *verb_len,
			   char **args);

#define CMD_TABLE_FIND(table, verb_max, line, verb_len, args)               \
	((const __typeof__(*(table)) *)cmd_table_find(                      \
		(table), sizeof(table) / sizeof(*(table)), sizeof(*(table)),\
		(verb_max), (line), (verb_len), (args)))

#endif
