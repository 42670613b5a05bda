/*
 * Optional datagram authentication for the sync channels (doc/auth.md):
 * an HMAC-SHA-256 trailer with a key id and a 64-bit counter, checked
 * against a per-peer replay window. Not part of the conntrackd 1.4.x wire:
 * only between our own daemons, all configured with the same keys.
 */
#ifndef CTD_AUTH_H
#define CTD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_MAGIC          0x43544131u     /* "CTA1" */
#define AUTH_MAC_LEN        32
#define AUTH_TRAILER_LEN    (4 + 4 + 8 + AUTH_MAC_LEN)     /* 48 */
#define AUTH_KEY_MAX        64              /* bytes, one SHA-256 block */
#define AUTH_KEYS_MAX       4               /* for rotation */
#define AUTH_WINDOW         64              /* counters, replay window */

struct auth_key {
	uint32_t id;
	uint8_t  len;
	uint8_t  key[AUTH_KEY_MAX];
};

struct auth_ctx {
	struct auth_key keys[AUTH_KEYS_MAX];
	unsigned nkeys;
	unsigned tx;                    /* index of the key we sign with */
	uint64_t counter;               /* last counter sent */
};

/* Receive state of one sender (one per peer address). Zero = fresh. */
struct auth_replay {
	bool     seen;
	uint64_t top;                   /* highest counter accepted */
	uint64_t mask;                  /* bit i: top - i accepted */
};

enum auth_result {
	AUTH_OK = 0,
	AUTH_NO_TRAILER,                /* too short or no magic */
	AUTH_UNKNOWN_KEY,
	AUTH_BAD_MAC,
	AUTH_REPLAY,                    /* counter already accepted */
	AUTH_TOO_OLD,                   /* counter left of the window */
	AUTH_ERROR,                     /* libcrypto failure */
	AUTH_BAD_RECORD,                /* TCP record header invalid */
};

/*
 * Start a context. The counter starts at the wall clock in microseconds,
 * so a restarted sender continues above what its peers have seen (like
 * the sync sequence number starting at Unix time). now_us is a parameter
 * for the tests; pass the current CLOCK_REALTIME.
 */
void auth_init(struct auth_ctx *a, uint64_t now_us);
/* Add a key (1..64 bytes). The first key added signs; see auth_use_key. */
int  auth_add_key(struct auth_ctx *a, uint32_t id, const void *key,
		  size_t len);
int  auth_use_key(struct auth_ctx *a, uint32_t id);

/* Append the trailer to the datagram buf[0..len): returns the new length,
 * or -1 if cap is too small or no key is configured. */
int  auth_sign(struct auth_ctx *a, uint8_t *buf, size_t len, size_t cap);

/* Check a received datagram. On AUTH_OK *payload_len is the length of the
 * sync messages in front of the trailer and r has recorded the counter;
 * on any other result r is unchanged (forgeries do not move the window). */
enum auth_result auth_verify(const struct auth_ctx *a, struct auth_replay *r,
			     const uint8_t *buf, size_t len,
			     size_t *payload_len);

/*
 * TCP has no datagram boundaries, so each flushed chunk becomes a record:
 *   "CTR1" | BE16 record length | BE16 0 | messages | trailer
 * and the trailer's MAC covers the record header too.
 */
#define AUTH_REC_MAGIC      0x43545231u     /* "CTR1" */
#define AUTH_REC_HDR_LEN    8
#define AUTH_REC_MAX        0xffff

/* buf[AUTH_REC_HDR_LEN, +len) holds the messages; writes the header in
 * front and the trailer behind. Returns the record length or -1. */
int  auth_seal_record(struct auth_ctx *a, uint8_t *buf, size_t len,
		      size_t cap);

/* Look at the stream data[0..len): > 0 one complete authentic record of
 * that length (*msgs, *msgs_len: the messages inside); 0 need more bytes;
 * -1 refused, *res says why (reset the connection). */
int  auth_open_record(const struct auth_ctx *a, struct auth_replay *r,
		      const uint8_t *data, size_t len, const uint8_t **msgs,
		      size_t *msgs_len, enum auth_result *res);

const char *auth_strerror(enum auth_result res);

/*
 * Load the keys of an AuthKeyFile into a (after auth_init). The file must
 * be a regular file (never a symlink), owned by root, with no access for
 * group or other. Format: one key per line, `ID HEX` (id 1..2^32-1, 2 to
 * 128 hex digits = 1..64 bytes); `#` starts a comment; the first key signs,
 * the others are accepted too (rotation). Returns 0, or -1 with a message
 * naming the file (and line) and why in err.
 */
int  auth_load_file(struct auth_ctx *a, const char *path, char *err,
		    size_t errlen);

#endif
