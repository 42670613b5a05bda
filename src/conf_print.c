/*
 * Print the effective configuration in conntrackd.conf syntax: every value
 * after defaults, so `conntrackd -T` shows what the daemon will really do
 * and the output parses back into an equal configuration.
 */
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "conf.h"

static const char *onoff(bool b)
{
	return b ? "on" : "off";
}

static void print_addr(FILE *out, int family, const union addr *a)
{
	char buf[INET6_ADDRSTRLEN];

	if (!inet_ntop(family, a, buf, sizeof(buf)))
		snprintf(buf, sizeof(buf), "?");
	fputs(buf, out);
}

static const char *policy_name(enum filter_policy p)
{
	return p == FILTER_ACCEPT ? "Accept" : "Ignore";
}

static const char *const tcp_state_names[] = {
	[1] = "SYN_SENT", [2] = "SYN_RECV", [3] = "ESTABLISHED", [4] = "FIN_WAIT",
	[5] = "CLOSE_WAIT", [6] = "LAST_ACK", [7] = "TIME_WAIT", [8] = "CLOSE",
	[9] = "LISTEN",
};

static void print_filter(const struct conf_filter *f, FILE *out)
{
	char buf[64];

	fprintf(out, "\tFilter From %s {\n", f->kernelspace ? "Kernelspace" : "Userspace");
	if (f->proto_policy != FILTER_NONE) {
		fprintf(out, "\t\tProtocol %s {\n", policy_name(f->proto_policy));
		for (int p = 0; p < 256; p++) {
			const char *n;

			if (!f->protos[p])
				continue;
			n = conf_proto_name(p, buf, sizeof(buf));
			if (n)
				fprintf(out, "\t\t\t%s\n", n);
			else
				fprintf(out, "\t\t\t# protocol %d has no name\n", p);
		}
		fprintf(out, "\t\t}\n");
	}
	if (f->addr_policy != FILTER_NONE) {
		fprintf(out, "\t\tAddress %s {\n", policy_name(f->addr_policy));
		for (unsigned i = 0; i < f->naddrs; i++) {
			const struct conf_addr_filter *a = &f->addrs[i];
			bool v4 = a->family == AF_INET;

			fprintf(out, "\t\t\t%s ", v4 ? "IPv4_address" : "IPv6_address");
			print_addr(out, a->family, &a->addr);
			if (a->prefix != (v4 ? 32 : 128))
				fprintf(out, "/%u", a->prefix);
			fputc('\n', out);
		}
		fprintf(out, "\t\t}\n");
	}
	if (f->state_policy != FILTER_NONE) {
		fprintf(out, "\t\tState %s {", policy_name(f->state_policy));
		if (f->tcp_states) {
			for (unsigned s = 1; s < 10; s++)
				if (f->tcp_states & (1u << s))
					fprintf(out, " %s", tcp_state_names[s]);
			fprintf(out, " for TCP");
		}
		fprintf(out, " }\n");
	}
	fprintf(out, "\t}\n");
}

