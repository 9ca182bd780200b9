/* pop3_args.c — see pop3_args.h. */
#include <string.h>

#include "common/config.h"
#include "pop3d/pop3_args.h"

enum pop3_args_err pop3_args_msgno(const char *args, uint32_t *msgno)
{
	uint64_t n;

	if (!*args)
		return POP3_ARGS_MISSING;
	if (cfg_parse_uint(args, 1, UINT32_MAX, &n))
		return POP3_ARGS_MSGNO;
	*msgno = (uint32_t)n;
	return POP3_ARGS_OK;
}

enum pop3_args_err pop3_args_top(const char *args, uint32_t *msgno,
				 uint64_t *lines)
{
	const char *sp = strchr(args, ' ');
	char num[16];
	size_t n;
	uint64_t v;

	if (!sp || !*args)
		return POP3_ARGS_MISSING;
	n = (size_t)(sp - args);
	if (n == 0 || n >= sizeof(num))
		return POP3_ARGS_MSGNO;
	memcpy(num, args, n);
	num[n] = '\0';
	if (cfg_parse_uint(num, 1, UINT32_MAX, &v))
		return POP3_ARGS_MSGNO;
	if (cfg_parse_uint(sp + 1, 0, UINT64_MAX, lines))
		return POP3_ARGS_COUNT;
	*msgno = (uint32_t)v;
	return POP3_ARGS_OK;
}

void pop3_args_auth(char *args, char **mech, char **initial)
{
	char *sp = strchr(args, ' ');

	*mech = args;
	*initial = NULL;
	if (sp) {
		*sp = '\0';
		*initial = sp + 1;
	}
}
