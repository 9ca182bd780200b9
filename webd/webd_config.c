/* webd_config.c — see webd_config.h. */
#include <stdio.h>
#include <string.h>

#include "webd/webd_config.h"

int webd_config_load(const char *path, struct postern_config *cfg,
		     struct webd_config *w, char err[CFG_ERR_MAX])
{
	int r;

	path = path ? path : CFG_DEFAULT_FILE;
	if ((r = cfg_load(cfg, path, err)))
		return r;
	memset(w, 0, sizeof(*w));
	w->listen_https = cfg->webd.listen_https;
	w->listen_http = cfg->webd.listen_http;
	w->workers = cfg->webd.workers;
	snprintf(w->user, sizeof(w->user), "%s", cfg->webd.user);
	w->log_level = cfg->webd.log_level;
	w->request_timeout = cfg->webd.request_timeout;
	w->request_max = cfg->webd.request_max;
	return 0;
}
