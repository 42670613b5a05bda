/*
 * conntrackd: one binary, three roles (spec config-and-cli.md §0.1): daemon
 * (console or -d), client (one request over the control socket), and the
 * configuration test -T. The start-up order follows §6.1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "ctd.h"
#include "ctl.h"
#include "log.h"
#include "sync.h"

/* conf_load() reports on FILE streams; each line becomes a log line so it
 * gets the usual prefix and console routing. */
static void relay(char *text, size_t len, enum log_level lvl)
{
	char *line = text, *nl;

	while (line < text + len && *line) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line)
			log_msg(lvl, "%s", line);
		if (!nl)
			break;
		line = nl + 1;
	}
}

static struct ctd_conf *load(const char *path)
{
	char *etext = NULL, *wtext = NULL;
	size_t elen = 0, wlen = 0;
	FILE *e = open_memstream(&etext, &elen);
	FILE *w = open_memstream(&wtext, &wlen);
	struct ctd_conf *conf;

	if (!e || !w) {
		if (e)
			fclose(e);
		if (w)
			fclose(w);
		return conf_load(path, stderr, stderr);
	}
	conf = conf_load(path, e, w);
	fclose(e);
	fclose(w);
	relay(wtext, wlen, LOG_LVL_WARNING);
	relay(etext, elen, LOG_LVL_ERROR);
	free(etext);
	free(wtext);
	return conf;
}

static int open_logs(const struct ctd_conf *conf, bool console)
{
	if (log_open(conf->logfile, conf->syslog_facility, console) < 0) {
		fprintf(stderr, "ERROR: can't open logfile `%s'.Reason: %s\n",
			conf->logfile, strerror(errno));
		return -1;
	}
	if (conf->has_stats &&
	    log_open_stats(conf->stats_logfile, conf->stats_syslog_facility) < 0) {
		fprintf(stderr, "ERROR: can't open logfile `%s'.Reason: %s\n",
			conf->stats_logfile, strerror(errno));
		return -1;
	}
	return 0;
}

static int init_failed(struct ctd *d)
{
	log_err("conntrackd cannot start, please review your configuration");
	ctl_close(d);
	if (d->sync)
		sync_fini(d);
	if (d->stats)
		stats_mode_fini(d);
	daemon_unlock(d);
	log_close();
	ev_free(d->loop);
	return 1;
}

/* DECISIONS.md: user-space helpers are parsed but not implemented. */
static bool helper_refused(const struct ctd_conf *conf)
{
	int line = conf->nhelpers ? conf->helpers[0].line : 0;

	if (!conf->has_helper)
		return false;
	if (line > 0)
		log_err("%s:%d: Helper sections (user-space helpers) are not "
			"supported by this conntrackd", conf->file, line);
	else
		log_err("%s: Helper sections (user-space helpers) are not "
			"supported by this conntrackd", conf->file);
	return true;
}

static int run_daemon(struct ctd_conf *conf, bool background)
{
	struct ctd d = { 0 };
	int r;

	if (helper_refused(conf))
		return 1;
	d.conf = conf;
	d.console = !background;
	ev_timer_init(&d.watchdog, NULL, NULL);
	if (open_logs(conf, d.console) < 0)
		return 1;
	d.loop = ev_new();
	if (!d.loop) {
		log_err("can't allocate memory for the event loop");
		return 1;
	}
	if (daemon_lock(&d) < 0) {
		log_close();
		ev_free(d.loop);
		return 1;
	}
	daemon_sched(conf);
	if (ctl_open(&d) < 0 || daemon_signals(&d) < 0)
		return init_failed(&d);
	if (conf->has_sync) {
		if (sync_init(&d) < 0)
			return init_failed(&d);
	} else if (conf->has_stats) {
		if (stats_mode_init(&d) < 0)
			return init_failed(&d);
	}
	d.started = time(NULL);
	log_notice("initialization completed");

	daemon_watchdog_prepare(&d);
	r = daemon_fork(&d);
	if (r < 0)
		return init_failed(&d);
	if (r > 0)
		_exit(0);       /* parent: the child owns socket, lock and caches */
	log_notice("-- starting in %s mode --", d.console ? "console" : "daemon");
	daemon_notify(&d, "READY=1");
	daemon_watchdog_start(&d);
	if (d.sync && conf->startup_resync)
		sync_request_resync(&d);

	if (ev_run(d.loop) < 0) {
		log_err("select() keeps failing: %s", strerror(errno));
		d.exit_status = 1;
	}
	return daemon_finish(&d);
}

int main(int argc, char **argv)
{
	struct ctd_conf *conf;
	struct cli o;
	int r;

	r = cli_parse(&o, argc, argv, stdout);
	if (r >= 0)
		return r;
	umask(0177);
	conf = load(o.conf);
	if (!conf)
		return 1;

	switch (o.role) {
	case CLI_REQUEST:
		r = ctl_request(conf->unix_path, o.req);
		break;
	case CLI_CONFTEST:
		conf_print(conf, stdout);
		r = fflush(stdout) == 0 && !helper_refused(conf) ? 0 : 1;
		break;
	default:
		r = run_daemon(conf, o.role == CLI_DAEMON);
		break;
	}
	conf_free(conf);
	return r;
}
