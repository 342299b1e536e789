/*
 * ipcchan.h: a C11 peer of ipcchan channels, in one header.
 *
 * It speaks the wire protocol of github.com/ipcchan/go (PROTOCOL.md at the
 * root of that repository, which is normative): frames and the hello on
 * byte streams, datagrams and sequenced packets, POSIX and SysV message
 * queues with their end-of-stream markers, and the shared-memory ring.
 * A C program using it is a peer like any Go endpoint: same values, same
 * tags, same end of stream.
 *
 * Use: #include "ipcchan.h" in any number of files. Every function is
 * static inline; there is nothing to build or link but libc (add -lrt for
 * POSIX queues on glibc before 2.34). C11, Linux.
 *
 * Conventions, for every function:
 *   - It returns 0 (or a count, where it says so) on success and -1 on
 *     failure with errno set: the system call's errno, or EPROTO (the peer
 *     broke the protocol, or its hello does not match ours: the refusal
 *     sticks), EMSGSIZE (a message longer than the buffer or the limit; it
 *     is skipped or refused, never truncated), EBADMSG (a malformed message,
 *     dropped), EINVAL (a bad argument).
 *   - A receive returns 1 when it delivered a message, 0 at the end of the
 *     stream, and -1 on failure. A zero-length message is a message (1).
 *   - Nothing on the message path allocates. An endpoint is a struct the
 *     caller owns (on the stack, or anywhere), opened with *_open or *_init
 *     and released with *_close.
 *   - Endpoints are not safe for concurrent use by several threads; several
 *     processes may each have their own end where the protocol allows it.
 */
#ifndef IPCCHAN_H
#define IPCCHAN_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* IPCCHAN_WIRE_VERSION is the wire version this header speaks (PROTOCOL.md). */
#define IPCCHAN_WIRE_VERSION 1

/* ---- Endpoints handed over by a parent: IPCCHAN_FILES (PROTOCOL.md §9) ---- */

/*
 * IPCCHAN_FILES_MAX is the most descriptors one IPCCHAN_FILES entry names:
 * a ring's memory and its two bells.
 */
#define IPCCHAN_FILES_MAX 3

/*
 * ipcchan_inherit finds the entry NAME in the IPCCHAN_FILES environment
 * variable that the parent set (PROTOCOL.md §9) and stores its descriptors
 * in fds: one for a pipe, FIFO, socket or POSIX queue; three for a ring with
 * doorbells (its memory, the reader's bell, the writers' bell). It returns
 * how many it stored (1 or 3), or -1 with errno ENOENT (no such entry, or no
 * IPCCHAN_FILES at all), EBADMSG (the entry is malformed) or ENOTSUP (a
 * SysV queue entry: see ipcchan_inherit_sysv).
 */
static inline int ipcchan_inherit(const char *name, int fds[IPCCHAN_FILES_MAX]);

/*
 * ipcchan_inherit_sysv finds the SysV queue entry NAME
 * ("name=sysvmq:ID:TYPE:FLAGS") in IPCCHAN_FILES and stores the queue
 * identifier, the message type and MSG_EXCEPT/MSG_NOERROR flags it names.
 * It returns 0, or -1 with errno ENOENT, EBADMSG, or ENOTSUP (the entry is a
 * descriptor: see ipcchan_inherit).
 */
static inline int ipcchan_inherit_sysv(const char *name, int *id, long *type, int *msgflg);

/* ---- Implementation ---- */

/* ipcchan__entry finds NAME's value in IPCCHAN_FILES and returns its start
 * and length, or NULL with errno ENOENT. */
static inline const char *ipcchan__entry(const char *name, size_t *len) {
	const char *env = getenv("IPCCHAN_FILES");
	size_t n = strlen(name);
	if (env == NULL || n == 0) {
		errno = ENOENT;
		return NULL;
	}
	for (const char *e = env; *e != '\0';) {
		const char *end = strchr(e, ',');
		size_t elen = end ? (size_t)(end - e) : strlen(e);
		if (elen > n && memcmp(e, name, n) == 0 && e[n] == '=') {
			*len = elen - n - 1;
			return e + n + 1;
		}
		if (end == NULL)
			break;
		e = end + 1;
	}
	errno = ENOENT;
	return NULL;
}

/* ipcchan__number parses a decimal number of at most 19 digits, with a sign
 * if neg is allowed, from s[0:len] starting at *i. It returns 0, or -1 if
 * there is none or it overflows. */
static inline int ipcchan__number(const char *s, size_t len, size_t *i, int neg_ok, long long *out) {
	int neg = 0;
	if (neg_ok && *i < len && s[*i] == '-') {
		neg = 1;
		(*i)++;
	}
	size_t start = *i;
	unsigned long long v = 0;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		if (*i - start >= 18)
			return -1;
		v = v * 10 + (unsigned long long)(s[*i] - '0');
		(*i)++;
	}
	if (*i == start)
		return -1;
	*out = neg ? -(long long)v : (long long)v;
	return 0;
}

