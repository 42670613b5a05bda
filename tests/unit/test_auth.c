/*
 * Datagram authentication: a signed datagram is accepted exactly once,
 * any change to it is refused, forgeries never move the replay window,
 * and a restarted sender is accepted again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"

/* An ALIVE message, as a sync payload. */
static const uint8_t alive[8] = { 0x1a, 0x30, 0x00, 0x08,
				  0x6b, 0x08, 0xad, 0x20 };

static void
sender(struct auth_ctx *a, uint64_t now)
{
	auth_init(a, now);
	assert_int_equal(auth_add_key(a, 1, "Jefe", 4), 0);
}

static int
sign(struct auth_ctx *a, uint8_t *buf)
{
	memcpy(buf, alive, sizeof(alive));
	return auth_sign(a, buf, sizeof(alive), 256);
}

/* Known answer, computed independently (Python hmac/hashlib). */
static void
test_known_answer(void **state)
{
	static const char *want =
	    "1a3000086b08ad20435441310000000100000000000f4241"
	    "4846012413eda6d28b55c0d1945a0fc74680704162ac1a3cdd5a6db55fed0de9";
	struct auth_ctx a;
	uint8_t buf[256];
	char hex[2 * sizeof(buf) + 1];
	int n;

	(void)state;
	sender(&a, 1000000);
	n = sign(&a, buf);
	assert_int_equal(n, 8 + AUTH_TRAILER_LEN);
	for (int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", buf[i]);
	assert_string_equal(hex, want);
}

static void
test_accept_once(void **state)
{
	struct auth_ctx tx, rx;
	struct auth_replay r = { 0 };
	uint8_t buf[256];
	size_t plen = 0;
	int n;

	(void)state;
	sender(&tx, 5000);
	sender(&rx, 0);
	n = sign(&tx, buf);
	assert_int_equal(auth_verify(&rx, &r, buf, n, &plen), AUTH_OK);
	assert_int_equal(plen, sizeof(alive));
	assert_memory_equal(buf, alive, plen);
	assert_int_equal(auth_verify(&rx, &r, buf, n, &plen), AUTH_REPLAY);
}

static void
test_tamper(void **state)
{
	struct auth_ctx tx, rx;
	struct auth_replay r = { 0 }, before;
	uint8_t buf[256];
	size_t plen;
	int n;

	(void)state;
	sender(&tx, 5000);
	sender(&rx, 0);
	n = sign(&tx, buf);
	/* flip every bit of every byte in turn: only the magic and key id
	 * give other answers, everything else is a bad MAC */
	for (int i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			enum auth_result res;

			buf[i] ^= 1u << bit;
			before = r;
			res = auth_verify(&rx, &r, buf, n, &plen);
			buf[i] ^= 1u << bit;
			if (i >= 8 && i < 12)
				assert_int_equal(res, AUTH_NO_TRAILER);
			else if (i >= 12 && i < 16)
				assert_int_equal(res, AUTH_UNKNOWN_KEY);
			else
				assert_int_equal(res, AUTH_BAD_MAC);
			assert_memory_equal(&r, &before, sizeof(r));
		}
	}
	/* the untouched datagram still goes through */
	assert_int_equal(auth_verify(&rx, &r, buf, n, &plen), AUTH_OK);
	/* truncated or without trailer */
	assert_int_equal(auth_verify(&rx, &r, buf, n - 1, &plen),
	    AUTH_NO_TRAILER);
	assert_int_equal(auth_verify(&rx, &r, alive, sizeof(alive), &plen),
	    AUTH_NO_TRAILER);
	/* wrong key with the same id */
	{
		struct auth_ctx other;

		auth_init(&other, 0);
		assert_int_equal(auth_add_key(&other, 1, "Jeff", 4), 0);
		n = sign(&tx, buf);
		assert_int_equal(auth_verify(&other, &r, buf, n, &plen),
		    AUTH_BAD_MAC);
	}
}