static void print_general(const struct ctd_conf *c, FILE *out)
{
	const char *fac;

	fprintf(out, "General {\n");
	fprintf(out, "\tHashSize %u\n", c->hashsize);
	fprintf(out, "\tHashLimit %u\n", c->hashlimit);
	if (c->logfile[0])
		fprintf(out, "\tLogFile %s\n", c->logfile);
	fac = conf_facility_name(c->syslog_facility);
	fprintf(out, "\tSyslog %s\n", fac ? fac : "off");
	fprintf(out, "\tLockFile %s\n", c->lockfile);
	if (c->unix_path[0] || c->unix_mode != 0600) {
		fprintf(out, "\tUNIX {\n");
		if (c->unix_path[0])
			fprintf(out, "\t\tPath %s\n", c->unix_path);
		if (c->unix_mode != 0600)	/* keep 1.4.x-readable when default */
			fprintf(out, "\t\tPermissions 0%03o\n", c->unix_mode);
		fprintf(out, "\t}\n");
	}
	if (c->nl_bufsize)
		fprintf(out, "\tNetlinkBufferSize %u\n", c->nl_bufsize);
	if (c->nl_bufsize_max)
		fprintf(out, "\tNetlinkBufferSizeMaxGrowth %u\n", c->nl_bufsize_max);
	if (c->nl_overrun_resync)
		fprintf(out, "\tNetlinkOverrunResync %u\n", c->nl_overrun_resync);
	else
		fprintf(out, "\tNetlinkOverrunResync off\n");
	fprintf(out, "\tNetlinkEventsReliable %s\n", onoff(c->nl_events_reliable));
	if (c->poll_secs)
		fprintf(out, "\tPollSecs %u\n", c->poll_secs);
	fprintf(out, "\tEventIterationLimit %u\n", c->event_iteration_limit);
	if (c->sched_type_set || c->sched_priority) {
		fprintf(out, "\tScheduler {\n");
		if (c->sched_type_set)
			fprintf(out, "\t\tType %s\n", c->sched_policy == SCHED_FIFO ? "FIFO" : "RR");
		fprintf(out, "\t\tPriority %d\n", c->sched_priority);
		fprintf(out, "\t}\n");
	}
	fprintf(out, "\tSystemd %s\n", onoff(c->systemd));
	if (c->filter.present)
		print_filter(&c->filter, out);
	fprintf(out, "}\n");
}

static void print_channel(const struct ctd_conf *c, const struct conf_channel *ch,
			  FILE *out)
{
	static const char *const kinds[] = {
		[CHAN_MCAST] = "Multicast", [CHAN_UDP] = "UDP", [CHAN_TCP] = "TCP",
	};
	bool v4 = ch->family != AF_INET6;

	if (ch->kind <= CHAN_NONE || ch->kind > CHAN_TCP)
		return;
	fprintf(out, "\t%s%s {\n", kinds[ch->kind], ch->is_default ? " Default" : "");
	if (ch->have_addr) {
		fprintf(out, "\t\t%s ", v4 ? "IPv4_address" : "IPv6_address");
		print_addr(out, ch->family, &ch->addr);
		fputc('\n', out);
	}
	if (ch->have_dest) {
		fprintf(out, "\t\t%s ", v4 ? "IPv4_Destination_Address"
					   : "IPv6_Destination_Address");
		print_addr(out, ch->family, &ch->dest);
		fputc('\n', out);
	}
	if (ch->have_ifaddr) {
		fprintf(out, "\t\tIPv4_interface ");
		print_addr(out, AF_INET, &ch->ifaddr);
		fputc('\n', out);
	}
	if (ch->kind == CHAN_MCAST)
		fprintf(out, "\t\tGroup %u\n", ch->port);
	else
		fprintf(out, "\t\tPort %u\n", ch->port);
	if (ch->ifname[0])
		fprintf(out, "\t\tInterface %s\n", ch->ifname);
	if (ch->sndbuf)
		fprintf(out, "\t\tSndSocketBuffer %u\n", ch->sndbuf);
	if (ch->rcvbuf)
		fprintf(out, "\t\tRcvSocketBuffer %u\n", ch->rcvbuf);
	fprintf(out, "\t\tChecksum %s\n", onoff(ch->checksum));
	/* One global value, only writable inside a TCP block. */
	if (ch == &c->channels[0] && ch->kind == CHAN_TCP)
		fprintf(out, "\t\tErrorQueueLength %u\n", c->error_queue_length);
	fprintf(out, "\t}\n");
}

