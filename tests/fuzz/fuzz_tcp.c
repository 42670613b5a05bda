/*
 * TCP stream reassembly (chan_rbuf, src/channel.c) fed the same byte stream
 * in chunks whose sizes the input chooses. The receive callback splits
 * messages with wire_next() in stream mode, as the sync engine does, and
 * resets the stream on a malformed header. Properties:
 *   - never a crash, and the callback never sees more than 64 KiB;
 *   - for a well-formed stream, the chunked delivery gives exactly the
 *     messages (bytes and boundaries) of one big read, which are the stream.
 * Input: [n][n chunk-size bytes][stream...].
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "wire.h"

struct rec {
	uint8_t *out;                   /* delivered messages, back to back */
	size_t   outlen;
	size_t  *bounds;                /* end offset of each message in out */
	size_t   nmsgs;
	size_t   cap;                   /* of out and bounds: the stream length */
	unsigned resets;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t on_chunk(struct ctd *d, unsigned idx, const uint8_t *buf, size_t len,
		       const void *from, size_t fromlen)
{
	struct rec *r = (struct rec *)(uintptr_t)from;
	struct wire_rx_stats st;
	size_t off = 0;

	(void)d;
	(void)idx;
	(void)fromlen;
	if (len == 0 || len > CHAN_RBUF_SIZE)
		abort();
	memset(&st, 0, sizeof(st));
	for (;;) {
		struct wire_hdr h;
		int n = wire_next(buf + off, len - off, true, &h, &st);

		if (n == 0)
			break;
		if (n < 0) {
			r->resets++;
			return len;     /* malformed: drop what we hold */
		}
		if ((size_t)n > len - off || r->outlen + (size_t)n > r->cap)
			abort();
		memcpy(r->out + r->outlen, buf + off, (size_t)n);
		r->outlen += (size_t)n;
		r->bounds[r->nmsgs++] = r->outlen;
		off += (size_t)n;
	}
	return off;
}

static bool rec_init(struct rec *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->out = malloc(cap + 1);
	r->bounds = malloc((cap + 1) * sizeof(*r->bounds));
	return r->out && r->bounds;
}

static void rec_free(struct rec *r)
{
	free(r->out);
	free(r->bounds);
}

/* The whole stream is back-to-back well-formed messages. */
static bool stream_valid(const uint8_t *s, size_t len)
{
	struct wire_rx_stats st;
	size_t off = 0;

	memset(&st, 0, sizeof(st));
	while (off < len) {
		struct wire_hdr h;
		int n = wire_next(s + off, len - off, true, &h, &st);

		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

static size_t chunk_size(uint8_t b)
{
	return b < 128 ? (size_t)b + 1 : (size_t)(b - 127) * 600;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chan_rbuf whole, parts;
	struct rec rw, rp;
	const uint8_t *splits, *stream;
	size_t nsplit, slen, off, i;

	if (size < 1)
		return 0;
	nsplit = data[0] % 64;
	if (size < 1 + nsplit)
		return 0;
	splits = data + 1;
	stream = data + 1 + nsplit;
	slen = size - 1 - nsplit;

	if (chan_rbuf_init(&whole) < 0 || chan_rbuf_init(&parts) < 0)
		abort();
	if (!rec_init(&rw, slen) || !rec_init(&rp, slen))
		abort();

	chan_rbuf_push(&whole, stream, slen, on_chunk, NULL, 0, &rw, 0);
	for (off = 0, i = 0; off < slen; i++) {
		size_t n = nsplit ? chunk_size(splits[i % nsplit]) : slen;

		if (n > slen - off)
			n = slen - off;
		chan_rbuf_push(&parts, stream + off, n, on_chunk, NULL, 0, &rp, 0);
		off += n;
	}

	if (stream_valid(stream, slen)) {
		if (rw.resets || rp.resets || whole.len || parts.len)
			abort();
		if (rw.outlen != slen || memcmp(rw.out, stream, slen) != 0)
			abort();
		if (rp.nmsgs != rw.nmsgs || rp.outlen != rw.outlen ||
		    memcmp(rp.out, rw.out, rw.outlen) != 0 ||
		    memcmp(rp.bounds, rw.bounds, rw.nmsgs * sizeof(*rw.bounds)) != 0)
			abort();
	}
	if (whole.len > CHAN_RBUF_SIZE || parts.len > CHAN_RBUF_SIZE)
		abort();

	rec_free(&rw);
	rec_free(&rp);
	chan_rbuf_free(&whole);
	chan_rbuf_free(&parts);
	return 0;
}
