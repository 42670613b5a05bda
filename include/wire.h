/*
 * The sync wire codec (shared/spec/sync-protocol.md §1-4, doc/wire-protocol.md).
 * Byte-identical to conntrackd 1.4.7-1.4.9. Decoders check every length
 * before reading and never modify the input buffer.
 */
#ifndef CTD_WIRE_H
#define CTD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "obj.h"

#define WIRE_VERSION        1
#define WIRE_HDR_LEN        8
#define WIRE_CTL_LEN        16

enum wire_type {
	WT_CT_NEW = 0, WT_CT_UPD = 1, WT_CT_DEL = 2,
	WT_EXP_NEW = 3, WT_EXP_UPD = 4, WT_EXP_DEL = 5,
	WT_CTL = 10,
};

enum wire_flags {
	WF_RESYNC = 0x02, WF_NACK = 0x04, WF_ACK = 0x08, WF_ALIVE = 0x10,
	WF_HELLO = 0x20, WF_HELLO_BACK = 0x40,
};

/* Conntrack attribute ids (message types 0-2), sync-protocol.md §4.3. */
enum nta_ct {
	NTA_IPV4 = 0, NTA_IPV6, NTA_L4PROTO, NTA_PORT, NTA_TCP_STATE,
	NTA_STATUS, NTA_TIMEOUT, NTA_MARK, NTA_MASTER_IPV4, NTA_MASTER_IPV6,
	NTA_MASTER_L4PROTO, NTA_MASTER_PORT, NTA_SNAT_IPV4, NTA_DNAT_IPV4,
	NTA_SPAT_PORT, NTA_DPAT_PORT, NTA_NAT_SEQ_ADJ, NTA_SCTP_STATE,
	NTA_SCTP_VTAG_ORIG, NTA_SCTP_VTAG_REPL, NTA_DCCP_STATE, NTA_DCCP_ROLE,
	NTA_ICMP_TYPE, NTA_ICMP_CODE, NTA_ICMP_ID, NTA_TCP_WSCALE_ORIG,
	NTA_TCP_WSCALE_REPL, NTA_HELPER_NAME, NTA_LABELS, NTA_SNAT_IPV6,
	NTA_DNAT_IPV6, NTA_SYNPROXY, NTA_ZONE,
	NTA_CT_MAX                  /* 33: first id a receiver rejects */
};

/* Expectation attribute ids (message types 3-5), §4.7. */
enum nta_exp {
	NTA_EXP_MASTER_IPV4 = 0, NTA_EXP_MASTER_IPV6, NTA_EXP_MASTER_L4PROTO,
	NTA_EXP_MASTER_PORT, NTA_EXP_EXPECT_IPV4, NTA_EXP_EXPECT_IPV6,
	NTA_EXP_EXPECT_L4PROTO, NTA_EXP_EXPECT_PORT, NTA_EXP_MASK_IPV4,
	NTA_EXP_MASK_IPV6, NTA_EXP_MASK_L4PROTO, NTA_EXP_MASK_PORT,
	NTA_EXP_TIMEOUT, NTA_EXP_FLAGS, NTA_EXP_CLASS, NTA_EXP_NAT_IPV4,
	NTA_EXP_NAT_PORT, NTA_EXP_NAT_L4PROTO, NTA_EXP_NAT_DIR,
	NTA_EXP_HELPER_NAME, NTA_EXP_FN,
	NTA_EXP_MAX                 /* 21 */
};

struct wire_hdr {                   /* decoded, host order */
	uint8_t  version, type, flags;
	uint16_t len;
	uint32_t seq;
	uint32_t from, to;          /* ACK/NACK/RESYNC only */
};

/* Receive-side counters, printed by -s network. */
struct wire_rx_stats {
	uint64_t malformed;         /* sum of the causes below */
	uint32_t wrong_version, bad_header, bad_payload, bad_type, truncated, bad_size;
};

/* Count one malformed message of a cause, e.g. WIRE_RX_BAD(st, bad_header). */
#define WIRE_RX_BAD(st, cause)  ((st)->cause++, (st)->malformed++)

