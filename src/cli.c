/*
 * Command line, parsed the way conntrackd 1.4.x does it (no getopt): each
 * argument is dispatched on its second character only, sub-arguments are
 * prefix-matched against a fixed candidate order, the last client option
 * wins and -x rewrites the dump already chosen. Exit codes follow 1.4.9
 * (unknown option, missing -C argument: 1); see conntrackd.8.
 */
#include <stdio.h>
#include <string.h>

#include "ctd.h"
#include "ctl.h"
#include "log.h"

void cli_usage(FILE *out, const char *argv0)
{
	fprintf(out,
		"Connection tracking userspace daemon v1.4.7\n"
		"Usage: %s [commands] [options]\n"
		"\n"
		"General commands:\n"
		"  -d, run in daemon mode\n"
		"  -C [configfile], configuration file path\n"
		"  -v, display conntrackd version\n"
		"  -h, display this help information\n"
		"\n"
		"Client mode commands:\n"
		"  -c [ct|expect], commit external cache to conntrack table\n"
		"  -f [internal|external], flush internal and external cache\n"
		"  -F [ct|expect], flush kernel conntrack table\n"
		"  -i [ct|expect], display content of the internal cache\n"
		"  -e [ct|expect], display the content of the external cache\n"
		"  -k, kill conntrack daemon\n"
		"  -s  [network|cache|runtime|link|rsqueue|queue|ct|expect], dump statistics\n"
		"  -R [ct|expect], resync with kernel conntrack table\n"
		"  -n, request resync with other node (only FT-FW and NOTRACK modes)\n"
		"  -B, force a bulk send to other replica firewalls\n"
		"  -x, dump cache in XML format (requires -i or -e)\n"
		"  -t, reset the kernel timeout (see PurgeTimeout clause)\n"
		"\n", argv0);
}

static void version(FILE *out)
{
	fputs("Connection tracking userspace daemon v1.4.7. Licensed under GPLv2.\n"
	      "(C) 2006-2009 Pablo Neira Ayuso <pablo@netfilter.org>\n", out);
}

/* "" matches the first candidate: strncmp with the word's own length. */
static int prefix_of(const char *word, const char *keyword)
{
	return strncmp(keyword, word, strlen(word)) == 0;
}

static int has_subarg(int i, int argc, char **argv)
{
	return i + 1 < argc && argv[i + 1][0] != '-';
}

/* Roles conflict when a daemon option meets a client option (either order). */
static int set_role(struct cli *o, enum cli_role role, FILE *out,
		    const char *argv0)
{
	if (o->role == CLI_CONSOLE || o->role == role) {
		o->role = role;
		return 0;
	}
	cli_usage(out, argv0);
	log_err("Invalid parameters");
	return -1;
}

/* -c -i -e -F -R: optional `ct' / `expect'; a non-matching word is left for
 * the next iteration (which reports it as an unknown option). */
static int ct_or_exp(int *i, int argc, char **argv, int *req,
		     int ct, int exp, int none)
{
	if (!has_subarg(*i, argc, argv)) {
		*req = none;
		return 0;
	}
	if (prefix_of(argv[*i + 1], "ct")) {
		*req = ct;
		(*i)++;
	} else if (prefix_of(argv[*i + 1], "expect")) {
		*req = exp;
		(*i)++;
	}
	return 0;
}

static const struct {
	const char *word;
	int req;
} stats_words[] = {
	{ "network", CTL_STATS_NETWORK }, { "cache", CTL_STATS_CACHE },
	{ "runtime", CTL_STATS_RUNTIME }, { "multicast", CTL_STATS_LINK },
	{ "link", CTL_STATS_LINK }, { "rsqueue", CTL_STATS_RSQUEUE },
	{ "process", CTL_STATS_PROCESS }, { "queue", CTL_STATS_QUEUE },
	{ "ct", CTL_STATS }, { "expect", CTL_EXP_STATS },
	/* Beyond upstream; last so that every 1.4.x abbreviation keeps its meaning. */
	{ "metrics", CTL_STATS_METRICS },
};

static int xml_of(int req)
{
	switch (req) {
	case CTL_CT_DUMP_INTERNAL:  return CTL_CT_DUMP_INT_XML;
	case CTL_CT_DUMP_EXTERNAL:  return CTL_CT_DUMP_EXT_XML;
	case CTL_EXP_DUMP_INTERNAL: return CTL_EXP_DUMP_INT_XML;
	case CTL_EXP_DUMP_EXTERNAL: return CTL_EXP_DUMP_EXT_XML;
	}
	return -1;
}

