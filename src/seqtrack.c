/*
 * Receive-side sequence tracking, one state per sender address. 1.4.x
 * keeps a single "last sequence" for everyone, which breaks as soon as a
 * third node talks; the wire is unchanged, only the bookkeeping is per peer.
 */
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "sync_priv.h"

static void peer_key(const void *from, size_t fromlen, uint8_t addr[16], uint8_t *fam)
{
	const struct sockaddr *sa = from;

	memset(addr, 0, 16);
	*fam = 0;
	if (from == NULL || fromlen < sizeof(sa_family_t))
		return;
	if (sa->sa_family == AF_INET && fromlen >= sizeof(struct sockaddr_in)) {
		memcpy(addr, &((const struct sockaddr_in *)from)->sin_addr, 4);
		*fam = AF_INET;
	} else if (sa->sa_family == AF_INET6 && fromlen >= sizeof(struct sockaddr_in6)) {
		memcpy(addr, &((const struct sockaddr_in6 *)from)->sin6_addr, 16);
		*fam = AF_INET6;
	}
}

struct peer *seqtrack_peer(struct seqtrack *t, const void *from, size_t fromlen,
			   uint32_t window, uint64_t now_ms)
{
	uint8_t addr[16], fam;
	struct peer *p = NULL;

	peer_key(from, fromlen, addr, &fam);
	for (unsigned i = 0; i < t->n; i++) {
		if (t->peers[i].family == fam && memcmp(t->peers[i].addr, addr, 16) == 0) {
			p = &t->peers[i];
			goto found;
		}
	}
	if (t->n < SEQTRACK_MAX_PEERS) {
		p = &t->peers[t->n++];
	} else {
		p = &t->peers[0];
		for (unsigned i = 1; i < t->n; i++)
			if (t->peers[i].last_seen_ms < p->last_seen_ms)
				p = &t->peers[i];
	}
	memset(p, 0, sizeof(*p));
	memcpy(p->addr, addr, 16);
	p->family = fam;
	p->window = window;
found:
	p->last_seen_ms = now_ms;
	return p;
}

enum seq_class seqtrack_classify(const struct peer *p, uint32_t s, struct seq_stats *st)
{
	uint32_t expected;

	if (!p->tracking)
		return SEQ_UNSET;
	expected = p->last + 1;
	if (s == expected)
		return SEQ_IN_SYNC;
	if (seq_after(s, expected)) {
		/* Kept from 1.4.x so -s network matches: counts gap + 2. */
		st->lost += (uint64_t)(s - p->last) + 1;
		return SEQ_AFTER;
	}
	st->before++;
	return SEQ_BEFORE;
}

void seqtrack_accept(struct peer *p, uint32_t s)
{
	p->last = s;
	p->tracking = true;
}
