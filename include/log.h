/*
 * Logging in conntrackd 1.4.x's line format:
 *   [Wed Dec  7 22:16:31 2011] (pid=19195) [notice] text
 * Before log_open() (config parsing, client role) lines go to the console
 * only: info/notice to stdout, warning/ERROR to stderr. After log_open()
 * they go to the LogFile and syslog, and to the console unless daemonised.
 */
#ifndef CTD_LOG_H
#define CTD_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LVL_INFO, LOG_LVL_NOTICE, LOG_LVL_WARNING, LOG_LVL_ERROR };

/* Open the log file (append, 0600) and syslog. Returns -1 and sets errno on failure. */
int  log_open(const char *logfile, int syslog_facility, bool console);
/* Stats-mode flow log (separate file/facility). */
int  log_open_stats(const char *logfile, int syslog_facility);
int  log_reopen(void);                  /* SIGHUP: reopen files for logrotate */
void log_set_console(bool on);          /* off once daemonised */
void log_close(void);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Object record: "CTIME\tTEXT\n" with no level prefix (commit errors, stats flows). */
void log_record(bool stats, const char *text);

#define log_info(...)    log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_warn(...)    log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_err(...)     log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif
