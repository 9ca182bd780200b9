/* store_rec.h — the encoding of every value the store keeps (internal to
 * store/). docs/ARCHITECTURE.md "Databases, keys and values" has the
 * layouts.
 *
 * Why a hand-written encoding: each value is a flat record of at most a
 * dozen integers and short strings, read on every login and LIST. The
 * libraries Debian carries that would fit (msgpack-c, libcbor, protobuf-c)
 * still need a per-field schema layer on top, allocate on decode, and
 * protobuf-c adds a code generator to the build; none makes the version
 * rules below simpler. So: fixed-endian fields (big-endian integers,
 * strings as one length octet and their bytes, no NUL) behind a one-octet
 * record version, encoded and decoded field by field here and nowhere else.
 *
 * Versions: REC_V3 is what this program writes (schema version 3: version
 * 2 with fields added at the end, the queue's body id and flags after
 * nchunks). A decoder reads every older record version — version 1, the schema-1
 * images of the x86-64 structs, is recognised by its exact size and
 * decoded at fixed little-endian offsets — and refuses a newer one with
 * -PST_EVERSION (logged with the database's name) rather than misread it.
 * Anything else malformed is -PST_ECORRUPT.
 *
 * Encoders write into the caller's buffer (REC_*_MAX bytes suffice) and
 * return the length; store__rec_queue_enc allocates. */
#ifndef POSTERN_STORE_REC_H
#define POSTERN_STORE_REC_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define REC_V1 1                /* schema 1: struct images */
#define REC_V2 2                /* schema 2: this encoding */
#define REC_V3 3                /* schema 3: quotas, body ids, body refs */
#define REC_VERSION REC_V3      /* written */

#define REC_DOMAIN_MAX 300
#define REC_ACCOUNT_MAX 600
#define REC_MSG_MAX 120
#define REC_APP_META_MAX 200
#define REC_APP_PW_MAX 13
#define REC_U64_MAX 9
#define REC_BODY_MAX 17

size_t store__rec_domain_enc(const struct store_domain *d, uint8_t *buf);
int store__rec_domain_dec(const void *p, size_t n, struct store_domain *out);

size_t store__rec_account_enc(const struct store_account *a, uint8_t *buf);
int store__rec_account_dec(const void *p, size_t n, struct store_account *out);

size_t store__rec_msg_enc(const struct store_msg *m, uint8_t *buf);
int store__rec_msg_dec(const void *p, size_t n, struct store_msg *out);

/* app_password_meta: the digest and the public part. */
size_t store__rec_app_meta_enc(const uint8_t digest[32],
			       const struct store_app_password *a,
			       uint8_t *buf);
int store__rec_app_meta_dec(const void *p, size_t n, uint8_t digest[32],
			    struct store_app_password *out);

/* app_passwords: account id and app id (0: a revoked one's tombstone). */
size_t store__rec_app_pw_enc(uint64_t account_id, uint32_t app_id,
			     uint8_t *buf);
int store__rec_app_pw_dec(const void *p, size_t n, uint64_t *account_id,
			  uint32_t *app_id);

/* A versioned uint64: the accounts index (id), the uidls index (uid) and
 * the meta counters. Version 1 was 8 host-order (little-endian) bytes. */
size_t store__rec_u64_enc(uint64_t v, uint8_t *buf);
int store__rec_u64_dec(const void *p, size_t n, uint64_t *out);

/* A queue entry with its recipients: *out is malloc'ed, *len its size. */
int store__rec_queue_enc(const struct store_queue_entry *e, uint8_t **out,
			 size_t *len);
/* out->rcpts is malloc'ed (store_queue_entry_free). */
int store__rec_queue_dec(const void *p, size_t n,
			 struct store_queue_entry *out);

/* body_refs (schema 3): one stored body, shared by the messages and the
 * queue entry that name its id. */
struct store_body_rec {
	uint32_t refs;
	uint64_t size;
	uint32_t nchunks;
};
size_t store__rec_body_enc(const struct store_body_rec *b, uint8_t *buf);
int store__rec_body_dec(const void *p, size_t n, struct store_body_rec *out);

#endif
