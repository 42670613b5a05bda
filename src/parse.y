/*
 * conntrackd.conf grammar (config-and-cli.md §3.2). Pure and reentrant:
 * all state lives in struct cy_state. Actions stay small; checks and
 * conversions are in conf.c (cy_* helpers) so they can be read apart from
 * the grammar. Every list has an `error` alternative so one bad line does
 * not hide the next ones.
 */
%code requires {
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "conf.h"

/* Every symbol carries the token text, its number (NUM, BOOL, flags) and line. */
struct cy_tok {
	const char *s;
	uint64_t    n;
	int         line;
	bool        big;          /* NUM did not fit in 64 bits */
};

#define CY_DEPTH_MAX 32
#define CY_MAX_ERRORS 50          /* more is noise (binary garbage); stop */

struct cy_chunk;

struct cy_state {
	struct ctd_conf *conf;
	const char *name;         /* file name for messages */
	FILE       *err, *warn;
	unsigned    nerrors;
	struct cy_chunk *chunks;  /* token texts, freed with the state */

	/* Lexer bookkeeping, for messages. */
	char        tokbuf[48];   /* text of the last token (possibly cut) */
	bool        tokcut;
	int         tokline;
	char        prevbuf[48];  /* ... and of the one before */
	int         prevline;
	unsigned long ntok;       /* tokens handed to the parser */
	unsigned long err_ntok;   /* ntok at the last syntax error */
	bool        keep;         /* recovery keeps the lookahead */
	const char *last_block_kw;
	unsigned    depth_over;   /* braces beyond CY_DEPTH_MAX */
	const char *closed;       /* block the last '}' closed */
	bool        skipping;     /* after a syntax error: see cylex() in lex.l */
	int         skip_line;
	unsigned    skip_depth;
	const char *blocks[CY_DEPTH_MAX];
	int         block_line[CY_DEPTH_MAX];
	unsigned    depth;

	/* Channel block being read (scratch when over the limit). */
	struct conf_channel *chan;
	struct conf_channel  chan_scratch;
	bool        chan_over;
	unsigned    chan_errors;  /* nerrors when the block opened */

	/* Helper pieces waiting for the `Type` block that closes next. */
	uint32_t    h_queue_num, h_queue_len;
	struct conf_helper_policy *h_pols;
	unsigned    h_npols;
	struct conf_helper_policy pol;

	/* Facts only the parser knows. */
	enum sync_mode mode_seen;
	int         sync_line;    /* first Sync block, for whole-file messages */
	bool        overrun_off;
	bool        gen_syslog_set, stats_syslog_set;
	int         stats_syslog_line;
};
}

