/*
 * HMAC-SHA-256 datagram trailer (doc/auth.md).
 *
 *   ... sync messages ... | magic | key id | counter | HMAC(key, all before)
 *                           BE32    BE32     BE64      32 bytes
 *
 * The MAC covers the messages and the trailer header, so neither the key
 * id nor the counter can be changed. The replay window is only updated
 * after the MAC has been verified.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"

#define HDR_LEN (AUTH_TRAILER_LEN - AUTH_MAC_LEN)

static void
wr32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

void
auth_init(struct auth_ctx *a, uint64_t now_us)
{
	memset(a, 0, sizeof(*a));
	a->counter = now_us;
}

int
auth_add_key(struct auth_ctx *a, uint32_t id, const void *key, size_t len)
{
	struct auth_key *k;
	unsigned i;

	if (len == 0 || len > AUTH_KEY_MAX)
		return -1;
	for (i = 0; i < a->nkeys; i++)
		if (a->keys[i].id == id)
			return -1;
	if (a->nkeys == AUTH_KEYS_MAX)
		return -1;
	k = &a->keys[a->nkeys++];
	k->id = id;
	k->len = len;
	memcpy(k->key, key, len);
	return 0;
}

int
auth_use_key(struct auth_ctx *a, uint32_t id)
{
	unsigned i;

	for (i = 0; i < a->nkeys; i++)
		if (a->keys[i].id == id) {
			a->tx = i;
			return 0;
		}
	return -1;
}

static const struct auth_key *
find_key(const struct auth_ctx *a, uint32_t id)
{
	unsigned i;

	for (i = 0; i < a->nkeys; i++)
		if (a->keys[i].id == id)
			return &a->keys[i];
	return NULL;
}

static int
mac(const struct auth_key *k, const uint8_t *data, size_t len,
    uint8_t out[AUTH_MAC_LEN])
{
	unsigned int n = 0;

	if (HMAC(EVP_sha256(), k->key, k->len, data, len, out, &n) == NULL ||
	    n != AUTH_MAC_LEN)
		return -1;
	return 0;
}

int
auth_sign(struct auth_ctx *a, uint8_t *buf, size_t len, size_t cap)
{
	const struct auth_key *k;
	uint8_t *t;

	if (a->nkeys == 0 || cap < AUTH_TRAILER_LEN ||
	    len > cap - AUTH_TRAILER_LEN)
		return -1;
	k = &a->keys[a->tx];
	t = buf + len;
	a->counter++;
	wr32(t, AUTH_MAGIC);
	wr32(t + 4, k->id);
	wr32(t + 8, a->counter >> 32);
	wr32(t + 12, a->counter);
	if (mac(k, buf, len + HDR_LEN, t + HDR_LEN) < 0)
		return -1;
	return len + AUTH_TRAILER_LEN;
}

/* Window test without side effects; see replay_mark. */
static enum auth_result
replay_check(const struct auth_replay *r, uint64_t c)
{
	uint64_t d;

	if (!r->seen || c > r->top)
		return AUTH_OK;
	d = r->top - c;
	if (d >= AUTH_WINDOW)
		return AUTH_TOO_OLD;
	return (r->mask >> d) & 1 ? AUTH_REPLAY : AUTH_OK;
}

static void
replay_mark(struct auth_replay *r, uint64_t c)
{
	uint64_t d;

	if (!r->seen) {
		r->seen = true;
		r->top = c;
		r->mask = 1;
	} else if (c > r->top) {
		d = c - r->top;
		r->mask = d >= AUTH_WINDOW ? 1 : (r->mask << d) | 1;
		r->top = c;
	} else {
		r->mask |= (uint64_t)1 << (r->top - c);
	}
}

enum auth_result
auth_verify(const struct auth_ctx *a, struct auth_replay *r,
    const uint8_t *buf, size_t len, size_t *payload_len)
{
	const struct auth_key *k;
	const uint8_t *t;
	uint8_t want[AUTH_MAC_LEN];
	uint64_t c;
	enum auth_result res;

	if (len < AUTH_TRAILER_LEN)
		return AUTH_NO_TRAILER;
	t = buf + len - AUTH_TRAILER_LEN;
	if (rd32(t) != AUTH_MAGIC)
		return AUTH_NO_TRAILER;
	if ((k = find_key(a, rd32(t + 4))) == NULL)
		return AUTH_UNKNOWN_KEY;
	if (mac(k, buf, len - AUTH_MAC_LEN, want) < 0)
		return AUTH_ERROR;
	if (CRYPTO_memcmp(want, t + HDR_LEN, AUTH_MAC_LEN) != 0)
		return AUTH_BAD_MAC;
	c = (uint64_t)rd32(t + 8) << 32 | rd32(t + 12);
	if ((res = replay_check(r, c)) != AUTH_OK)
		return res;
	replay_mark(r, c);
	*payload_len = len - AUTH_TRAILER_LEN;
	return AUTH_OK;
}