int cli_parse(struct cli *o, int argc, char **argv, FILE *out)
{
	const char *argv0 = argc > 0 ? argv[0] : "conntrackd";
	int i;

	o->role = CLI_CONSOLE;
	o->req = -1;
	snprintf(o->conf, sizeof(o->conf), "%s", CONF_DEFAULT_FILE);

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		char opt = a[0] ? a[1] : '\0';
		int client = strchr("cifeFRBtkns", opt) != NULL && opt;

		if (client && set_role(o, CLI_REQUEST, out, argv0) < 0)
			return 1;
		switch (opt) {
		case 'd':
			if (set_role(o, CLI_DAEMON, out, argv0) < 0)
				return 1;
			break;
		case 'T':
			if (set_role(o, CLI_CONFTEST, out, argv0) < 0)
				return 1;
			break;
		case 'C':
			if (++i >= argc) {
				cli_usage(out, argv0);
				log_err("Missing config filename");
				return 1;
			}
			if (strlen(argv[i]) > CLI_PATH_MAX)
				log_warn("Path to config file to long. Cutting it down to %d characters",
					 CLI_PATH_MAX);
			snprintf(o->conf, sizeof(o->conf), "%s", argv[i]);
			break;
		case 'c':
			ct_or_exp(&i, argc, argv, &o->req, CTL_CT_COMMIT,
				  CTL_EXP_COMMIT, CTL_ALL_COMMIT);
			break;
		case 'i':
			ct_or_exp(&i, argc, argv, &o->req, CTL_CT_DUMP_INTERNAL,
				  CTL_EXP_DUMP_INTERNAL, CTL_CT_DUMP_INTERNAL);
			break;
		case 'e':
			ct_or_exp(&i, argc, argv, &o->req, CTL_CT_DUMP_EXTERNAL,
				  CTL_EXP_DUMP_EXTERNAL, CTL_CT_DUMP_EXTERNAL);
			break;
		case 'F':
			ct_or_exp(&i, argc, argv, &o->req, CTL_CT_FLUSH_MASTER,
				  CTL_EXP_FLUSH_MASTER, CTL_ALL_FLUSH_MASTER);
			break;
		case 'R':
			ct_or_exp(&i, argc, argv, &o->req, CTL_CT_RESYNC_MASTER,
				  CTL_EXP_RESYNC_MASTER, CTL_ALL_RESYNC_MASTER);
			break;
		case 'f':
			if (!has_subarg(i, argc, argv)) {
				o->req = CTL_ALL_FLUSH_CACHE;
			} else if (prefix_of(argv[i + 1], "internal")) {
				o->req = CTL_CT_FLUSH_INT_CACHE;
				i++;
			} else if (prefix_of(argv[i + 1], "external")) {
				o->req = CTL_CT_FLUSH_EXT_CACHE;
				i++;
			} else {
				log_err("unknown parameter `%s' for option `-f'",
					argv[i + 1]);
				return 1;
			}
			break;
		case 's': {
			size_t k;

			if (!has_subarg(i, argc, argv)) {
				o->req = CTL_STATS;
				break;
			}
			for (k = 0; k < sizeof(stats_words) / sizeof(stats_words[0]); k++)
				if (prefix_of(argv[i + 1], stats_words[k].word))
					break;
			if (k == sizeof(stats_words) / sizeof(stats_words[0])) {
				log_err("unknown parameter `%s' for option `-s'",
					argv[i + 1]);
				return 1;
			}
			if (!strcmp(stats_words[k].word, "multicast"))
				log_warn("use `link' instead of `multicast' as parameter.");
			o->req = stats_words[k].req;
			i++;
			break;
		}
		case 'B':
			o->req = CTL_SEND_BULK;
			break;
		case 't':
			o->req = CTL_RESET_TIMERS;
			break;
		case 'k':
			o->req = CTL_KILL;
			break;
		case 'n':
			o->req = CTL_REQUEST_DUMP;
			break;
		case 'x':
			if (xml_of(o->req) < 0) {
				cli_usage(out, argv0);
				log_err("Invalid parameters");
				return 1;
			}
			o->req = xml_of(o->req);
			break;
		case 'v':
			version(out);
			return 0;
		case 'h':
			cli_usage(out, argv0);
			return 0;
		default:
			cli_usage(out, argv0);
			log_err("Unknown option: %s", a);
			return 1;
		}
	}
	/* A client option whose sub-argument did not match leaves no request:
	 * the word was reported above as an unknown option already. */
	if (o->role == CLI_REQUEST && o->req < 0) {
		cli_usage(out, argv0);
		log_err("Invalid parameters");
		return 1;
	}
	return -1;
}