%code provides {
int  cylex(CYSTYPE *val, void *scanner);
void cyerror(void *scanner, struct cy_state *ps, const char *msg);

/* conf.c */
void cy_err(struct cy_state *ps, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void cy_warn(struct cy_state *ps, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *cy_save(struct cy_state *ps, const char *s, size_t len);
void cy_num(struct cy_state *ps, const struct cy_tok *t, const char *key,
	    uint64_t min, uint64_t max, uint32_t *dst);
void cy_path(struct cy_state *ps, const struct cy_tok *t, const char *key,
	     char *dst, size_t size);
void cy_syslog(struct cy_state *ps, const struct cy_tok *t, bool is_bool, bool stats);
void cy_sched_type(struct cy_state *ps, const struct cy_tok *t);
void cy_sched_prio(struct cy_state *ps, const struct cy_tok *t);
void cy_overrun(struct cy_state *ps, const struct cy_tok *t, bool is_bool);
void cy_pollsecs(struct cy_state *ps, const struct cy_tok *t);
void cy_unix_mode(struct cy_state *ps, const struct cy_tok *t);
void cy_mode(struct cy_state *ps, enum sync_mode m, const struct cy_tok *t);
void cy_sync_close(struct cy_state *ps, int line);
void cy_stats_close(struct cy_state *ps, int line);
void cy_exp_set(struct cy_state *ps, bool on);
void cy_exp_name(struct cy_state *ps, const struct cy_tok *t);
void cy_chan_begin(struct cy_state *ps, enum chan_kind k, bool dflt, int line);
void cy_chan_end(struct cy_state *ps);
enum cy_addr_role { CY_ADDR, CY_DEST, CY_IFADDR };
void cy_chan_ip(struct cy_state *ps, const struct cy_tok *t, int family,
		enum cy_addr_role role);
void cy_chan_ip6_iface(struct cy_state *ps, const struct cy_tok *t);
void cy_chan_iface(struct cy_state *ps, const struct cy_tok *t);
void cy_chan_port(struct cy_state *ps, const struct cy_tok *t, const char *key);
void cy_chan_buf(struct cy_state *ps, const struct cy_tok *t, const char *key,
		 uint32_t *dst);
void cy_filter_proto(struct cy_state *ps, const struct cy_tok *t, int proto);
void cy_filter_addr(struct cy_state *ps, const struct cy_tok *t, int family);
void cy_helper_policy(struct cy_state *ps, const struct cy_tok *name);
void cy_helper_add(struct cy_state *ps, const struct cy_tok *name,
		   const struct cy_tok *l3, const struct cy_tok *l4);
void cy_helper_num(struct cy_state *ps, const struct cy_tok *t, const char *key,
		   uint32_t *dst);
/* lex.l: run the scanner and parser over one buffer. */
int  cy_run(struct cy_state *ps, const char *buf, size_t len);
}

%code {
#include <string.h>

#define C (ps->conf)

/*
 * After a syntax error drop the offending token (the lexer skips the rest
 * of its line, see lex.l cylex) and report the next error at once: every bad
 * line gets its message. A '}' is kept inside a block because it closes
 * it, and so is a token that starts a new line after a missing value (see
 * yyreport_syntax_error); at end of file bison's own recovery gives up.
 */
#define RECOVER do {							\
		if (ps->nerrors >= CY_MAX_ERRORS)			\
			YYABORT;					\
		if (yychar != CYEOF) {					\
			yyerrok;					\
			if (yychar != '}' && !ps->keep)			\
				yyclearin;				\
		}							\
		ps->keep = false;					\
	} while (0)
#define RECOVER_TOP do {						\
		if (ps->nerrors >= CY_MAX_ERRORS)			\
			YYABORT;					\
		if (yychar != CYEOF) {					\
			yyerrok;					\
			yyclearin;					\
		}							\
		ps->keep = false;					\
	} while (0)

static struct cy_tok cy_none(const struct cy_state *ps)
{
	return (struct cy_tok){ .s = "", .n = 0, .line = ps->tokline };
}
}

%define api.pure full
%define api.prefix {cy}
%define api.value.type {struct cy_tok}
%define parse.error custom
%lex-param {void *scanner}
%parse-param {void *scanner} {struct cy_state *ps}

%token T_GENERAL "General" T_SYNC "Sync" T_STATS "Stats" T_HELPER "Helper"
%token T_UNIX "UNIX" T_PATH_KW "Path" T_BACKLOG "Backlog" T_PERMISSIONS "Permissions"
%token T_HASHSIZE "HashSize" T_HASHLIMIT "HashLimit" T_LOGFILE "LogFile"
%token T_SYSLOG "Syslog" T_LOCKFILE "LockFile"
%token T_NLBUF "NetlinkBufferSize" T_NLBUFMAX "NetlinkBufferSizeMaxGrowth"
%token T_EVLIMIT "EventIterationLimit" T_POLLSECS "PollSecs"
%token T_OVERRUN "NetlinkOverrunResync" T_RELIABLE "NetlinkEventsReliable"
%token T_NICE "Nice" T_SCHEDULER "Scheduler" T_TYPE "Type" T_PRIORITY "Priority"
%token T_SYSTEMD "Systemd"
%token T_FILTER "Filter" T_FROM "From" T_USERSPACE "Userspace" T_KERNELSPACE "Kernelspace"
%token T_PROTOCOL "Protocol" T_ADDRESS "Address" T_STATE "State"
%token T_ACCEPT "Accept" T_IGNORE "Ignore" T_FOR "for"
%token T_SYN_SENT "SYN_SENT" T_SYN_RECV "SYN_RECV" T_ESTABLISHED "ESTABLISHED"
%token T_FIN_WAIT "FIN_WAIT" T_CLOSE_WAIT "CLOSE_WAIT" T_LAST_ACK "LAST_ACK"
%token T_TIME_WAIT "TIME_WAIT" T_CLOSE "CLOSE" T_LISTEN "LISTEN"
%token T_MODE "Mode" T_FTFW "FTFW" T_ALARM "ALARM" T_NOTRACK "NOTRACK"
%token T_RESENDQ "ResendQueueSize" T_ACKWIN "ACKWindowSize"
%token T_REFRESH "RefreshTime" T_CACHETMO "CacheTimeout"
%token T_COMMITTMO "CommitTimeout" T_PURGETMO "PurgeTimeout"
%token T_DISINT "DisableInternalCache" T_DISEXT "DisableExternalCache"
%token T_STARTUPRESYNC "StartupResync"
%token T_MULTICAST "Multicast" T_UDP "UDP" T_TCP "TCP" T_DEFAULT "Default"
%token T_IPV4_ADDR "IPv4_address" T_IPV6_ADDR "IPv6_address"
%token T_IPV4_DEST "IPv4_Destination_Address" T_IPV6_DEST "IPv6_Destination_Address"
%token T_IPV4_IFACE "IPv4_interface" T_IPV6_IFACE "IPv6_interface"
%token T_INTERFACE "Interface" T_GROUP "Group" T_PORT "Port"
%token T_SNDBUF "SndSocketBuffer" T_RCVBUF "RcvSocketBuffer" T_CHECKSUM "Checksum"
%token T_ERRQLEN "ErrorQueueLength"
%token T_OPTIONS "Options" T_TCPWIN "TCPWindowTracking" T_EXPSYNC "ExpectationSync"
%token T_AUTHKEY "AuthKeyFile"
%token T_QUEUENUM "QueueNum" T_QUEUELEN "QueueLen" T_POLICY "Policy"
%token T_EXPMAX "ExpectMax" T_EXPTMO "ExpectTimeout" T_SETUP "Setup"
%token T_NUM "number" T_SIGNED "signed number" T_BOOL "on/off"
%token T_IP "address" T_PATH "path" T_WORD "name"

