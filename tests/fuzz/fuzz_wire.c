/*
 * libFuzzer target for the sync wire codec. The input is one datagram:
 * it is split with wire_next(), every state message is decoded, and what
 * decodes is re-encoded and decoded again. Checked beyond "no crash":
 *  - the counters add up, and framing as a TCP stream fed in pieces finds
 *    the same messages as framing as a datagram;
 *  - whatever we decode we can send, and what we send we accept;
 *  - after one normalising round, encode(decode(x)) is a fixpoint.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Iinclude tests/fuzz/fuzz_wire.c src/wire.c src/obj.c -o fuzz_wire
 *   ./fuzz_wire -runs=1000000 tests/fuzz/corpus-wire
 */
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)        do { if (!(c)) abort(); } while (0)

static const struct wire_tx_opts opts[2] = { { false, true }, { true, false } };

static void
ct_cycle(const uint8_t *msg, size_t len, const struct wire_hdr *h)
{
	static uint8_t b1[4096], b2[4096], b3[4096];
	struct ct c1, c2, c3;
	const struct wire_tx_opts *o = &opts[h->seq & 1];
	int n1, n2, n3;

	if (wire_get_ct(msg, len, &c1) < 0)
		return;
	n1 = wire_put_ct(b1, sizeof(b1), h->type, h->flags, h->seq, &c1, o);
	CHECK(n1 >= WIRE_HDR_LEN && n1 % 4 == 0);
	CHECK(wire_get_ct(b1, n1, &c2) == 0);
	/* the address, protocol and zone always survive; ports too where
	 * the wire carries them and the sender had them */
	CHECK(c2.orig.l3 == c1.orig.l3 && c2.orig.l4 == c1.orig.l4);
	CHECK(!memcmp(&c2.orig.src, &c1.orig.src, sizeof(c1.orig.src)));
	CHECK(c2.zone == c1.zone);
	n2 = wire_put_ct(b2, sizeof(b2), h->type, h->flags, h->seq, &c2, o);
	CHECK(n2 > 0);
	CHECK(wire_get_ct(b2, n2, &c3) == 0);
	n3 = wire_put_ct(b3, sizeof(b3), h->type, h->flags, h->seq, &c3, o);
	CHECK(n3 == n2 && !memcmp(b2, b3, n2));
	CHECK(ct_key_equal(&c2, &c3) &&
	    ct_hash(&c2, 7) == ct_hash(&c3, 7));
	ct_release(&c1);
	ct_release(&c2);
	ct_release(&c3);
}

static void
exp_cycle(const uint8_t *msg, size_t len, const struct wire_hdr *h)
{
	static uint8_t b1[4096], b2[4096];
	struct exp e1, e2;
	const struct wire_tx_opts *o = &opts[h->seq & 1];
	int n1, n2;

	if (wire_get_exp(msg, len, &e1) < 0)
		return;
	n1 = wire_put_exp(b1, sizeof(b1), h->type, h->flags, h->seq, &e1, o);
	CHECK(n1 >= WIRE_HDR_LEN && n1 % 4 == 0);
	CHECK(wire_get_exp(b1, n1, &e2) == 0);
	n2 = wire_put_exp(b2, sizeof(b2), h->type, h->flags, h->seq, &e2, o);
	CHECK(n2 == n1 && !memcmp(b1, b2, n1));
}

static unsigned
frame_stream(const uint8_t *data, size_t size)
{
	struct wire_rx_stats st = { 0 };
	struct wire_hdr h;
	size_t off = 0, have = 0, step = size ? data[0] % 7 + 1 : 1;
	unsigned count = 0;
	int r;

	while (have < size) {
		have = have + step > size ? size : have + step;
		while ((r = wire_next(data + off, have - off, true, &h, &st)) > 0) {
			CHECK((size_t)r <= have - off);
			off += r;
			count++;
		}
		if (r < 0)
			break;
	}
	CHECK(st.truncated == 0);       /* a stream waits instead */
	return count;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_rx_stats st = { 0 };
	struct wire_hdr h;
	size_t off = 0;
	unsigned count = 0;
	int r;

	while (off < size) {
		r = wire_next(data + off, size - off, false, &h, &st);
		CHECK(r != 0);
		if (r < 0)
			break;
		CHECK(r >= WIRE_HDR_LEN && (size_t)r <= size - off);
		CHECK(r == h.len);
		count++;
		if (wire_version_ok(&h, &st)) {
			switch (wire_kind(&h)) {
			case WK_CT:
				ct_cycle(data + off, r, &h);
				break;
			case WK_EXP:
				exp_cycle(data + off, r, &h);
				break;
			default:
				break;
			}
		}
		off += r;
	}
	CHECK(st.malformed == (uint64_t)st.wrong_version + st.bad_header +
	    st.bad_payload + st.bad_type + st.truncated + st.bad_size);
	CHECK(st.malformed <= count + 1);
	CHECK(frame_stream(data, size) == count);
	return 0;
}