static void
test_window(void **state)
{
	struct auth_ctx tx, rx;
	struct auth_replay r = { 0 };
	uint8_t d[AUTH_WINDOW + 10][64];
	int n[AUTH_WINDOW + 10];
	size_t plen;

	(void)state;
	sender(&tx, 1u << 20);
	sender(&rx, 0);
	for (int i = 0; i < AUTH_WINDOW + 10; i++)
		n[i] = sign(&tx, d[i]);
	/* newest first, then the others arrive reordered: all accepted
	 * while inside the window, each once */
	assert_int_equal(auth_verify(&rx, &r, d[AUTH_WINDOW], n[AUTH_WINDOW],
	    &plen), AUTH_OK);
	for (int i = AUTH_WINDOW - 1; i >= 1; i--)
		assert_int_equal(auth_verify(&rx, &r, d[i], n[i], &plen),
		    AUTH_OK);
	assert_int_equal(auth_verify(&rx, &r, d[5], n[5], &plen),
	    AUTH_REPLAY);
	/* d[0] is 64 behind the newest: outside the window */
	assert_int_equal(auth_verify(&rx, &r, d[0], n[0], &plen),
	    AUTH_TOO_OLD);
	/* the window slides: what was accepted stays a replay, what falls
	 * out of it becomes too old, skipped ones are still welcome */
	assert_int_equal(auth_verify(&rx, &r, d[AUTH_WINDOW + 9],
	    n[AUTH_WINDOW + 9], &plen), AUTH_OK);
	assert_int_equal(auth_verify(&rx, &r, d[AUTH_WINDOW + 5],
	    n[AUTH_WINDOW + 5], &plen), AUTH_OK);
	assert_int_equal(auth_verify(&rx, &r, d[AUTH_WINDOW], n[AUTH_WINDOW],
	    &plen), AUTH_REPLAY);
	assert_int_equal(auth_verify(&rx, &r, d[8], n[8], &plen),
	    AUTH_TOO_OLD);
	assert_int_equal(auth_verify(&rx, &r, d[10], n[10], &plen),
	    AUTH_REPLAY);
	/* counters are per peer: a fresh replay state accepts d[1] */
	{
		struct auth_replay r2 = { 0 };

		assert_int_equal(auth_verify(&rx, &r2, d[1], n[1], &plen),
		    AUTH_OK);
	}
}

static void
test_restart_and_rotation(void **state)
{
	struct auth_ctx tx, rx;
	struct auth_replay r = { 0 };
	uint8_t buf[256];
	size_t plen;
	int n;

	(void)state;
	sender(&rx, 0);
	assert_int_equal(auth_add_key(&rx, 2, "second key", 10), 0);
	assert_int_equal(auth_add_key(&rx, 2, "dup", 3), -1);
	assert_int_equal(auth_add_key(&rx, 3, "", 0), -1);

	sender(&tx, 1000);
	for (int i = 0; i < 100; i++)
		assert_int_equal(auth_verify(&rx, &r, buf, sign(&tx, buf),
		    &plen), AUTH_OK);
	/* restart a second later: the clock-based counter is above */
	sender(&tx, 2000000);
	assert_int_equal(auth_add_key(&tx, 2, "second key", 10), 0);
	assert_int_equal(auth_use_key(&tx, 2), 0);
	assert_int_equal(auth_use_key(&tx, 9), -1);
	n = sign(&tx, buf);
	assert_int_equal(auth_verify(&rx, &r, buf, n, &plen), AUTH_OK);
	/* a receiver that has not got key 2 yet says so */
	{
		struct auth_ctx old;
		struct auth_replay r2 = { 0 };

		sender(&old, 0);
		assert_int_equal(auth_verify(&old, &r2, buf, n, &plen),
		    AUTH_UNKNOWN_KEY);
		assert_string_equal(auth_strerror(AUTH_UNKNOWN_KEY),
		    "unknown key id");
	}
	/* a restart with the clock set back is refused, visibly */
	sender(&tx, 1000);
	assert_int_equal(auth_verify(&rx, &r, buf, sign(&tx, buf), &plen),
	    AUTH_TOO_OLD);
}

static void
test_sign_bounds(void **state)
{
	struct auth_ctx a;
	uint8_t buf[64 + AUTH_TRAILER_LEN + 1];

	(void)state;
	auth_init(&a, 0);
	assert_int_equal(auth_sign(&a, buf, 8, sizeof(buf)), -1);  /* no key */
	assert_int_equal(auth_add_key(&a, 1, "k", 1), 0);
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(auth_sign(&a, buf, 64, 64 + AUTH_TRAILER_LEN - 1),
	    -1);
	assert_int_equal(buf[64], 0xee);
	assert_int_equal(auth_sign(&a, buf, 64, 64 + AUTH_TRAILER_LEN),
	    64 + AUTH_TRAILER_LEN);
	assert_int_equal(buf[64 + AUTH_TRAILER_LEN], 0xee);
	assert_int_equal(auth_sign(&a, buf, 8, 4), -1);
}

/* TCP records: found in a stream fed byte by byte, back to back, and any
 * change to the header or the content is refused. */