%%

file	: %empty
	| file section
	| file error	{ RECOVER_TOP; }
	;

section	: general
	| sync
	| stats
	| helper
	;

/* ---- General ---- */

general	: T_GENERAL '{' g_items '}'
	;

g_items	: %empty
	| g_items g_item
	| g_items error	{ RECOVER; }
	;

g_item	: T_HASHSIZE T_NUM	{ cy_num(ps, &$2, "HashSize", 0, CONF_HASH_MAX, &C->hashsize); }
	| T_HASHLIMIT T_NUM	{ cy_num(ps, &$2, "HashLimit", 0, CONF_HASH_MAX, &C->hashlimit); }
	| T_LOGFILE T_BOOL
		{
			if ($2.n)
				snprintf(C->logfile, sizeof(C->logfile), "%s",
					 "/var/log/conntrackd.log");
		}
	| T_LOGFILE T_PATH	{ cy_path(ps, &$2, "LogFile path", C->logfile, sizeof(C->logfile)); }
	| T_SYSLOG T_BOOL	{ cy_syslog(ps, &$2, true, false); }
	| T_SYSLOG T_WORD	{ cy_syslog(ps, &$2, false, false); }
	| T_LOCKFILE T_PATH	{ cy_path(ps, &$2, "LockFile path", C->lockfile, sizeof(C->lockfile)); }
	| T_UNIX '{' unix_items '}'
	| T_NLBUF T_NUM		{ cy_num(ps, &$2, "NetlinkBufferSize", 0, INT32_MAX, &C->nl_bufsize); }
	| T_NLBUFMAX T_NUM	{ cy_num(ps, &$2, "NetlinkBufferSizeMaxGrowth", 0, INT32_MAX, &C->nl_bufsize_max); }
	| T_EVLIMIT T_NUM	{ cy_num(ps, &$2, "EventIterationLimit", 0, INT32_MAX, &C->event_iteration_limit); }
	| T_POLLSECS T_NUM	{ cy_pollsecs(ps, &$2); }
	| T_OVERRUN T_BOOL	{ cy_overrun(ps, &$2, true); }
	| T_OVERRUN T_NUM	{ cy_overrun(ps, &$2, false); }
	| T_RELIABLE T_BOOL	{ C->nl_events_reliable = $2.n; }
	| T_NICE T_SIGNED
		{
			cy_warn(ps, $1.line, "deprecated nice configuration, ignoring. "
				"The nice value can be set externally with nice(1) and renice(1).");
		}
	| T_SCHEDULER '{' sched_items '}'
	| T_SYSTEMD T_BOOL	{ C->systemd = $2.n; }
	| filter
	;

unix_items
	: %empty
	| unix_items unix_item
	| unix_items error	{ RECOVER; }
	;

