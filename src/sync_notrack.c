/*
 * NOTRACK (sync-protocol.md §8): every object is sent once, sequence
 * numbers are tracked for the counters only, everything is applied.
 */
#include "log.h"
#include "sync_priv.h"

enum rx_result notrack_recv(struct sync *s, struct peer *p, const struct wire_hdr *h)
{
	enum rx_result r;

	/* Classified for -s network only; late or repeated messages apply too. */
	seqtrack_classify(p, h->seq, &s->seqst);
	if (h->type <= WT_EXP_DEL && (h->flags & ~(WF_HELLO | WF_HELLO_BACK)) == 0) {
		r = RX_DATA;
	} else if (h->type == WT_CTL && (h->flags & WF_RESYNC)) {
		log_notice("resync requested by other node");
		sync_bulk(s);
		r = RX_CTL;
	} else if (h->type == WT_CTL && (h->flags & WF_ALIVE)) {
		r = RX_CTL;
	} else {
		return RX_BAD;
	}
	seqtrack_accept(p, h->seq);
	return r;
}

void notrack_alive(struct sync *s)
{
	sync_enqueue_ctl(s, WF_ALIVE, 0, 0);
}