static void
test_tcp_records(void **state)
{
	struct auth_ctx tx, rx;
	struct auth_replay r = { 0 };
	enum auth_result res = AUTH_OK;
	uint8_t s[512];
	const uint8_t *m = NULL;
	size_t ml = 0, n = 0, off = 0, have;
	int rl, got = 0;

	(void)state;
	sender(&tx, 77);
	sender(&rx, 0);
	for (int i = 0; i < 3; i++) {
		memcpy(s + n + AUTH_REC_HDR_LEN, alive, sizeof(alive));
		rl = auth_seal_record(&tx, s + n, sizeof(alive), sizeof(s) - n);
		assert_int_equal(rl, AUTH_REC_HDR_LEN + 8 + AUTH_TRAILER_LEN);
		n += rl;
	}
	for (have = 1; have <= n; have++) {
		while ((rl = auth_open_record(&rx, &r, s + off, have - off, &m,
		    &ml, &res)) > 0) {
			assert_int_equal(ml, sizeof(alive));
			assert_memory_equal(m, alive, ml);
			off += rl;
			got++;
		}
		assert_int_equal(rl, 0);
	}
	assert_int_equal(got, 3);
	/* the same bytes again: replays */
	assert_int_equal(auth_open_record(&rx, &r, s, n, &m, &ml, &res), -1);
	assert_int_equal(res, AUTH_REPLAY);

	n = AUTH_REC_HDR_LEN + 8 + AUTH_TRAILER_LEN;
	memcpy(s + AUTH_REC_HDR_LEN, alive, sizeof(alive));
	assert_int_equal(auth_seal_record(&tx, s, 8, sizeof(s)), (int)n);
	s[AUTH_REC_HDR_LEN + 3] ^= 1;                   /* content */
	assert_int_equal(auth_open_record(&rx, &r, s, n, &m, &ml, &res), -1);
	assert_int_equal(res, AUTH_BAD_MAC);
	s[AUTH_REC_HDR_LEN + 3] ^= 1;
	s[7] = 1;                                       /* reserved */
	assert_int_equal(auth_open_record(&rx, &r, s, n, &m, &ml, &res), -1);
	assert_int_equal(res, AUTH_BAD_RECORD);
	s[7] = 0;
	s[0] = 'X';                                     /* magic */
	assert_int_equal(auth_open_record(&rx, &r, s, 8, &m, &ml, &res), -1);
	assert_int_equal(res, AUTH_BAD_RECORD);
	s[0] = 'C';
	s[5] = 20;                                      /* too short */
	s[4] = 0;
	assert_int_equal(auth_open_record(&rx, &r, s, n, &m, &ml, &res), -1);
	assert_int_equal(res, AUTH_BAD_RECORD);
	s[5] = (uint8_t)n;
	assert_int_equal(auth_open_record(&rx, &r, s, n, &m, &ml, &res),
	    (int)n);
	/* a record larger than 64 KiB cannot be made */
	assert_int_equal(auth_seal_record(&tx, s, AUTH_REC_MAX, 1 << 20), -1);
}

/* Key files: several keys, comments, CRLF; the first key signs and a
 * receiver holding both accepts either. */
static void
test_key_file(void **state)
{
	char path[64], err[256];
	struct auth_ctx tx, rx;
	struct auth_replay r = { 0 };
	uint8_t buf[256];
	size_t pl;
	FILE *f;
	int n;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/test_auth-%d.key", (int)getpid());
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# rotation in progress\r\n  7\t4a656665  # \"Jefe\"\r\n\n1 00ff\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	if (geteuid() != 0) {           /* the file must be root's */
		auth_init(&rx, 0);
		assert_int_equal(auth_load_file(&rx, path, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "not owned by root"));
		unlink(path);
		skip();
	}
	auth_init(&rx, 0);
	assert_int_equal(auth_load_file(&rx, path, err, sizeof(err)), 0);
	assert_int_equal(rx.nkeys, 2);
	assert_int_equal(rx.keys[rx.tx].id, 7);
	assert_int_equal(rx.keys[0].len, 4);
	assert_memory_equal(rx.keys[0].key, "Jefe", 4);
	/* signed with "Jefe" as id 7 by the file's first line */
	auth_init(&tx, 5);
	assert_int_equal(auth_add_key(&tx, 7, "Jefe", 4), 0);
	n = sign(&tx, buf);
	assert_int_equal(auth_verify(&rx, &r, buf, (size_t)n, &pl), AUTH_OK);
	/* and id 1 (00ff) is accepted too */
	auth_init(&tx, 9);
	assert_int_equal(auth_add_key(&tx, 1, "\x00\xff", 2), 0);
	n = sign(&tx, buf);
	assert_int_equal(auth_verify(&rx, &r, buf, (size_t)n, &pl), AUTH_OK);
	/* a failed load leaves no key behind */
	f = fopen(path, "w");
	fputs("1 00ff\n2 zz\n", f);
	fclose(f);
	auth_init(&rx, 0);
	assert_int_equal(auth_load_file(&rx, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: key must be an even number of hex digits"));
	assert_int_equal(rx.nkeys, 0);
	unlink(path);
	assert_int_equal(auth_load_file(&rx, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file or directory"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_accept_once),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_restart_and_rotation),
		cmocka_unit_test(test_sign_bounds),
		cmocka_unit_test(test_tcp_records),
		cmocka_unit_test(test_key_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