unix_item
	: T_PATH_KW T_PATH	{ cy_path(ps, &$2, "Path", C->unix_path, sizeof(C->unix_path)); }
	| T_BACKLOG T_NUM	{ cy_warn(ps, $1.line, "deprecated unix backlog configuration, ignoring."); }
	| T_PERMISSIONS T_NUM	{ cy_unix_mode(ps, &$2); }
	;

sched_items
	: %empty
	| sched_items sched_item
	| sched_items error	{ RECOVER; }
	;

sched_item
	: T_TYPE T_WORD		{ cy_sched_type(ps, &$2); }
	| T_PRIORITY T_NUM	{ cy_sched_prio(ps, &$2); }
	;

filter	: T_FILTER filter_from '{' f_items '}'
		{
			C->filter.present = true;
			C->filter.kernelspace = $2.n;
		}
	;

filter_from
	: %empty		{ $$ = cy_none(ps); }
	| T_FROM T_USERSPACE	{ $$ = $1; $$.n = 0; }
	| T_FROM T_KERNELSPACE	{ $$ = $1; $$.n = 1; }
	;

f_items	: %empty
	| f_items f_item
	| f_items error	{ RECOVER; }
	;

f_item	: T_PROTOCOL policy '{' proto_items '}'	{ C->filter.proto_policy = $2.n; }
	| T_ADDRESS policy '{' addr_items '}'	{ C->filter.addr_policy = $2.n; }
	| T_STATE policy '{' state_items '}'	{ C->filter.state_policy = $2.n; }
	;

policy	: T_ACCEPT	{ $$ = $1; $$.n = FILTER_ACCEPT; }
	| T_IGNORE	{ $$ = $1; $$.n = FILTER_IGNORE; }
	;

proto_items
	: %empty
	| proto_items proto_item
	| proto_items error	{ RECOVER; }
	;

proto_item
	: T_WORD	{ cy_filter_proto(ps, &$1, -1); }
	| T_TCP		{ cy_filter_proto(ps, &$1, 6); }
	| T_UDP		{ cy_filter_proto(ps, &$1, 17); }
	;

addr_items
	: %empty
	| addr_items addr_item
	| addr_items error	{ RECOVER; }
	;

addr_item
	: T_IPV4_ADDR T_IP	{ cy_filter_addr(ps, &$2, 4); }
	| T_IPV6_ADDR T_IP	{ cy_filter_addr(ps, &$2, 6); }
	;

state_items
	: %empty
	| state_items state_list T_FOR T_TCP	{ C->filter.tcp_states |= $2.n; }
	| state_items error	{ RECOVER; }
	;

state_list
	: %empty		{ $$ = cy_none(ps); }
	| state_list tcp_state	{ $$ = $1; $$.n |= $2.n; }
	;

/* Kernel TCP conntrack state numbers; CLOSE and CLOSED are one state. */
tcp_state
	: T_SYN_SENT	{ $$ = $1; $$.n = 1u << 1; }
	| T_SYN_RECV	{ $$ = $1; $$.n = 1u << 2; }
	| T_ESTABLISHED	{ $$ = $1; $$.n = 1u << 3; }
	| T_FIN_WAIT	{ $$ = $1; $$.n = 1u << 4; }
	| T_CLOSE_WAIT	{ $$ = $1; $$.n = 1u << 5; }
	| T_LAST_ACK	{ $$ = $1; $$.n = 1u << 6; }
	| T_TIME_WAIT	{ $$ = $1; $$.n = 1u << 7; }
	| T_CLOSE	{ $$ = $1; $$.n = 1u << 8; }
	| T_LISTEN	{ $$ = $1; $$.n = 1u << 9; }
	;

/* ---- Sync ---- */

sync	: T_SYNC '{' s_items '}'	{ cy_sync_close(ps, $1.line); }
	;

s_items	: %empty
	| s_items s_item
	| s_items error	{ RECOVER; }
	;

