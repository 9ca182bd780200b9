/* cmd_table.c — see cmd_table.h. */
#include <strings.h>
#include <string.h>

#include "common/cmd_table.h"
#include "common/contract.h"

const void *cmd_table_find(const void *table, size_t n, size_t stride,
			   size_t verb_max, char *line, size_t *verb_len,
			   char **args)
{
	size_t vlen;
	char *a;

	/* Every entry starts with its verb pointer. */
	REQUIRE((table || n == 0) && stride >= sizeof(const char *) && line &&
		verb_len && args);
	vlen = strcspn(line, " ");
	a = line + vlen;
	if (*a == ' ')   /* one: a POP3 password may begin with a space */
		a++;
	*verb_len = vlen;
	*args = a;
	if (vlen == 0 || vlen > verb_max)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *entry = (const char *)table + i * stride;
		const char *verb = *(const char *const *)(const void *)entry;

		if (strlen(verb) == vlen && strncasecmp(verb, line, vlen) == 0)
			return entry;
	}
	return NULL;
}