int
auth_seal_record(struct auth_ctx *a, uint8_t *buf, size_t len, size_t cap)
{
	size_t total = AUTH_REC_HDR_LEN + len + AUTH_TRAILER_LEN;

	if (total > AUTH_REC_MAX || total > cap)
		return -1;
	wr32(buf, AUTH_REC_MAGIC);
	buf[4] = total >> 8;
	buf[5] = total;
	buf[6] = buf[7] = 0;
	return auth_sign(a, buf, AUTH_REC_HDR_LEN + len, cap);
}

int
auth_open_record(const struct auth_ctx *a, struct auth_replay *r,
    const uint8_t *data, size_t len, const uint8_t **msgs, size_t *msgs_len,
    enum auth_result *res)
{
	size_t total, plen;

	if (len < AUTH_REC_HDR_LEN)
		return 0;
	total = (size_t)data[4] << 8 | data[5];
	if (rd32(data) != AUTH_REC_MAGIC || data[6] || data[7] ||
	    total < AUTH_REC_HDR_LEN + AUTH_TRAILER_LEN) {
		*res = AUTH_BAD_RECORD;
		return -1;
	}
	if (len < total)
		return 0;
	*res = auth_verify(a, r, data, total, &plen);
	if (*res != AUTH_OK)
		return -1;
	*msgs = data + AUTH_REC_HDR_LEN;
	*msgs_len = plen - AUTH_REC_HDR_LEN;
	return total;
}

const char *
auth_strerror(enum auth_result res)
{
	switch (res) {
	case AUTH_OK:
		return "authenticated";
	case AUTH_NO_TRAILER:
		return "no authentication trailer";
	case AUTH_UNKNOWN_KEY:
		return "unknown key id";
	case AUTH_BAD_MAC:
		return "bad HMAC (wrong key or altered datagram)";
	case AUTH_REPLAY:
		return "replayed datagram (counter already seen)";
	case AUTH_TOO_OLD:
		return "counter older than the replay window";
	case AUTH_ERROR:
		return "libcrypto failure";
	case AUTH_BAD_RECORD:
		return "bad TCP record header";
	}
	return "unknown authentication result";
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* One "ID HEX" line; 0 ok, -1 with the reason in why. */
static int
parse_key_line(struct auth_ctx *a, char *line, const char **why)
{
	uint8_t key[AUTH_KEY_MAX];
	unsigned long long id;
	size_t n = 0;
	char *p = line, *end;
	int hi, lo;

	errno = 0;
	id = strtoull(p, &end, 10);
	if (end == p || errno || id == 0 || id > 0xffffffffULL ||
	    (*end != ' ' && *end != '\t')) {
		*why = "expected `ID HEXKEY' with ID 1..4294967295";
		return -1;
	}
	p = end + strspn(end, " \t");
	while (*p && *p != ' ' && *p != '\t') {
		if ((hi = hexval(p[0])) < 0 || (lo = hexval(p[1])) < 0) {
			*why = "key must be an even number of hex digits";
			return -1;
		}
		if (n == AUTH_KEY_MAX) {
			*why = "key longer than 64 bytes (128 hex digits)";
			return -1;
		}
		key[n++] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	if (p[strspn(p, " \t")] != '\0') {
		*why = "trailing text after the key";
		return -1;
	}
	if (n == 0) {
		*why = "empty key";
		return -1;
	}
	if (a->nkeys == AUTH_KEYS_MAX) {
		*why = "more than 4 keys";
		return -1;
	}
	if (auth_add_key(a, (uint32_t)id, key, n) < 0) {
		*why = "key id used twice";
		return -1;
	}
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}

int
auth_load_file(struct auth_ctx *a, const char *path, char *err, size_t errlen)
{
	char buf[4096], *line, *next;
	const char *why = NULL;
	struct stat st;
	ssize_t n;
	int fd, lineno = 0;

	/* O_NOFOLLOW: a symlink planted at the path is refused, not read. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "AuthKeyFile %s: %s", path,
			 errno == ELOOP ? "is a symbolic link (refused)" :
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != 0)
		why = "not owned by root";
	else if (st.st_mode & (S_IRWXG | S_IRWXO))
		why = "group or other may access it (chmod 600)";
	else if (st.st_size >= (off_t)sizeof(buf))
		why = "too large for a key file";
	if (why) {
		snprintf(err, errlen, "AuthKeyFile %s: %s", path, why);
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "AuthKeyFile %s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', (size_t)n)) {
		snprintf(err, errlen, "AuthKeyFile %s: binary data (expected `ID HEXKEY' lines)",
			 path);
		goto fail;
	}
	for (line = buf; line; line = next) {
		char *hash;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		line[strcspn(line, "\r")] = '\0';
		line += strspn(line, " \t");
		if (*line == '\0')
			continue;
		if (parse_key_line(a, line, &why) < 0) {
			snprintf(err, errlen, "AuthKeyFile %s:%d: %s", path,
				 lineno, why);
			goto fail;
		}
	}
	if (a->nkeys == 0) {
		snprintf(err, errlen, "AuthKeyFile %s: no key in the file", path);
		goto fail;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
fail:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(a->keys, sizeof(a->keys));
	a->nkeys = 0;
	return -1;
}