s_item	: T_REFRESH T_NUM	{ cy_num(ps, &$2, "RefreshTime", 0, INT32_MAX, &C->refresh_time); }
	| T_CACHETMO T_NUM	{ cy_num(ps, &$2, "CacheTimeout", 0, INT32_MAX, &C->cache_timeout); }
	| commit_purge
	| T_MODE T_FTFW '{' ftfw_items '}'		{ cy_mode(ps, SYNC_MODE_FTFW, &$2); }
	| T_MODE T_ALARM '{' alarm_items '}'		{ cy_mode(ps, SYNC_MODE_ALARM, &$2); }
	| T_MODE T_NOTRACK '{' notrack_items '}'	{ cy_mode(ps, SYNC_MODE_NOTRACK, &$2); }
	| T_MULTICAST opt_default '{'	{ cy_chan_begin(ps, CHAN_MCAST, $2.n, $1.line); }
	  mc_items '}'			{ cy_chan_end(ps); }
	| T_UDP opt_default '{'		{ cy_chan_begin(ps, CHAN_UDP, $2.n, $1.line); }
	  ud_items '}'			{ cy_chan_end(ps); }
	| T_TCP opt_default '{'		{ cy_chan_begin(ps, CHAN_TCP, $2.n, $1.line); }
	  tcp_items '}'			{ cy_chan_end(ps); }
	| T_OPTIONS '{' opt_items '}'
	;

commit_purge
	: T_COMMITTMO T_NUM	{ cy_num(ps, &$2, "CommitTimeout", 0, INT32_MAX, &C->commit_timeout); }
	| T_PURGETMO T_NUM	{ cy_num(ps, &$2, "PurgeTimeout", 0, INT32_MAX, &C->purge_timeout); }
	;

ftfw_items
	: %empty
	| ftfw_items ftfw_item
	| ftfw_items error	{ RECOVER; }
	;

ftfw_item
	: T_RESENDQ T_NUM	{ cy_num(ps, &$2, "ResendQueueSize", 0, INT32_MAX, &C->resend_queue_size); }
	| T_ACKWIN T_NUM	{ cy_num(ps, &$2, "ACKWindowSize", 0, INT32_MAX, &C->ack_window_size); }
	| commit_purge
	| T_DISEXT T_BOOL	{ C->disable_external_cache = $2.n; }
	| T_STARTUPRESYNC T_BOOL { C->startup_resync = $2.n; }
	;

alarm_items
	: %empty
	| alarm_items alarm_item
	| alarm_items error	{ RECOVER; }
	;

alarm_item
	: T_REFRESH T_NUM	{ cy_num(ps, &$2, "RefreshTime", 0, INT32_MAX, &C->refresh_time); }
	| T_CACHETMO T_NUM	{ cy_num(ps, &$2, "CacheTimeout", 0, INT32_MAX, &C->cache_timeout); }
	| commit_purge
	;

notrack_items
	: %empty
	| notrack_items notrack_item
	| notrack_items error	{ RECOVER; }
	;

notrack_item
	: commit_purge
	| T_DISINT T_BOOL	{ C->disable_internal_cache = $2.n; }
	| T_DISEXT T_BOOL	{ C->disable_external_cache = $2.n; }
	| T_STARTUPRESYNC T_BOOL { C->startup_resync = $2.n; }
	;

opt_default
	: %empty	{ $$ = cy_none(ps); }
	| T_DEFAULT	{ $$ = $1; $$.n = 1; }
	;

mc_items: %empty
	| mc_items mc_item
	| mc_items error	{ RECOVER; }
	;

mc_item	: T_IPV4_ADDR T_IP	{ cy_chan_ip(ps, &$2, 4, CY_ADDR); }
	| T_IPV6_ADDR T_IP	{ cy_chan_ip(ps, &$2, 6, CY_ADDR); }
	| T_IPV4_IFACE T_IP	{ cy_chan_ip(ps, &$2, 4, CY_IFADDR); }
	| T_IPV6_IFACE T_IP	{ cy_chan_ip6_iface(ps, &$1); }
	| T_GROUP T_NUM		{ cy_chan_port(ps, &$2, "Group"); }
	| chan_common
	;

chan_common
	: T_INTERFACE T_WORD	{ cy_chan_iface(ps, &$2); }
	| T_SNDBUF T_NUM	{ cy_chan_buf(ps, &$2, "SndSocketBuffer", &ps->chan->sndbuf); }
	| T_RCVBUF T_NUM	{ cy_chan_buf(ps, &$2, "RcvSocketBuffer", &ps->chan->rcvbuf); }
	| T_CHECKSUM T_BOOL	{ ps->chan->checksum = $2.n; }
	;

ud_items: %empty
	| ud_items ud_item
	| ud_items error	{ RECOVER; }
	;

