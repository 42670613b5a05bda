/*
 * The data model shared by every module: one compact conntrack (struct ct)
 * and one expectation (struct exp). The netlink source fills them from
 * libnetfilter_conntrack objects, the wire codec from sync messages, the
 * caches store them, and printing/commit convert them back.
 *
 * Presence matters: dumps print a field only when it was delivered (e.g.
 * "mark=" is absent on entries learnt from some events), and the wire codec
 * emits an attribute only when present. So every optional field has a bit
 * in `have`.
 */
#ifndef CTD_OBJ_H
#define CTD_OBJ_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

union addr {
	uint32_t v4;            /* network byte order */
	uint32_t v6[4];
	uint8_t  b[16];
};

/*
 * A conntrack tuple. Ports are kept in network byte order, as the kernel
 * and libnetfilter_conntrack hand them out. For ICMP/ICMPv6, `sport` holds
 * the identifier (network order), `dport` is 0, and type/code are in
 * itype/icode. For GRE, sport/dport hold the keys' low 16 bits (not synced).
 */
struct tuple {
	union addr src, dst;
	uint16_t sport, dport;
	uint8_t  l3;            /* AF_INET, AF_INET6, 0 = unknown */
	uint8_t  l4;            /* IPPROTO_* */
	uint8_t  itype, icode;
};

/* Presence bits for struct ct (have). */
enum ct_have {
	CT_H_ORIG       = 1u << 0,  /* orig tuple addresses + l3/l4 known */
	CT_H_PORTS      = 1u << 1,  /* orig ports (or icmp id/type/code) known */
	CT_H_REPL       = 1u << 2,  /* real reply tuple from the kernel (printed) */
	CT_H_STATUS     = 1u << 3,
	CT_H_TIMEOUT    = 1u << 4,
	CT_H_MARK       = 1u << 5,
	CT_H_ZONE       = 1u << 6,
	CT_H_TCP_STATE  = 1u << 7,
	CT_H_TCP_WSCALE = 1u << 8,  /* wscale_orig/wscale_repl */
	CT_H_SCTP       = 1u << 9,  /* sctp state + vtags */
	CT_H_DCCP       = 1u << 10, /* dccp state + role */
	CT_H_ICMP       = 1u << 11, /* itype/icode/id in orig tuple */
	CT_H_MASTER     = 1u << 12, /* ext->master valid (addresses + l4) */
	CT_H_MASTER_PORTS = 1u << 13,
	CT_H_SNAT       = 1u << 14, /* reply.dst differs: derived on decode */
	CT_H_DNAT       = 1u << 15,
	CT_H_SPAT       = 1u << 16,
	CT_H_DPAT       = 1u << 17,
	CT_H_SEQADJ     = 1u << 18, /* ext->seqadj */
	CT_H_HELPER     = 1u << 19, /* helper[] */
	CT_H_LABELS     = 1u << 20, /* ext->labels */
	CT_H_SYNPROXY   = 1u << 21, /* ext->synproxy */
	CT_H_SECMARK    = 1u << 22,
	CT_H_COUNTERS   = 1u << 24, /* ext->counters */
	CT_H_REPL_SYNTH = 1u << 25, /* repl rebuilt from orig + NAT (wire); not printed */
	CT_H_ID         = 1u << 26, /* kernel conntrack id (XML <id> of internal entries) */
	CT_H_TIMESTAMP  = 1u << 27, /* ext->ts_start/ts_stop (nf_conntrack_timestamp) */
};

#define CT_HELPER_MAX   16      /* incl. NUL, as the kernel and the wire */
#define CT_LABELS_MAX   1024    /* bytes, wire maximum */

struct ct_ext {                 /* rarely used attributes, allocated on demand */
	struct tuple master;
	uint32_t seqadj[6];     /* orig pos, before, after; repl pos, before, after */
	uint32_t synproxy[3];   /* its, isn, tsoff */
	uint64_t counters[4];   /* orig packets, orig bytes, repl packets, repl bytes */
	uint64_t ts_start, ts_stop;     /* ns, as the kernel reports them */
	uint16_t labels_len;    /* bytes, multiple of 4 */
	uint8_t  labels[];      /* bitmap, bit n of word n/32 = label n */
};

