/*
 * The sync wire codec (shared/spec/sync-protocol.md §1-4, doc/wire-protocol.md).
 * Byte-identical to conntrackd 1.4.7-1.4.9. Decoders check every length
 * before reading and never modify the input buffer.
 */
#ifndef CTD_WIRE_H
#define CTD_WIRE_H

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

/* Options that change what the sender emits. */
struct wire_tx_opts {
	bool omit_timeout;          /* sender has CommitTimeout */
	bool tcp_window_tracking;   /* send WSCALE attributes */
};

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

/* Decode the attributes of a state message (types 0-5) of length len.
 * Returns 0, or -1 if malformed (the caller counts "Malformed payload"). */
int wire_get_ct(const uint8_t *msg, size_t len, struct ct *ct);
int wire_get_exp(const uint8_t *msg, size_t len, struct exp *e);

#endif