ud_item	: T_IPV4_ADDR T_IP	{ cy_chan_ip(ps, &$2, 4, CY_ADDR); }
	| T_IPV6_ADDR T_IP	{ cy_chan_ip(ps, &$2, 6, CY_ADDR); }
	| T_IPV4_DEST T_IP	{ cy_chan_ip(ps, &$2, 4, CY_DEST); }
	| T_IPV6_DEST T_IP	{ cy_chan_ip(ps, &$2, 6, CY_DEST); }
	| T_PORT T_NUM		{ cy_chan_port(ps, &$2, "Port"); }
	| chan_common
	;

tcp_items
	: %empty
	| tcp_items ud_item
	| tcp_items T_ERRQLEN T_NUM
		{ cy_num(ps, &$3, "ErrorQueueLength", 0, INT32_MAX, &C->error_queue_length); }
	| tcp_items error	{ RECOVER; }
	;

opt_items
	: %empty
	| opt_items opt_item
	| opt_items error	{ RECOVER; }
	;

opt_item: T_TCPWIN T_BOOL		{ C->tcp_window_tracking = $2.n; }
	| T_EXPSYNC T_BOOL		{ cy_exp_set(ps, $2.n); }
	| T_EXPSYNC '{'			{ cy_exp_set(ps, true); }
	  exp_names '}'
	| T_AUTHKEY T_PATH
		{ cy_path(ps, &$2, "AuthKeyFile path", C->auth_key_file, sizeof(C->auth_key_file)); }
	;

exp_names
	: %empty
	| exp_names T_WORD	{ cy_exp_name(ps, &$2); }
	| exp_names error	{ RECOVER; }
	;

/* ---- Stats ---- */

stats	: T_STATS '{' st_items '}'	{ cy_stats_close(ps, $1.line); }
	;

st_items: %empty
	| st_items st_item
	| st_items error	{ RECOVER; }
	;

st_item	: T_LOGFILE T_BOOL
		{
			if ($2.n)
				snprintf(C->stats_logfile, sizeof(C->stats_logfile), "%s",
					 "/var/log/conntrackd-stats.log");
		}
	| T_LOGFILE T_PATH
		{ cy_path(ps, &$2, "stats LogFile path", C->stats_logfile, sizeof(C->stats_logfile)); }
	| T_SYSLOG T_BOOL	{ cy_syslog(ps, &$2, true, true); }
	| T_SYSLOG T_WORD	{ cy_syslog(ps, &$2, false, true); }
	| T_RELIABLE T_BOOL	{ C->nl_events_reliable = $2.n; }
	;

/* ---- Helper (parsed; the daemon refuses it at start-up) ---- */

helper	: T_HELPER '{' h_items '}'	{ C->has_helper = true; }
	;

h_items	: %empty
	| h_items h_item
	| h_items error	{ RECOVER; }
	;

h_item	: T_SETUP T_BOOL	{ C->helper_setup = $2.n; }
	| T_TYPE T_WORD T_WORD T_WORD '{' h_items '}'	{ cy_helper_add(ps, &$2, &$3, &$4); }
	| T_QUEUENUM T_NUM	{ cy_helper_num(ps, &$2, "QueueNum", &ps->h_queue_num); }
	| T_QUEUELEN T_NUM	{ cy_helper_num(ps, &$2, "QueueLen", &ps->h_queue_len); }
	| T_POLICY T_WORD '{' pol_items '}'	{ cy_helper_policy(ps, &$2); }
	;

pol_items
	: %empty
	| pol_items pol_item
	| pol_items error	{ RECOVER; }
	;

pol_item: T_EXPMAX T_NUM	{ cy_helper_num(ps, &$2, "ExpectMax", &ps->pol.expect_max); }
	| T_EXPTMO T_NUM	{ cy_helper_num(ps, &$2, "ExpectTimeout", &ps->pol.expect_timeout); }
	;

%%

/* Only bison's own failures land here ("memory exhausted" on absurd nesting). */
void cyerror(void *scanner, struct cy_state *ps, const char *msg)
{
	(void)scanner;
	cy_err(ps, ps->tokline, "%s (blocks nested too deeply?)", msg);
}

/*
 * Say where the parser was and, when cheap, what would have fit: an
 * unknown word where a key was expected is "unknown keyword"; a known key
 * in the wrong block says so; otherwise list up to four expected tokens.
 */