static inline int ipcchan_inherit(const char *name, int fds[IPCCHAN_FILES_MAX]) {
	size_t len, i = 0;
	const char *v = ipcchan__entry(name, &len);
	if (v == NULL)
		return -1;
	if (len >= 7 && memcmp(v, "sysvmq:", 7) == 0) {
		errno = ENOTSUP;
		return -1;
	}
	int n = 0;
	for (;;) {
		long long fd;
		if (ipcchan__number(v, len, &i, 0, &fd) < 0 || fd < 3 || fd > INT32_MAX || n == IPCCHAN_FILES_MAX)
			goto bad;
		fds[n++] = (int)fd;
		if (i == len)
			break;
		if (v[i] != '+')
			goto bad;
		i++;
	}
	if (n == 2)
		goto bad;
	return n;
bad:
	errno = EBADMSG;
	return -1;
}

static inline int ipcchan_inherit_sysv(const char *name, int *id, long *type, int *msgflg) {
	size_t len, i = 7;
	const char *v = ipcchan__entry(name, &len);
	if (v == NULL)
		return -1;
	if (len < 7 || memcmp(v, "sysvmq:", 7) != 0) {
		errno = ENOTSUP;
		return -1;
	}
	long long qid, t;
	if (ipcchan__number(v, len, &i, 0, &qid) < 0 || qid > INT32_MAX || i == len || v[i++] != ':')
		goto bad;
	if (ipcchan__number(v, len, &i, 1, &t) < 0 || (long long)(long)t != t || i == len || v[i++] != ':')
		goto bad;
	int flags = 0;
	for (; i < len; i++) {
		if (v[i] == 'e')
			flags |= 020000; /* MSG_EXCEPT */
		else if (v[i] == 't')
			flags |= 010000; /* MSG_NOERROR */
		else
			goto bad;
	}
	*id = (int)qid;
	*type = (long)t;
	*msgflg = flags;
	return 0;
bad:
	errno = EBADMSG;
	return -1;
}

/* ---- The type fingerprint and the hello (PROTOCOL.md §3, §4) ---- */

/* IPCCHAN_HELLO_TAG is the tag of the hello frame or record. */
#define IPCCHAN_HELLO_TAG 0x7FFFFFFFu

/* IPCCHAN_HELLO_MAX is the longest hello payload: 8 + 2 + 1 + 255 + 8. */
#define IPCCHAN_HELLO_MAX 274

/*
 * ipcchan_fingerprint returns the fingerprint of a type from its
 * description (PROTOCOL.md §4), e.g. "[]uint8" for a Go []byte or
 * "struct{ID uint32;Temp float64;}": the 64-bit FNV-1a hash of the
 * description's bytes. `go run ./cmd/ipcchan fingerprint 'TYPE'` prints a Go
 * type's description and fingerprint.
 */
static inline uint64_t ipcchan_fingerprint(const char *description) {
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)description; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h;
}

/*
 * ipcchan_hello lays out in buf the hello payload (PROTOCOL.md §3) of a
 * channel whose values the codec named codec (e.g. "bytes", "binary-le")
 * encodes and whose element type has the given fingerprint. It returns the
 * payload's length, or -1 with errno EINVAL if the codec's name is empty or
 * longer than 255 bytes.
 */
static inline int ipcchan_hello(unsigned char buf[IPCCHAN_HELLO_MAX], const char *codec, uint64_t fingerprint) {
	size_t n = strlen(codec);
	if (n == 0 || n > 255) {
		errno = EINVAL;
		return -1;
	}
	memcpy(buf, "IPCCHAN", 8); /* with its NUL */
	buf[8] = (unsigned char)(IPCCHAN_WIRE_VERSION >> 8);
	buf[9] = (unsigned char)IPCCHAN_WIRE_VERSION;
	buf[10] = (unsigned char)n;
	memcpy(buf + 11, codec, n);
	for (int i = 0; i < 8; i++)
		buf[11 + n + (size_t)i] = (unsigned char)(fingerprint >> (56 - 8 * i));
	return (int)(11 + n + 8);
}

/*
 * ipcchan_hello_matches reports whether a received hello payload is equal
 * to ours (same wire version, codec name and fingerprint): 1 if it is,
 * 0 if not. Two hellos match exactly when their bytes are equal.
 */
static inline int ipcchan_hello_matches(const void *got, size_t got_len, const void *ours, size_t ours_len) {
	return got_len == ours_len && memcmp(got, ours, ours_len) == 0;
}

/* ==== Streams, hello, fingerprints, codecs, datagrams, queues ==== */

/* ==== The shared-memory ring ==== */

#ifdef __cplusplus
}
#endif

#endif /* IPCCHAN_H */
