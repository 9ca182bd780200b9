/* err.h — the one error convention of Postern.
 *
 * Functions return int: 0 on success or a negative code. System failures are
 * negative errno values (-ENOENT, -ENOMEM, ...); project failures use the
 * codes below, which sit above errno's range. Results go out through pointer
 * parameters, written only on success. pst_strerror() names either kind.
 *
 * Threading: pst_strerror() returns static strings; safe from any thread. */
#ifndef POSTERN_ERR_H
#define POSTERN_ERR_H

enum pst_err {
	PST_ERR_BASE = 10000,
	PST_ECONFIG,     /* configuration invalid */
	PST_ETOOLONG,    /* input line or value over its limit */
	PST_EPROTO,      /* peer broke the protocol */
	PST_ETLS,        /* TLS failure */
	PST_ELIMIT,      /* a named limit was reached */
	PST_ENOTFOUND,   /* record does not exist */
	PST_EEXIST,      /* record exists already */
	PST_EFULL,       /* store full */
	PST_ECORRUPT,    /* store or record damaged */
	PST_EVERSION,    /* store schema version not supported */
	PST_EAUTH,       /* credentials refused */
	PST_EBUSY,       /* resource in use (mailbox lock) */
	PST_EUPGRADE,    /* store needs `postern store upgrade` */
	PST_EQUOTA,      /* over the mailbox quota */
	PST_ERR_END
};

const char *pst_strerror(int err);

#endif