static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner,
				 struct cy_state *ps)
{
	yysymbol_kind_t exp[YYNTOKENS], tok = yypcontext_token(ctx);
	int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
	const char *blk = ps->depth ? ps->blocks[ps->depth - 1] : NULL;
	bool rbrace = strcmp(yysymbol_name(tok), "'}'") == 0;
	bool item_pos = false, top_pos = false;
	char text[sizeof(ps->tokbuf) + 4];

	(void)scanner;
	snprintf(text, sizeof(text), "%s%s", ps->tokbuf, ps->tokcut ? "..." : "");
	for (int i = 0; i < n; i++) {
		if (strcmp(yysymbol_name(exp[i]), "'}'") == 0)
			item_pos = true;
		if (exp[i] == YYSYMBOL_T_GENERAL)
			top_pos = true;
	}
	/*
	 * A value was expected but the next line began: the value is missing
	 * and the token probably starts the next statement. Blame the key's
	 * line and keep the token (once: if it fails again it is dropped).
	 */
	if (!item_pos && !top_pos && tok != YYSYMBOL_YYEOF &&
	    ps->tokline > ps->prevline && ps->ntok != ps->err_ntok &&
	    strcmp(yysymbol_name(tok), "'{'") != 0) {
		ps->err_ntok = ps->ntok;
		ps->keep = true;
		if (n == 1 && strcmp(yysymbol_name(exp[0]), "'{'") == 0) {
			cy_err(ps, ps->prevline, "missing '{' after '%s'", ps->prevbuf);
		} else if (n > 0 && n <= 4) {
			char want[256] = "";

			for (int i = 0; i < n; i++) {
				size_t l = strlen(want);

				snprintf(want + l, sizeof(want) - l, "%s%s", i ? " or " : "",
					 yysymbol_name(exp[i]));
			}
			cy_err(ps, ps->prevline, "missing value after '%s': expected %s",
			       ps->prevbuf, want);
		} else {
			cy_err(ps, ps->prevline, "incomplete statement after '%s' in %s block",
			       ps->prevbuf, rbrace && ps->closed ? ps->closed : blk ? blk : "?");
		}
		return 0;
	}
	ps->err_ntok = ps->ntok;
	ps->keep = false;
	ps->skipping = true;
	ps->skip_line = ps->tokline;
	ps->skip_depth = strcmp(yysymbol_name(tok), "'{'") == 0;
	if (tok == YYSYMBOL_YYEOF) {
		if (ps->depth)
			cy_err(ps, ps->tokline, "unexpected end of file: '%s' block "
			       "opened at line %d is not closed", blk,
			       ps->block_line[ps->depth - 1]);
		else
			cy_err(ps, ps->tokline, "unexpected end of file");
		return 0;
	}
	/* The lexer has already popped the block this '}' meant to close. */
	if (rbrace && ps->closed)
		blk = ps->closed;
	if (top_pos && ps->depth == 0 && rbrace && !ps->closed) {
		cy_err(ps, ps->tokline, "syntax error at '}': no open block to close");
		return 0;
	}
	if (top_pos && ps->depth == 0) {
		cy_err(ps, ps->tokline, "syntax error at '%s': expected General, "
		       "Sync, Stats or Helper section", text);
		return 0;
	}
	if (item_pos && blk) {
		if (tok == YYSYMBOL_T_WORD)
			cy_err(ps, ps->tokline, "syntax error at '%s': unknown keyword "
			       "'%s' in %s block", text, text, blk);
		else if (tok >= YYSYMBOL_T_GENERAL && tok < YYSYMBOL_T_NUM)
			cy_err(ps, ps->tokline, "syntax error at '%s': '%s' is not "
			       "valid in %s block", text, text, blk);
		else
			cy_err(ps, ps->tokline, "syntax error at '%s' in %s block",
			       text, blk);
		return 0;
	}
	if ((n <= 0 || n > 4) && blk) {
		cy_err(ps, ps->tokline, "syntax error at '%s' in %s block", text, blk);
		return 0;
	}
	if (n <= 0 || n > 4) {
		cy_err(ps, ps->tokline, "syntax error at '%s'", text);
		return 0;
	}
	char want[256] = "";
	for (int i = 0; i < n; i++) {
		size_t l = strlen(want);
		snprintf(want + l, sizeof(want) - l, "%s%s", i ? " or " : "",
			 yysymbol_name(exp[i]));
	}
	cy_err(ps, ps->tokline, "syntax error at '%s': expected %s", text, want);
	return 0;
}
