/* Log sinks: console, LogFile and syslog, in the upstream line format. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct log_sink {
	FILE *fp;
	char  path[4096];
	int   facility;             /* -1 = no syslog */
};

/* The log is process-wide by nature (signal-free, single-threaded daemon). */
static struct {
	struct log_sink general, stats;
	bool console;
	bool opened;
} lg = { { NULL, "", -1 }, { NULL, "", -1 }, true, false };

static const char *const lvl_name[] = { "info", "notice", "warning", "ERROR" };
static const int lvl_prio[] = { LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR };

static void now_ctime(char *buf, size_t len)
{
	time_t t = time(NULL);
	char tmp[64];

	if (!ctime_r(&t, tmp)) {
		snprintf(buf, len, "?");
		return;
	}
	tmp[strcspn(tmp, "\n")] = '\0';
	snprintf(buf, len, "%s", tmp);
}

static FILE *open_append(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	FILE *fp;

	if (fd < 0)
		return NULL;
	fp = fdopen(fd, "a");
	if (!fp) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	setvbuf(fp, NULL, _IOLBF, 0);
	return fp;
}

static int sink_open(struct log_sink *s, const char *path, int facility)
{
	s->facility = facility;
	if (path && *path) {
		snprintf(s->path, sizeof(s->path), "%s", path);
		s->fp = open_append(path);
		if (!s->fp)
			return -1;
	}
	return 0;
}

int log_open(const char *logfile, int syslog_facility, bool console)
{
	lg.console = console;
	if (sink_open(&lg.general, logfile, syslog_facility) < 0)
		return -1;
	if (syslog_facility >= 0)
		openlog("conntrack-tools", LOG_PID, syslog_facility);
	lg.opened = true;
	return 0;
}

int log_open_stats(const char *logfile, int syslog_facility)
{
	if (syslog_facility >= 0 && lg.general.facility < 0)
		openlog("conntrack-tools", LOG_PID, syslog_facility);
	return sink_open(&lg.stats, logfile, syslog_facility);
}

static int sink_reopen(struct log_sink *s)
{
	FILE *fp;

	if (!s->fp)
		return 0;
	fp = open_append(s->path);
	if (!fp)
		return -1;
	fclose(s->fp);
	s->fp = fp;
	return 0;
}

int log_reopen(void)
{
	int r = sink_reopen(&lg.general);

	if (sink_reopen(&lg.stats) < 0)
		r = -1;
	return r;
}

void log_set_console(bool on)
{
	lg.console = on;
}

void log_close(void)
{
	if (lg.general.fp)
		fclose(lg.general.fp);
	if (lg.stats.fp)
		fclose(lg.stats.fp);
	if (lg.general.facility >= 0 || lg.stats.facility >= 0)
		closelog();
	lg.general.fp = lg.stats.fp = NULL;
	lg.general.facility = lg.stats.facility = -1;
	lg.opened = false;
}

void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	char date[64], text[2048];
	int saved = errno;

	vsnprintf(text, sizeof(text), fmt, ap);
	now_ctime(date, sizeof(date));
	if (!lg.opened || lg.console) {
		FILE *out = lvl >= LOG_LVL_WARNING ? stderr : stdout;
		fprintf(out, "[%s] (pid=%d) [%s] %s\n", date, (int)getpid(),
			lvl_name[lvl], text);
		fflush(out);
	}
	if (lg.general.fp)
		fprintf(lg.general.fp, "[%s] (pid=%d) [%s] %s\n", date,
			(int)getpid(), lvl_name[lvl], text);
	if (lg.general.facility >= 0)
		syslog(lvl_prio[lvl], "%s", text);
	errno = saved;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void log_record(bool stats, const char *text)
{
	struct log_sink *s = stats ? &lg.stats : &lg.general;
	char date[64];

	now_ctime(date, sizeof(date));
	if (s->fp)
		fprintf(s->fp, "%s\t%s\n", date, text);
	if (s->facility >= 0)
		syslog(stats ? LOG_INFO : LOG_ERR, "%s", text);
	else if (stats && !lg.stats.fp && lg.general.facility >= 0)
		syslog(LOG_ERR, "%s", text);
}