/* Step 6 of §2.7, left to the caller by wire_next(): false (and counted as
 * "Wrong protocol version") if the message is to be skipped. */
static inline bool
wire_version_ok(const struct wire_hdr *h, struct wire_rx_stats *st)
{
	if (h->version == WIRE_VERSION)
		return true;
	WIRE_RX_BAD(st, wrong_version);
	return false;
}

/* Receiver classification (§3). ACK/NACK/RESYNC/ALIVE are tested in the
 * FT-FW order; NOTRACK (RESYNC, ALIVE only) tests the flags itself. An
 * ACK/NACK whose `to` is before `from` is still WK_ACK/WK_NACK: FT-FW
 * rejects it only after its HELLO handling (§6.3). */
enum wire_kind {
	WK_BAD = 0, WK_CT, WK_EXP, WK_ACK, WK_NACK, WK_RESYNC, WK_ALIVE,
};

static inline enum wire_kind
wire_kind(const struct wire_hdr *h)
{
	if (h->type <= WT_EXP_DEL) {
		if (h->flags & ~(WF_HELLO | WF_HELLO_BACK))
			return WK_BAD;
		return h->type <= WT_CT_DEL ? WK_CT : WK_EXP;
	}
	if (h->type != WT_CTL)
		return WK_BAD;
	if (h->flags & WF_ACK)
		return WK_ACK;
	if (h->flags & WF_NACK)
		return WK_NACK;
	if (h->flags & WF_RESYNC)
		return WK_RESYNC;
	if (h->flags & WF_ALIVE)
		return WK_ALIVE;
	return WK_BAD;
}

/* Options that change what the sender emits. */
struct wire_tx_opts {
	bool omit_timeout;          /* sender has CommitTimeout */
	bool tcp_window_tracking;   /* send WSCALE attributes */
};

/* Encoders never allocate. ct->ext->labels holds 32-bit words in host
 * order (word w, bit b = label 32*w+b); the wire carries them big-endian.
 * NAT attributes are derived from the orig and reply tuples and the status
 * (§4.6); without a reply tuple none is sent. */
/* Encoders write one message at buf (capacity cap) and return its length,
 * or -1 if it does not fit. seq and flags go into the header. */
int wire_put_ct(uint8_t *buf, size_t cap, enum wire_type t, uint8_t flags,
		uint32_t seq, const struct ct *ct, const struct wire_tx_opts *o);
int wire_put_exp(uint8_t *buf, size_t cap, enum wire_type t, uint8_t flags,
		 uint32_t seq, const struct exp *e, const struct wire_tx_opts *o);
int wire_put_ctl(uint8_t *buf, size_t cap, uint8_t flags, uint32_t seq,
		 uint32_t from, uint32_t to);   /* 8 bytes if ALIVE, else 16 */

/*
 * Splitting a chunk into messages, following §2.7 exactly.
 * wire_next() looks at data[0..len) and returns:
 *   > 0  length of one complete message (hdr filled, version not checked);
 *     0  need more bytes (stream channels: keep them);
 *    -1  malformed: the cause was counted in st, the rest of the chunk is
 *        to be discarded (datagram) or the stream reset (TCP).
 * `stream` selects the TCP rules (incomplete messages wait, not truncated).
 */
int wire_next(const uint8_t *data, size_t len, bool stream,
	      struct wire_hdr *hdr, struct wire_rx_stats *st);

/* Decode the attributes of a state message (types 0-5) of length len
 * (msg points at its header). Returns 0, or -1 if malformed (the caller
 * counts "Malformed payload"). The output struct is overwritten, not
 * released: pass a zeroed or released one. On success ct->ext is allocated
 * only if master/labels/seqadj/synproxy came; on failure nothing is held.
 * The reply tuple is rebuilt: inverse of orig (ICMP reply type derived)
 * with the NAT attributes substituted, flagged CT_H_REPL_SYNTH. */
int wire_get_ct(const uint8_t *msg, size_t len, struct ct *ct);
int wire_get_exp(const uint8_t *msg, size_t len, struct exp *e);

#endif