struct ct {
	struct tuple orig;
	struct tuple repl;      /* valid iff CT_H_REPL or CT_H_REPL_SYNTH */
	uint32_t have;          /* enum ct_have */
	uint32_t status;        /* IPS_* bits, host order */
	uint32_t timeout;       /* seconds */
	uint32_t mark;
	uint32_t secmark;
	uint32_t id;            /* kernel id (XML dumps); never on the wire, not in the key */
	uint32_t sctp_vtag_orig, sctp_vtag_repl;
	uint16_t zone;
	uint8_t  tcp_state;
	uint8_t  wscale_orig, wscale_repl;
	uint8_t  sctp_state;
	uint8_t  dccp_state, dccp_role;
	char     helper[CT_HELPER_MAX];
	struct ct_ext *ext;     /* NULL unless master/seqadj/labels/synproxy/counters */
};

/* Presence bits for struct exp (have). */
enum exp_have {
	EXP_H_MASTER    = 1u << 0,
	EXP_H_EXPECTED  = 1u << 1,
	EXP_H_MASK      = 1u << 2,
	EXP_H_PORTS     = 1u << 3,  /* master protocol has ports: all *_PORT present */
	EXP_H_TIMEOUT   = 1u << 4,
	EXP_H_FLAGS     = 1u << 5,
	EXP_H_CLASS     = 1u << 6,
	EXP_H_NAT       = 1u << 7,  /* nat tuple + nat_dir */
	EXP_H_HELPER    = 1u << 8,
	EXP_H_FN        = 1u << 9,
	EXP_H_ZONE      = 1u << 10,
	EXP_H_NAT_ADDR  = 1u << 11, /* nat tuple carries an IPv4 address */
};

#define EXP_FN_MAX      32      /* incl. NUL */

struct exp {
	struct tuple master;    /* master conntrack's original tuple */
	struct tuple expected;
	struct tuple mask;      /* mask.l4 = protocol number, not a mask */
	struct tuple nat;
	uint32_t have;          /* enum exp_have */
	uint32_t timeout;
	uint32_t flags;         /* NF_CT_EXPECT_* */
	uint32_t class;
	uint32_t nat_dir;
	uint16_t zone;
	char     helper[CT_HELPER_MAX];
	char     fn[EXP_FN_MAX];
};

/* obj.c: keys, hashing and helpers used by caches, codec and netlink. */
uint32_t tuple_hash(const struct tuple *t, uint32_t seed);
bool     tuple_equal(const struct tuple *a, const struct tuple *b);
void     tuple_invert(struct tuple *dst, const struct tuple *src);
bool     l4_has_ports(uint8_t l4);      /* tcp, udp, udplite, sctp, dccp */
bool     l4_is_icmp(uint8_t l3, uint8_t l4);
uint8_t  icmp_reply_type(uint8_t l3, uint8_t type);  /* 255: not a query */
void     ct_icmp_repl_from_orig(struct ct *ct);
/* CT_H_SNAT/DNAT/SPAT/DPAT as the wire encoder sees them (§4.6). */
uint32_t ct_nat_bits(const struct ct *ct);

/* Conntrack key: original tuple + zone (upstream's zone quirk is fixed). */
uint32_t ct_hash(const struct ct *ct, uint32_t seed);
bool     ct_key_equal(const struct ct *a, const struct ct *b);
/* Expectation key: master tuple + expected tuple (+ zone). */
uint32_t exp_hash(const struct exp *e, uint32_t seed);
bool     exp_key_equal(const struct exp *a, const struct exp *b);

/* Copy src into dst, deep-copying ext; dst is overwritten. Returns -1 on ENOMEM. */
int      ct_copy(struct ct *dst, const struct ct *src);
/* Merge every attribute present in src into dst (UPDATE semantics). */
int      ct_merge(struct ct *dst, const struct ct *src);
void     ct_release(struct ct *ct);     /* frees ext, leaves ct zeroed */
struct ct_ext *ct_ext_get(struct ct *ct, size_t labels_len); /* allocates on demand */

#endif