static void print_sync(const struct ctd_conf *c, FILE *out)
{
	fprintf(out, "Sync {\n");
	switch (c->mode) {
	case SYNC_MODE_FTFW:
		fprintf(out, "\tMode FTFW {\n");
		fprintf(out, "\t\tResendQueueSize %u\n", c->resend_queue_size);
		fprintf(out, "\t\tACKWindowSize %u\n", c->ack_window_size);
		fprintf(out, "\t\tDisableExternalCache %s\n", onoff(c->disable_external_cache));
		fprintf(out, "\t\tStartupResync %s\n", onoff(c->startup_resync));
		fprintf(out, "\t}\n");
		break;
	case SYNC_MODE_ALARM:
		fprintf(out, "\tMode ALARM {\n\t}\n");
		break;
	case SYNC_MODE_NOTRACK:
		fprintf(out, "\tMode NOTRACK {\n");
		fprintf(out, "\t\tDisableInternalCache %s\n", onoff(c->disable_internal_cache));
		fprintf(out, "\t\tDisableExternalCache %s\n", onoff(c->disable_external_cache));
		fprintf(out, "\t\tStartupResync %s\n", onoff(c->startup_resync));
		fprintf(out, "\t}\n");
		break;
	default:
		fprintf(out, "\t# no Mode: the daemon defaults to FTFW\n");
		break;
	}
	fprintf(out, "\tRefreshTime %u\n", c->refresh_time);
	fprintf(out, "\tCacheTimeout %u\n", c->cache_timeout);
	if (c->commit_timeout)
		fprintf(out, "\tCommitTimeout %u\n", c->commit_timeout);
	fprintf(out, "\tPurgeTimeout %u\n", c->purge_timeout);
	for (unsigned i = 0; i < c->nchannels; i++)
		print_channel(c, &c->channels[i], out);
	fprintf(out, "\tOptions {\n");
	fprintf(out, "\t\tTCPWindowTracking %s\n", onoff(c->tcp_window_tracking));
	if (c->expectation_sync && c->nexp_helpers) {
		fprintf(out, "\t\tExpectationSync {\n");
		for (unsigned i = 0; i < c->nexp_helpers; i++)
			fprintf(out, "\t\t\t%s\n", c->exp_helpers[i]);
		fprintf(out, "\t\t}\n");
	} else {
		fprintf(out, "\t\tExpectationSync %s\n", onoff(c->expectation_sync));
	}
	if (c->auth_key_file[0])
		fprintf(out, "\t\tAuthKeyFile %s\n", c->auth_key_file);
	fprintf(out, "\t}\n");
	fprintf(out, "}\n");
}

static void print_stats(const struct ctd_conf *c, FILE *out)
{
	const char *fac = conf_facility_name(c->stats_syslog_facility);

	fprintf(out, "Stats {\n");
	if (c->stats_logfile[0])
		fprintf(out, "\tLogFile %s\n", c->stats_logfile);
	fprintf(out, "\tSyslog %s\n", fac ? fac : "off");
	fprintf(out, "}\n");
}

static void print_helper(const struct ctd_conf *c, FILE *out)
{
	fprintf(out, "Helper {\n");
	fprintf(out, "\tSetup %s\n", onoff(c->helper_setup));
	for (unsigned i = 0; i < c->nhelpers; i++) {
		const struct conf_helper *h = &c->helpers[i];

		fprintf(out, "\tType %s %s %s {\n", h->name,
			h->l3 == AF_INET6 ? "inet6" : "inet", h->l4 == 17 ? "udp" : "tcp");
		fprintf(out, "\t\tQueueNum %u\n", h->queue_num);
		fprintf(out, "\t\tQueueLen %u\n", h->queue_len);
		for (unsigned j = 0; j < h->npolicies; j++)
			fprintf(out, "\t\tPolicy %s {\n\t\t\tExpectMax %u\n"
				"\t\t\tExpectTimeout %u\n\t\t}\n", h->policies[j].name,
				h->policies[j].expect_max, h->policies[j].expect_timeout);
		fprintf(out, "\t}\n");
	}
	fprintf(out, "}\n");
}

void conf_print(const struct ctd_conf *c, FILE *out)
{
	fprintf(out, "# effective configuration read from ");
	for (const char *p = c->file; *p; p++)	/* a newline would end the comment */
		fputc((unsigned char)*p < 0x20 ? '?' : *p, out);
	fputc('\n', out);
	print_general(c, out);
	if (c->has_sync)
		print_sync(c, out);
	if (c->has_stats)
		print_stats(c, out);
	if (c->has_helper)
		print_helper(c, out);
}
