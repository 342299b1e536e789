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
 *     dropped), EINVAL (a bad argument), EBADF (a send or receive on an end
 *     already closed; closing again returns 0); the streams and queues section
 *     adds ENODATA, ETIMEDOUT, ESRCH and ERANGE (see its comment).
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
#include <fcntl.h>
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
 * IPCCHAN_FILES at all), EBADMSG (the entry is malformed, or NAME appears
 * twice), EBADF (a descriptor it names is not open in this process) or
 * ENOTSUP (a SysV queue entry: see ipcchan_inherit_sysv).
 */
static inline int ipcchan_inherit(const char *name, int fds[IPCCHAN_FILES_MAX]);

/*
 * ipcchan_inherit_sysv finds the SysV queue entry NAME
 * ("name=sysvmq:ID:TYPE:FLAGS") in IPCCHAN_FILES and stores the queue
 * identifier, the message type and MSG_EXCEPT/MSG_NOERROR flags it names.
 * It returns 0, or -1 with errno ENOENT, EBADMSG (malformed, or NAME
 * appears twice), or ENOTSUP (the entry is a descriptor: see
 * ipcchan_inherit).
 */
static inline int ipcchan_inherit_sysv(const char *name, int *id, long *type, int *msgflg);

/* ---- Implementation ---- */

/* ipcchan__entry finds NAME's value in IPCCHAN_FILES and returns its start
 * and length, or NULL with errno ENOENT, or EBADMSG if NAME appears twice
 * (PROTOCOL.md §9: each name appears once; which one was meant is not
 * known). */
static inline const char *ipcchan__entry(const char *name, size_t *len) {
	const char *env = getenv("IPCCHAN_FILES"), *found = NULL;
	size_t n = strlen(name);
	if (env == NULL || n == 0) {
		errno = ENOENT;
		return NULL;
	}
	for (const char *e = env; *e != '\0';) {
		const char *end = strchr(e, ',');
		size_t elen = end ? (size_t)(end - e) : strlen(e);
		if (elen > n && memcmp(e, name, n) == 0 && e[n] == '=') {
			if (found != NULL) {
				errno = EBADMSG;
				return NULL;
			}
			*len = elen - n - 1;
			found = e + n + 1;
		}
		if (end == NULL)
			break;
		e = end + 1;
	}
	if (found == NULL)
		errno = ENOENT;
	return found;
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
	for (int k = 0; k < n; k++) {
		if (fcntl(fds[k], F_GETFD) < 0)
			return -1; /* EBADF: not open here (the parent did not hand it over) */
	}
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
	int flags = 0;
	if (ipcchan__number(v, len, &i, 0, &qid) < 0 || qid > INT32_MAX || i == len || v[i++] != ':')
		goto bad;
	if (ipcchan__number(v, len, &i, 1, &t) < 0 || (long long)(long)t != t || i == len || v[i++] != ':')
		goto bad;
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

/*
 * This section is the message path of every transport but the ring:
 *
 *   Describing a type     struct ipcchan_type, ipcchan_describe,
 *                         ipcchan_type_fingerprint, ipcchan_type_hello
 *   Fixed-size codecs     ipcchan_pack, ipcchan_unpack (binary-le,
 *                         binary-be, cstruct), ipcchan_ctext_pack/unpack
 *   Byte streams          struct ipcchan_stream_sender / _receiver: pipes,
 *                         FIFOs, Unix and TCP stream sockets (PROTOCOL.md §2)
 *   Datagrams, packets    struct ipcchan_packet_sender / _receiver:
 *                         unixgram, UDP, seqpacket (§6)
 *   Queues                struct ipcchan_mq_sender / _receiver (POSIX),
 *                         struct ipcchan_sysv_sender / _receiver (§7)
 *   Opening               ipcchan_fifo_open, ipcchan_unix_connect,
 *                         ipcchan_unix_listen, ipcchan_tcp_connect,
 *                         ipcchan_pidfd (a peer to watch)
 *
 * More errno values than the top comment's, in this section:
 *   ENODATA    the stream ended inside a frame (Go: io.ErrUnexpectedEOF);
 *              it sticks, like EPROTO.
 *   ETIMEDOUT  a receive's timeout passed with no message.
 *   ESRCH      the watched peer process (the receiver's `peer` pidfd)
 *              exited and nothing is left to read.
 *   ERANGE     a description does not fit the caller's buffer.
 *   EPIPE      a send found no receiver left. On a pipe or FIFO the kernel
 *              raises SIGPIPE first: ignore it (signal(SIGPIPE, SIG_IGN))
 *              to get EPIPE instead of dying. Sockets send with MSG_NOSIGNAL.
 *
 * The header needs _GNU_SOURCE, which it defines: include it before any
 * system header (or compile with -D_GNU_SOURCE), else it stops with #error.
 *
 * Receives take a timeout in milliseconds: -1 waits for ever, 0 does not
 * wait. A receiver's `peer` field (-1 after init) may be set to a pidfd of
 * the sending process (ipcchan_pidfd): once that process has exited and
 * nothing is left to read, a receive fails with ESRCH instead of waiting;
 * the receiver's close closes it. A sender's send waits while the transport
 * is full (no timeout).
 */

#if defined(_FEATURES_H) && !defined(__USE_GNU)
#error "ipcchan.h needs _GNU_SOURCE (mq_timedreceive, pidfd, MSG_EXCEPT): include it before any system header, or compile with -D_GNU_SOURCE"
#endif

#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- Describing a type (PROTOCOL.md §4) ---- */

/* The kinds of a described field. Each names the Go kind the field has on
 * the Go side; the C member must have that size. */
enum ipcchan_kind {
	IPCCHAN_BOOL = 1, /* Go bool: C _Bool or one byte 0/1 */
	IPCCHAN_INT8,
	IPCCHAN_INT16,
	IPCCHAN_INT32,
	IPCCHAN_INT64,
	IPCCHAN_UINT8,
	IPCCHAN_UINT16,
	IPCCHAN_UINT32,
	IPCCHAN_UINT64,
	IPCCHAN_FLOAT32,
	IPCCHAN_FLOAT64,
	IPCCHAN_STRUCT,  /* a nested struct: the field's `type` describes it */
	IPCCHAN_CHARS,   /* C char[N] as Go [N]byte ("[N]uint8"): N = the field's len */
	IPCCHAN_CSTRING  /* C char[N] as a Go string tagged `c:"char[N]"` ("string"),
	                    NUL-padded: cstruct codec only */
};

struct ipcchan_type;

/*
 * struct ipcchan_field describes one field of a C struct as its Go
 * counterpart declares it: name is the Go field name (the fingerprint counts
 * it: "ID", "Temp"; "_" for a blank field), kind its Go kind, offset its
 * offsetof in the C struct, len 0 for a single value or N for an array [N]
 * of kind (for IPCCHAN_CHARS and IPCCHAN_CSTRING, N is the char array's
 * size), type the nested struct of an IPCCHAN_STRUCT field (an array of
 * structs has len N and elements type->size apart). The IPCCHAN_FIELD...
 * macros fill it from the C struct.
 */
struct ipcchan_field {
	const char *name;
	enum ipcchan_kind kind;
	size_t offset;
	size_t len;
	const struct ipcchan_type *type;
};

/* struct ipcchan_type is a C struct described field by field, in
 * declaration order, with its sizeof; IPCCHAN_TYPE fills it. */
struct ipcchan_type {
	const struct ipcchan_field *fields;
	size_t nfields;
	size_t size;
};

#define IPCCHAN__MEMBER(S, m) (((S *)0)->m)
/* IPCCHAN_FIELD(S, m, "Name", kind): member m of struct S, a single value. */
#define IPCCHAN_FIELD(S, m, name, kind) {(name), (kind), offsetof(S, m), 0, NULL}
/* IPCCHAN_ARRAY(S, m, "Name", kind): member m, an array of kind ([N]kind). */
#define IPCCHAN_ARRAY(S, m, name, kind) \
	{(name), (kind), offsetof(S, m), sizeof(IPCCHAN__MEMBER(S, m)) / sizeof(IPCCHAN__MEMBER(S, m)[0]), NULL}
/* IPCCHAN_CHARS_FIELD(S, m, "Name"): member char m[N] as Go [N]byte. */
#define IPCCHAN_CHARS_FIELD(S, m, name) {(name), IPCCHAN_CHARS, offsetof(S, m), sizeof(IPCCHAN__MEMBER(S, m)), NULL}
/* IPCCHAN_CSTRING_FIELD(S, m, "Name"): member char m[N] as a Go string `c:"char[N]"`. */
#define IPCCHAN_CSTRING_FIELD(S, m, name) {(name), IPCCHAN_CSTRING, offsetof(S, m), sizeof(IPCCHAN__MEMBER(S, m)), NULL}
/* IPCCHAN_STRUCT_FIELD(S, m, "Name", &type): member m, a nested struct. */
#define IPCCHAN_STRUCT_FIELD(S, m, name, t) {(name), IPCCHAN_STRUCT, offsetof(S, m), 0, (t)}
/* IPCCHAN_STRUCT_ARRAY(S, m, "Name", &type): member m, an array of structs. */
#define IPCCHAN_STRUCT_ARRAY(S, m, name, t) \
	{(name), IPCCHAN_STRUCT, offsetof(S, m), sizeof(IPCCHAN__MEMBER(S, m)) / sizeof(IPCCHAN__MEMBER(S, m)[0]), (t)}
/* IPCCHAN_TYPE(S, fields): struct S described by the array fields. */
#define IPCCHAN_TYPE(S, fields) {(fields), sizeof(fields) / sizeof((fields)[0]), sizeof(S)}

/* IPCCHAN_DESCRIPTION_MAX is a buffer size that holds most descriptions. */
#define IPCCHAN_DESCRIPTION_MAX 1024

/*
 * ipcchan_describe writes the description (PROTOCOL.md §4) of the Go struct
 * that t describes into buf, NUL-terminated, e.g.
 * "struct{ID uint32;Temp float64;}". It returns its length (without the
 * NUL), or -1 with errno ERANGE (it needs more than cap bytes) or EINVAL (a
 * field outside the struct's size, an unknown kind, a nesting deeper than
 * 32). Descriptions of types that are not structs are literal strings:
 * "[]uint8" ([]byte, codec "bytes"), "string" (codec "string"), "int64",
 * "[4]float32"; ipcchan_fingerprint hashes them.
 */
static inline int ipcchan_describe(const struct ipcchan_type *t, char *buf, size_t cap);

/* ipcchan_type_fingerprint stores the fingerprint of t's description in *fp
 * (no buffer needed). It returns 0, or -1 with errno EINVAL. */
static inline int ipcchan_type_fingerprint(const struct ipcchan_type *t, uint64_t *fp);

/* ipcchan_type_hello is ipcchan_hello for the struct t and the codec named
 * codec ("binary-le", "binary-be", "cstruct"). It returns the hello's
 * length, or -1 with errno EINVAL. */
static inline int ipcchan_type_hello(unsigned char buf[IPCCHAN_HELLO_MAX], const char *codec, const struct ipcchan_type *t);

/* ---- Codecs for fixed-size values (PROTOCOL.md §1) ---- */

/* The fixed-size codecs ipcchan_pack and ipcchan_unpack speak. */
enum ipcchan_codec {
	IPCCHAN_BINARY_LE = 1, /* "binary-le": fields in order, no padding, little-endian */
	IPCCHAN_BINARY_BE,     /* "binary-be": the same, big-endian */
	IPCCHAN_CSTRUCT        /* "cstruct": the C layout itself, padding zeroed */
};

/* ipcchan_codec_name returns the codec's name for the hello ("binary-le",
 * "binary-be", "cstruct"), or NULL for an unknown codec. */
static inline const char *ipcchan_codec_name(enum ipcchan_codec c);

/* ipcchan_packed_size returns the size of t's values under codec c (the
 * sum of the fields' sizes for binary-le/-be, t->size for cstruct), or -1
 * with errno EINVAL (a bad description, or a CSTRING field under binary). */
static inline ssize_t ipcchan_packed_size(const struct ipcchan_type *t, enum ipcchan_codec c);

/*
 * ipcchan_pack encodes the C struct at value, described by t, as codec c
 * lays it out into out: binary-le/-be field by field with no padding, bool
 * as 0 or 1, arrays element by element, nested structs inline, blank ("_")
 * fields as zeros, byte order by explicit shifts; cstruct in the struct's
 * own layout with the padding and blank fields zeroed and char[N] strings
 * NUL-padded after their first NUL. It returns the payload's length, or -1
 * with errno EMSGSIZE (cap is too small), EINVAL (a bad description, or a
 * CSTRING field holding no NUL, which Go would refuse to send: C reads it
 * cut short).
 */
static inline ssize_t ipcchan_pack(const struct ipcchan_type *t, enum ipcchan_codec c, const void *value, void *out, size_t cap);

/*
 * ipcchan_unpack decodes a payload of exactly ipcchan_packed_size bytes
 * into the C struct at value: every described field is set (a bool to 0 or
 * 1 from any byte, a CSTRING field up to its first NUL and zeroed after it);
 * the struct's other bytes and blank fields are left as they were. It
 * returns 0, or -1 with errno EBADMSG (the payload has another length) or
 * EINVAL (a bad description).
 */
static inline int ipcchan_unpack(const struct ipcchan_type *t, enum ipcchan_codec c, const void *in, size_t n, void *value);

/* ipcchan_ctext_pack lays out the text s as codec "ctext" (CText(size)):
 * NUL-padded to exactly size bytes in out. It returns size, or -1 with
 * errno EMSGSIZE if s needs size bytes or more (no room for its NUL). */
static inline ssize_t ipcchan_ctext_pack(const char *s, void *out, size_t size);

/* ipcchan_ctext_unpack copies a "ctext" payload's text, up to its first
 * NUL, into s, NUL-terminated. It returns the text's length, or -1 with
 * errno EMSGSIZE if it needs more than cap bytes with its NUL. */
static inline ssize_t ipcchan_ctext_unpack(const void *in, size_t n, char *s, size_t cap);

/* ---- Byte streams: frames (PROTOCOL.md §2, §3) ---- */

/* Flags of stream, packet and queue ends. */
#define IPCCHAN_NO_HANDSHAKE 0x1u /* streams: no hello (the Go end has WithHandshake(false)) */
#define IPCCHAN_SHARED 0x2u       /* stream sender: the pipe or FIFO may have other writers:
                                     every frame goes in one write of at most PIPE_BUF bytes,
                                     longer ones are refused with EMSGSIZE (§2) */
#define IPCCHAN_HANDSHAKE 0x4u    /* packets: say and expect a hello (both ends must) */

/* IPCCHAN_FRAME_MAX is a stream receiver's default limit on a frame's
 * payload, the Go receivers' default (16 MiB). */
#define IPCCHAN_FRAME_MAX (16u << 20)

/* IPCCHAN_TAG_EOS is the datagram end-of-stream marker's tag (§6). */
#define IPCCHAN_TAG_EOS 0xFFFFFFFFu

#ifndef IPCCHAN_STREAM_BUF
/* IPCCHAN_STREAM_BUF is the size of the buffer a stream receiver embeds
 * (at least 512); define it before including the header to change it. */
#define IPCCHAN_STREAM_BUF 4096
#endif
#ifdef __cplusplus
static_assert(IPCCHAN_STREAM_BUF >= 512, "IPCCHAN_STREAM_BUF must hold a frame header and the longest hello");
#else
_Static_assert(IPCCHAN_STREAM_BUF >= 512, "IPCCHAN_STREAM_BUF must hold a frame header and the longest hello");
#endif

/* struct ipcchan_stream_sender writes frames to a byte stream. Fields are
 * private. */
struct ipcchan_stream_sender {
	int fd;
	unsigned flags;
	int greeted, sock, unixsock;
	size_t hello_len;
	unsigned char hello[IPCCHAN_HELLO_MAX];
};

/*
 * ipcchan_stream_sender_init makes s send on fd (a pipe's or FIFO's write
 * end, a connected stream socket) values that codec encodes and whose
 * element type has fingerprint fp. Its first send writes the hello first,
 * unless flags has IPCCHAN_NO_HANDSHAKE; with IPCCHAN_SHARED every frame is
 * one write of at most PIPE_BUF bytes. It returns 0, or -1 with errno
 * EINVAL (codec's name) or fstat's errno. s owns fd from then on.
 */
static inline int ipcchan_stream_sender_init(struct ipcchan_stream_sender *s, int fd, const char *codec, uint64_t fp, unsigned flags);

/*
 * ipcchan_stream_send writes one frame: tag and the n bytes at p. It
 * handles EINTR and short writes, and waits while the stream is full. It
 * returns 0, or -1 with errno EINVAL (the hello's tag with the handshake
 * on; on a Unix socket, a tag from 0x80000000 up, which §5 reserves), EMSGSIZE
 * (n above 4 GiB - 1, or above PIPE_BUF - 8 with IPCCHAN_SHARED; nothing is
 * written), EPIPE (no reader), or write's errno. A frame cut by a failed
 * write leaves the stream broken: close it.
 */
static inline int ipcchan_stream_send(struct ipcchan_stream_sender *s, uint32_t tag, const void *p, size_t n);

/* ipcchan_stream_sender_close closes the descriptor: the end of stream
 * (once every other holder of the write end has closed it). It returns
 * close's result. */
static inline int ipcchan_stream_sender_close(struct ipcchan_stream_sender *s);

/* struct ipcchan_stream_receiver reads frames from a byte stream through
 * its own buffer. limit (IPCCHAN_FRAME_MAX after init) and peer (-1) may be
 * set by the caller; the other fields are private. */
struct ipcchan_stream_receiver {
	int fd;
	int peer;
	uint32_t limit;
	unsigned flags;
	int greeted, ended, err;
	int unixsock;         /* an AF_UNIX stream socket: tags from 0x80000000 mark descriptors (§5) */
	int pending;          /* a frame's payload is being read into the caller's buffer */
	uint32_t ptag;
	size_t plen, pgot;
	uint64_t skip;        /* payload bytes of a refused frame still to pass over */
	size_t head, tail;    /* buf[head:tail] is read and not yet used */
	size_t hello_len;
	unsigned char hello[IPCCHAN_HELLO_MAX];
	unsigned char buf[IPCCHAN_STREAM_BUF];
};

/*
 * ipcchan_stream_receiver_init makes r receive from fd (a pipe's or FIFO's
 * read end, a connected stream socket) the values of codec and fingerprint
 * fp; with the handshake on (no IPCCHAN_NO_HANDSHAKE), it refuses every
 * frame until a hello equal to ours has come. It returns 0, or -1 with
 * errno EINVAL. r owns fd from then on.
 */
static inline int ipcchan_stream_receiver_init(struct ipcchan_stream_receiver *r, int fd, const char *codec, uint64_t fp, unsigned flags);

/*
 * ipcchan_stream_recv receives the next frame's payload into buf (cap
 * bytes), its length into *len and its tag into *tag (either may be NULL),
 * passing over hellos. It returns 1, 0 at the end of the stream (after a
 * whole frame; again on every later call), or -1 with errno:
 *   EPROTO     a hello that is not ours, a frame before any hello, or a
 *              first frame longer than any hello: the refusal sticks;
 *   EMSGSIZE   the frame is longer than cap or r->limit: *len and *tag say
 *              what it was; it is skipped, and the next call goes on with
 *              the frame after it;
 *   EBADMSG    on a Unix stream socket, a frame marked as carrying
 *              descriptors (tag bit 31) too short for their count: dropped.
 *              (A well-formed one is delivered without them, as §5 says:
 *              the kernel closes them, the tag loses bit 31, the payload
 *              its count);
 *   ENODATA    the stream ended inside a frame (sticks);
 *   ETIMEDOUT  timeout_ms passed. If it passed inside a frame, what was
 *              read of it is kept in buf: call again with the same buf and
 *              cap to finish it;
 *   ESRCH      the watched peer exited;
 *   or read's errno.
 */
static inline int ipcchan_stream_recv(struct ipcchan_stream_receiver *r, uint32_t *tag, void *buf, size_t cap, size_t *len, int timeout_ms);

/* ipcchan_stream_receiver_close closes the descriptor and the peer's pidfd.
 * It returns close's result. */
static inline int ipcchan_stream_receiver_close(struct ipcchan_stream_receiver *r);

/* ---- Opening streams, sockets, watching a peer ---- */

/* ipcchan_fifo_open opens the FIFO at path for writing (write non-zero) or
 * reading, waiting as open(2) does for the other side, close-on-exec. It
 * returns the descriptor, or -1 with open's errno. Several processes may
 * write to one FIFO: give its sender IPCCHAN_SHARED unless it is the only
 * writer (Go's OpenFIFOSender writes atomically by default). */
static inline int ipcchan_fifo_open(const char *path, int write);

/* ipcchan_unix_connect connects a Unix socket of type (SOCK_STREAM,
 * SOCK_SEQPACKET, SOCK_DGRAM) to path ("@name" for an abstract name). It
 * returns the descriptor, or -1 with errno ENAMETOOLONG or the call's. */
static inline int ipcchan_unix_connect(const char *path, int type);

/* ipcchan_unix_listen binds a Unix socket of type to path ("@name":
 * abstract) and, for stream and seqpacket, listens; for SOCK_DGRAM the
 * descriptor is the receiving end. The caller accepts (accept4) and
 * unlinks path when done. It returns the descriptor, or -1 with errno. */
static inline int ipcchan_unix_listen(const char *path, int type);

/* ipcchan_tcp_connect connects a TCP socket to host and port. It returns
 * the descriptor, or -1 with errno (EHOSTUNREACH if the name does not
 * resolve). */
static inline int ipcchan_tcp_connect(const char *host, const char *port);

/* ipcchan_pidfd returns a pidfd of process pid, for a receiver's peer
 * field, or -1 with errno (ESRCH: no such process). */
static inline int ipcchan_pidfd(pid_t pid);

/* ---- Datagrams and sequenced packets (PROTOCOL.md §6) ---- */

/* struct ipcchan_packet_sender sends tagged datagrams or records. Fields
 * are private. */
struct ipcchan_packet_sender {
	int fd;
	int type; /* SOCK_DGRAM or SOCK_SEQPACKET */
	unsigned flags;
	int greeted;
	size_t hello_len;
	unsigned char hello[IPCCHAN_HELLO_MAX];
};

/*
 * ipcchan_packet_sender_init makes s send on fd, a connected unixgram, UDP
 * or seqpacket socket. With IPCCHAN_HANDSHAKE its first send sends the
 * hello of codec and fp first (the Go receiver needs WithHandshake(true)).
 * It returns 0, or -1 with errno EINVAL (not a datagram or seqpacket
 * socket, a bad codec name) or getsockopt's.
 */
static inline int ipcchan_packet_sender_init(struct ipcchan_packet_sender *s, int fd, const char *codec, uint64_t fp, unsigned flags);

/* ipcchan_packet_send sends one datagram or record: the tag, then the n
 * bytes at p. It returns 0, or -1 with errno EINVAL (tag 0xFFFFFFFF on a
 * datagram socket, or the hello's tag with the handshake on), EMSGSIZE (the
 * socket's limit), ECONNREFUSED (no receiver), or sendmsg's errno. */
static inline int ipcchan_packet_send(struct ipcchan_packet_sender *s, uint32_t tag, const void *p, size_t n);

/* ipcchan_packet_sender_close ends the stream: on a datagram socket it
 * sends the 4-byte end-of-stream marker, then closes the descriptor (a
 * seqpacket receiver sees the close). It returns 0, or -1 with errno of the
 * marker's send (the descriptor is closed anyway). */
static inline int ipcchan_packet_sender_close(struct ipcchan_packet_sender *s);

/* struct ipcchan_packet_receiver receives tagged datagrams or records.
 * peer may be set; other fields are private. */
struct ipcchan_packet_receiver {
	int fd;
	int peer;
	int type;
	unsigned flags;
	int senders, ends, ended, greeted, err;
	size_t hello_len;
	unsigned char hello[IPCCHAN_HELLO_MAX];
};

/*
 * ipcchan_packet_receiver_init makes r receive on fd (a bound unixgram or
 * UDP socket, a connected seqpacket socket; blocking or not, a receive
 * waits as its timeout says either way) from senders senders (at least
 * 1): a datagram receiver ends after that many end-of-stream markers, a
 * seqpacket one at its peer's close. With IPCCHAN_HANDSHAKE it refuses
 * everything before a hello equal to ours. It returns 0, or -1 with errno
 * EINVAL.
 */
static inline int ipcchan_packet_receiver_init(struct ipcchan_packet_receiver *r, int fd, const char *codec, uint64_t fp, unsigned flags, int senders);

/*
 * ipcchan_packet_recv receives one message into buf as ipcchan_stream_recv
 * does. It returns 1, 0 at the end, or -1 with errno EMSGSIZE (longer than
 * cap: dropped, *len is its length), EBADMSG (shorter than the 4-byte tag,
 * or a marker of another length: dropped), EPROTO (handshake, sticks),
 * ETIMEDOUT, ESRCH, or recvmsg's errno.
 */
static inline int ipcchan_packet_recv(struct ipcchan_packet_receiver *r, uint32_t *tag, void *buf, size_t cap, size_t *len, int timeout_ms);

/* ipcchan_packet_receiver_close closes the descriptor and the peer pidfd. */
static inline int ipcchan_packet_receiver_close(struct ipcchan_packet_receiver *r);

/* ---- Message queues (PROTOCOL.md §7) ---- */

/* IPCCHAN_QUEUE_EOS is the queues' end-of-stream marker, 16 bytes. */
#define IPCCHAN_QUEUE_EOS "\0IPCCHAN-EOS\0\0\0\1"
#define IPCCHAN_QUEUE_EOS_LEN 16

/* struct ipcchan_mq_sender sends on a POSIX queue. Fields are private. */
struct ipcchan_mq_sender {
	mqd_t q;
	size_t msgsize;
	unsigned char *scratch; /* msgsize bytes, for escaped values */
};

/*
 * ipcchan_mq_sender_init makes s send on the POSIX queue q, opened for
 * writing (mq_open(name, O_WRONLY), or an inherited descriptor: a mqd_t is
 * one on Linux). It allocates the queue's message size once, for escapes.
 * It returns 0, or -1 with errno (mq_getattr's, ENOMEM). s owns q.
 */
static inline int ipcchan_mq_sender_init(struct ipcchan_mq_sender *s, mqd_t q);

/*
 * ipcchan_mq_send sends the n bytes at p with priority prio (the tag,
 * 0 to 32767), escaped if they begin like the marker. It waits while the
 * queue is full (unless q is O_NONBLOCK: EAGAIN). It returns 0, or -1 with
 * errno EINVAL (prio), EMSGSIZE (longer than the queue's messages, also
 * once escaped: never truncated), or mq_send's.
 */
static inline int ipcchan_mq_send(struct ipcchan_mq_sender *s, unsigned prio, const void *p, size_t n);

/* ipcchan_mq_sender_close sends the end-of-stream marker at priority 0 (on
 * a queue of at least 16-byte messages) and closes q. It returns 0, or -1
 * with the marker's errno (q is closed anyway). */
static inline int ipcchan_mq_sender_close(struct ipcchan_mq_sender *s);

/* struct ipcchan_mq_receiver receives from a POSIX queue. peer may be
 * set; other fields are private. */
struct ipcchan_mq_receiver {
	mqd_t q;
	int peer;
	size_t msgsize;
	int senders, ends, ended;
	unsigned char *body; /* msgsize bytes */
};

/* ipcchan_mq_receiver_init makes r receive from the POSIX queue q (opened
 * for reading, blocking or O_NONBLOCK: a receive waits as its timeout says
 * either way) the values of senders senders (at least 1). It allocates
 * one message's room. It returns 0, or -1 with errno. r owns q. */
static inline int ipcchan_mq_receiver_init(struct ipcchan_mq_receiver *r, mqd_t q, int senders);

/*
 * ipcchan_mq_recv receives the next value into buf, its priority into
 * *prio: the highest priority first. It returns 1, 0 after the senders'
 * markers, or -1 with errno EMSGSIZE (the value is longer than cap:
 * dropped; *len says how long), ETIMEDOUT, ESRCH, or mq_receive's.
 */
static inline int ipcchan_mq_recv(struct ipcchan_mq_receiver *r, unsigned *prio, void *buf, size_t cap, size_t *len, int timeout_ms);

/* ipcchan_mq_receiver_close closes q and the peer pidfd, and frees. */
static inline int ipcchan_mq_receiver_close(struct ipcchan_mq_receiver *r);

/* struct ipcchan_sysv_sender sends on a SysV queue. Fields are private. */
struct ipcchan_sysv_sender {
	int id;
	long type;
	size_t max;     /* msgmax */
	long *msg;      /* a long mtype, then room for max bytes */
};

/*
 * ipcchan_sysv_sender_init makes s send on SysV queue id with message type
 * type (at least 1: the sender's own type, which its marker carries). It
 * reads the system's msgmax and allocates one message's room. It returns 0,
 * or -1 with errno EINVAL (type), ENOMEM.
 */
static inline int ipcchan_sysv_sender_init(struct ipcchan_sysv_sender *s, int id, long type);

/*
 * ipcchan_sysv_send sends the n bytes at p with message type type (0: the
 * sender's own; a Go typed receiver takes 1 to 2^32-1), escaped if they
 * begin like the marker. It waits while the queue is full. It returns 0, or
 * -1 with errno EINVAL (a negative type), EMSGSIZE (longer than msgmax, also
 * once escaped), EIDRM (the queue was removed), or msgsnd's.
 */
static inline int ipcchan_sysv_send(struct ipcchan_sysv_sender *s, long type, const void *p, size_t n);

/* ipcchan_sysv_sender_close sends the end-of-stream marker with the
 * sender's type and frees s's room. The queue stays. It returns 0, or -1
 * with msgsnd's errno. */
static inline int ipcchan_sysv_sender_close(struct ipcchan_sysv_sender *s);

/* struct ipcchan_sysv_receiver receives from a SysV queue. peer (a pidfd)
 * may be set; other fields are private. */
struct ipcchan_sysv_receiver {
	int id;
	int peer;
	long type;
	int msgflg;
	int senders, ends, ended;
	size_t max;
	long *msg;
};

/*
 * ipcchan_sysv_receiver_init makes r receive from SysV queue id the
 * messages msgrcv selects with type and msgflg (MSG_EXCEPT; MSG_NOERROR is
 * ignored: a value is never truncated), as ipcchan_inherit_sysv gives them,
 * from senders senders (at least 1). It returns 0, or -1 with errno.
 */
static inline int ipcchan_sysv_receiver_init(struct ipcchan_sysv_receiver *r, int id, long type, int msgflg, int senders);

/*
 * ipcchan_sysv_recv receives the next value into buf, its message type,
 * whole (a long: a type above 2^32 - 1 is not cut), into *type. With a
 * timeout other than -1, or a peer to watch, it polls the queue (SysV
 * queues have no descriptor): every millisecond, backing off to 10 ms. It
 * returns 1, 0 after the senders' markers, or -1 with errno EMSGSIZE
 * (longer than cap, or than msgmax was at init: dropped), ETIMEDOUT,
 * ESRCH, EIDRM, or msgrcv's.
 */
static inline int ipcchan_sysv_recv(struct ipcchan_sysv_receiver *r, long *type, void *buf, size_t cap, size_t *len, int timeout_ms);

/* ipcchan_sysv_receiver_close closes the peer pidfd and frees. The queue
 * stays. */
static inline int ipcchan_sysv_receiver_close(struct ipcchan_sysv_receiver *r);

/* ---- Implementation ---- */

static inline size_t ipcchan__kind_size(enum ipcchan_kind k) {
	switch (k) {
	case IPCCHAN_BOOL: case IPCCHAN_INT8: case IPCCHAN_UINT8: case IPCCHAN_CHARS: case IPCCHAN_CSTRING:
		return 1;
	case IPCCHAN_INT16: case IPCCHAN_UINT16:
		return 2;
	case IPCCHAN_INT32: case IPCCHAN_UINT32: case IPCCHAN_FLOAT32:
		return 4;
	case IPCCHAN_INT64: case IPCCHAN_UINT64: case IPCCHAN_FLOAT64:
		return 8;
	default:
		return 0;
	}
}

static inline const char *ipcchan__kind_name(enum ipcchan_kind k) {
	static const char *const names[] = {"", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
	                                    "uint32", "uint64", "float32", "float64"};
	return k >= IPCCHAN_BOOL && k <= IPCCHAN_FLOAT64 ? names[k] : NULL;
}

/* ipcchan__desc writes a description into buf (if any) and hashes it. */
struct ipcchan__desc {
	char *buf;
	size_t cap, len;
	uint64_t h;
};

static inline void ipcchan__put(struct ipcchan__desc *d, const char *s) {
	for (; *s != '\0'; s++) {
		if (d->buf != NULL && d->len + 1 < d->cap)
			d->buf[d->len] = *s;
		d->len++;
		d->h = (d->h ^ (unsigned char)*s) * 0x100000001b3ull;
	}
}

static inline void ipcchan__put_len(struct ipcchan__desc *d, size_t n) {
	char num[24];
	int i = (int)sizeof num - 1;
	num[i] = '\0';
	do {
		num[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	ipcchan__put(d, "[");
	ipcchan__put(d, num + i);
	ipcchan__put(d, "]");
}

/* ipcchan__check validates t: every field inside t->size, kinds known,
 * nesting at most 32 deep. */
static inline int ipcchan__check(const struct ipcchan_type *t, int depth) {
	if (t == NULL || depth > 32 || (t->fields == NULL && t->nfields > 0))
		return -1;
	for (size_t i = 0; i < t->nfields; i++) {
		const struct ipcchan_field *f = &t->fields[i];
		size_t n = f->len == 0 ? 1 : f->len, each;
		if (f->name == NULL || f->name[0] == '\0')
			return -1;
		if (f->kind == IPCCHAN_STRUCT) {
			if (ipcchan__check(f->type, depth + 1) < 0)
				return -1;
			each = f->type->size;
		} else if (f->kind == IPCCHAN_CHARS || f->kind == IPCCHAN_CSTRING) {
			if (f->len == 0)
				return -1;
			each = 1;
		} else if ((each = ipcchan__kind_size(f->kind)) == 0) {
			return -1;
		}
		if (each != 0 && n > (SIZE_MAX - f->offset) / each)
			return -1;
		if (f->offset + n * each > t->size)
			return -1;
	}
	return 0;
}

static inline void ipcchan__describe(struct ipcchan__desc *d, const struct ipcchan_type *t) {
	ipcchan__put(d, "struct{");
	for (size_t i = 0; i < t->nfields; i++) {
		const struct ipcchan_field *f = &t->fields[i];
		ipcchan__put(d, f->name);
		ipcchan__put(d, " ");
		switch (f->kind) {
		case IPCCHAN_STRUCT:
			if (f->len > 0)
				ipcchan__put_len(d, f->len);
			ipcchan__describe(d, f->type);
			break;
		case IPCCHAN_CHARS:
			ipcchan__put_len(d, f->len);
			ipcchan__put(d, "uint8");
			break;
		case IPCCHAN_CSTRING:
			ipcchan__put(d, "string");
			break;
		default:
			if (f->len > 0)
				ipcchan__put_len(d, f->len);
			ipcchan__put(d, ipcchan__kind_name(f->kind));
		}
		ipcchan__put(d, ";");
	}
	ipcchan__put(d, "}");
}

static inline int ipcchan_describe(const struct ipcchan_type *t, char *buf, size_t cap) {
	struct ipcchan__desc d = {buf, cap, 0, 0xcbf29ce484222325ull};
	if (buf == NULL || ipcchan__check(t, 0) < 0) {
		errno = EINVAL;
		return -1;
	}
	ipcchan__describe(&d, t);
	if (d.len + 1 > cap || d.len > INT_MAX) {
		if (cap > 0)
			buf[0] = '\0';
		errno = ERANGE;
		return -1;
	}
	buf[d.len] = '\0';
	return (int)d.len;
}

static inline int ipcchan_type_fingerprint(const struct ipcchan_type *t, uint64_t *fp) {
	struct ipcchan__desc d = {NULL, 0, 0, 0xcbf29ce484222325ull};
	if (ipcchan__check(t, 0) < 0) {
		errno = EINVAL;
		return -1;
	}
	ipcchan__describe(&d, t);
	*fp = d.h;
	return 0;
}

static inline int ipcchan_type_hello(unsigned char buf[IPCCHAN_HELLO_MAX], const char *codec, const struct ipcchan_type *t) {
	uint64_t fp;
	if (ipcchan_type_fingerprint(t, &fp) < 0)
		return -1;
	return ipcchan_hello(buf, codec, fp);
}

/* ---- Codecs ---- */

static inline const char *ipcchan_codec_name(enum ipcchan_codec c) {
	switch (c) {
	case IPCCHAN_BINARY_LE:
		return "binary-le";
	case IPCCHAN_BINARY_BE:
		return "binary-be";
	case IPCCHAN_CSTRUCT:
		return "cstruct";
	}
	return NULL;
}

/* ipcchan__binsize returns t's binary size, or -1 for a CSTRING field. */
static inline ssize_t ipcchan__binsize(const struct ipcchan_type *t) {
	ssize_t total = 0;
	for (size_t i = 0; i < t->nfields; i++) {
		const struct ipcchan_field *f = &t->fields[i];
		size_t n = f->len == 0 ? 1 : f->len;
		ssize_t each;
		if (f->kind == IPCCHAN_CSTRING)
			return -1;
		if (f->kind == IPCCHAN_STRUCT) {
			if ((each = ipcchan__binsize(f->type)) < 0)
				return -1;
		} else if (f->kind == IPCCHAN_CHARS) {
			each = 1;
		} else {
			each = (ssize_t)ipcchan__kind_size(f->kind);
		}
		total += (ssize_t)n * each; /* bounded by ipcchan__check: within the C sizes */
	}
	return total;
}

static inline ssize_t ipcchan_packed_size(const struct ipcchan_type *t, enum ipcchan_codec c) {
	ssize_t n = -1;
	if (ipcchan__check(t, 0) == 0) {
		if (c == IPCCHAN_CSTRUCT)
			n = (ssize_t)t->size;
		else if (c == IPCCHAN_BINARY_LE || c == IPCCHAN_BINARY_BE)
			n = ipcchan__binsize(t);
	}
	if (n < 0)
		errno = EINVAL;
	return n;
}

/* ipcchan__scalar moves one scalar of size n between the C value v and the
 * wire w: the machine's value to the wire order (pack) or back. */
static inline void ipcchan__scalar(int pack, int big, unsigned char *v, unsigned char *w, size_t n) {
	uint64_t x = 0;
	if (pack) {
		switch (n) {
		case 1: { uint8_t y; memcpy(&y, v, 1); x = y; break; }
		case 2: { uint16_t y; memcpy(&y, v, 2); x = y; break; }
		case 4: { uint32_t y; memcpy(&y, v, 4); x = y; break; }
		default: memcpy(&x, v, 8);
		}
		for (size_t i = 0; i < n; i++)
			w[big ? n - 1 - i : i] = (unsigned char)(x >> (8 * i));
		return;
	}
	for (size_t i = 0; i < n; i++)
		x |= (uint64_t)w[big ? n - 1 - i : i] << (8 * i);
	switch (n) {
	case 1: { uint8_t y = (uint8_t)x; memcpy(v, &y, 1); break; }
	case 2: { uint16_t y = (uint16_t)x; memcpy(v, &y, 2); break; }
	case 4: { uint32_t y = (uint32_t)x; memcpy(v, &y, 4); break; }
	default: memcpy(v, &x, 8);
	}
}

/* ipcchan__walk packs (pack=1) the struct at v into the wire at *w, or
 * unpacks; binary (cs=0) or cstruct layout (cs=1, w is the struct's image). */
static inline int ipcchan__walk(const struct ipcchan_type *t, int pack, int big, int cs, unsigned char *v, unsigned char *w) {
	size_t off = 0; /* the binary layout's offset */
	for (size_t i = 0; i < t->nfields; i++) {
		const struct ipcchan_field *f = &t->fields[i];
		int blank = strcmp(f->name, "_") == 0;
		size_t n = f->len == 0 ? 1 : f->len;
		unsigned char *fv = v + f->offset, *fw = cs ? w + f->offset : w + off;
		if (f->kind == IPCCHAN_STRUCT) {
			ssize_t each = cs ? (ssize_t)f->type->size : ipcchan__binsize(f->type);
			for (size_t j = 0; j < n; j++) {
				if (blank) {
					if (pack)
						memset(fw + j * (size_t)each, 0, (size_t)each);
				} else if (ipcchan__walk(f->type, pack, big, cs, fv + j * f->type->size, fw + j * (size_t)each) < 0) {
					return -1;
				}
			}
			off += n * (size_t)each;
			continue;
		}
		if (f->kind == IPCCHAN_CHARS || f->kind == IPCCHAN_CSTRING) {
			size_t used = n;
			if (f->kind == IPCCHAN_CSTRING) {
				const unsigned char *nul = (const unsigned char *)memchr(pack ? fv : fw, 0, n);
				if (nul == NULL && pack && !blank)
					return -1; /* Go refuses a string that fills char[N]: C would read it cut */
				used = nul == NULL ? n : (size_t)(nul - (pack ? fv : fw));
			}
			if (blank) {
				if (pack)
					memset(fw, 0, n);
			} else if (pack) {
				memcpy(fw, fv, used);
				memset(fw + used, 0, n - used);
			} else {
				memcpy(fv, fw, used);
				memset(fv + used, 0, n - used);
			}
			off += n;
			continue;
		}
		size_t each = ipcchan__kind_size(f->kind);
		for (size_t j = 0; j < n; j++) {
			unsigned char *ev = fv + j * each, *ew = fw + j * each;
			if (blank) {
				if (pack)
					memset(ew, 0, each);
			} else if (f->kind == IPCCHAN_BOOL) {
				if (pack)
					*ew = *ev != 0;
				else
					*ev = *ew != 0;
			} else if (cs) {
				if (pack)
					memcpy(ew, ev, each);
				else
					memcpy(ev, ew, each);
			} else {
				ipcchan__scalar(pack, big, ev, ew, each);
			}
		}
		off += n * each;
	}
	return 0;
}

static inline ssize_t ipcchan_pack(const struct ipcchan_type *t, enum ipcchan_codec c, const void *value, void *out, size_t cap) {
	ssize_t n = ipcchan_packed_size(t, c);
	if (n < 0)
		return -1;
	if ((size_t)n > cap) {
		errno = EMSGSIZE;
		return -1;
	}
	if (c == IPCCHAN_CSTRUCT)
		memset(out, 0, (size_t)n); /* padding */
	if (ipcchan__walk(t, 1, c == IPCCHAN_BINARY_BE, c == IPCCHAN_CSTRUCT, (unsigned char *)(uintptr_t)value, (unsigned char *)out) < 0) {
		errno = EINVAL;
		return -1;
	}
	return n;
}

static inline int ipcchan_unpack(const struct ipcchan_type *t, enum ipcchan_codec c, const void *in, size_t n, void *value) {
	ssize_t want = ipcchan_packed_size(t, c);
	if (want < 0)
		return -1;
	if ((size_t)want != n) {
		errno = EBADMSG;
		return -1;
	}
	ipcchan__walk(t, 0, c == IPCCHAN_BINARY_BE, c == IPCCHAN_CSTRUCT, (unsigned char *)value, (unsigned char *)(uintptr_t)in);
	return 0;
}

static inline ssize_t ipcchan_ctext_pack(const char *s, void *out, size_t size) {
	size_t n = strnlen(s, size);
	if (n >= size) {
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(out, s, n);
	memset((char *)out + n, 0, size - n);
	return (ssize_t)size;
}

static inline ssize_t ipcchan_ctext_unpack(const void *in, size_t n, char *s, size_t cap) {
	const char *nul = (const char *)memchr(in, 0, n);
	size_t len = nul ? (size_t)(nul - (const char *)in) : n;
	if (len + 1 > cap) {
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(s, in, len);
	s[len] = '\0';
	return (ssize_t)len;
}

/* ---- Waiting ---- */

/* ipcchan__deadline returns the CLOCK_MONOTONIC time in ms timeout_ms from
 * now, or -1 for none. */
static inline int64_t ipcchan__deadline(int timeout_ms) {
	struct timespec ts;
	if (timeout_ms < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
}

/* ipcchan__left returns the ms left until deadline (0 if past), -1 for none. */
static inline int ipcchan__left(int64_t deadline) {
	struct timespec ts;
	if (deadline < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return now >= deadline ? 0 : (int)(deadline - now > INT_MAX ? INT_MAX : deadline - now);
}

/* ipcchan__wait waits until fd has events, the deadline passes (ETIMEDOUT)
 * or the peer pidfd shows its process exited with fd still not ready
 * (ESRCH). It returns 0 or -1 with errno. */
static inline int ipcchan__wait(int fd, short events, int peer, int64_t deadline) {
	for (;;) {
		struct pollfd p[2] = {{fd, events, 0}, {peer, POLLIN, 0}};
		int r = poll(p, peer >= 0 ? 2 : 1, ipcchan__left(deadline));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[0].revents != 0)
			return 0;
		if (peer >= 0 && p[1].revents != 0) {
			errno = ESRCH;
			return -1;
		}
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
}

static inline int ipcchan_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	return (int)syscall(434, pid, 0);
#endif
}

/* ---- Streams ---- */

static inline void ipcchan__be32(unsigned char *b, uint32_t v) {
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

static inline uint32_t ipcchan__get32(const unsigned char *b) {
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* ipcchan__is_unix reports whether fd is an AF_UNIX socket. */
static inline int ipcchan__is_unix(int fd) {
	int dom;
	socklen_t l = sizeof dom;
	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && dom == AF_UNIX;
}

/* ipcchan__hello_init lays out our hello, if flags ask for one. */
static inline int ipcchan__hello_init(unsigned char *hello, size_t *len, const char *codec, uint64_t fp, int on) {
	*len = 0;
	if (!on)
		return 0;
	int n = ipcchan_hello(hello, codec == NULL ? "" : codec, fp);
	if (n < 0)
		return -1;
	*len = (size_t)n;
	return 0;
}

static inline int ipcchan_stream_sender_init(struct ipcchan_stream_sender *s, int fd, const char *codec, uint64_t fp, unsigned flags) {
	struct stat st;
	memset(s, 0, offsetof(struct ipcchan_stream_sender, hello));
	s->fd = -1;
	if (fd < 0) {
		errno = EINVAL;
		return -1;
	}
	if (ipcchan__hello_init(s->hello, &s->hello_len, codec, fp, !(flags & IPCCHAN_NO_HANDSHAKE)) < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		return -1;
	s->fd = fd;
	s->flags = flags;
	s->sock = S_ISSOCK(st.st_mode);
	s->unixsock = s->sock && ipcchan__is_unix(fd);
	return 0;
}

/* ipcchan__writev writes iov whole, through short writes, EINTR and EAGAIN. */
static inline int ipcchan__writev(int fd, int sock, struct iovec *iov, int cnt) {
	while (cnt > 0) {
		ssize_t w;
		if (sock) {
			struct msghdr m;
			memset(&m, 0, sizeof m);
			m.msg_iov = iov;
			m.msg_iovlen = (size_t)cnt;
			w = sendmsg(fd, &m, MSG_NOSIGNAL);
		} else {
			w = writev(fd, iov, cnt);
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && ipcchan__wait(fd, POLLOUT, -1, -1) == 0)
				continue;
			return -1;
		}
		while (cnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* ipcchan__frame writes one frame. */
static inline int ipcchan__frame(struct ipcchan_stream_sender *s, uint32_t tag, const void *p, size_t n) {
	unsigned char h[8];
	if ((uint64_t)n > 0xFFFFFFFFu || ((s->flags & IPCCHAN_SHARED) && n > PIPE_BUF - 8)) {
		errno = EMSGSIZE;
		return -1;
	}
	ipcchan__be32(h, (uint32_t)n);
	ipcchan__be32(h + 4, tag);
	struct iovec iov[2] = {{h, 8}, {(void *)(uintptr_t)p, n}};
	return ipcchan__writev(s->fd, s->sock, iov, n > 0 ? 2 : 1);
}

static inline int ipcchan_stream_send(struct ipcchan_stream_sender *s, uint32_t tag, const void *p, size_t n) {
	if (s->fd < 0) {
		errno = EBADF; /* closed */
		return -1;
	}
	if ((s->hello_len > 0 && tag == IPCCHAN_HELLO_TAG) || (s->unixsock && tag >= 0x80000000u)) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)n > 0xFFFFFFFFu || ((s->flags & IPCCHAN_SHARED) && n > PIPE_BUF - 8)) {
		errno = EMSGSIZE; /* before the hello: nothing is written */
		return -1;
	}
	if (s->hello_len > 0 && !s->greeted) {
		if (ipcchan__frame(s, IPCCHAN_HELLO_TAG, s->hello, s->hello_len) < 0)
			return -1;
		s->greeted = 1;
	}
	return ipcchan__frame(s, tag, p, n);
}

static inline int ipcchan_stream_sender_close(struct ipcchan_stream_sender *s) {
	int fd = s->fd;
	s->fd = -1;
	return fd < 0 ? 0 : close(fd);
}

static inline int ipcchan_stream_receiver_init(struct ipcchan_stream_receiver *r, int fd, const char *codec, uint64_t fp, unsigned flags) {
	memset(r, 0, offsetof(struct ipcchan_stream_receiver, hello));
	r->fd = -1;
	r->peer = -1;
	if (fd < 0) {
		errno = EINVAL;
		return -1;
	}
	if (ipcchan__hello_init(r->hello, &r->hello_len, codec, fp, !(flags & IPCCHAN_NO_HANDSHAKE)) < 0)
		return -1;
	r->fd = fd;
	r->flags = flags;
	r->limit = IPCCHAN_FRAME_MAX;
	r->unixsock = ipcchan__is_unix(fd);
	return 0;
}

/* ipcchan__read reads up to n bytes into p, waiting as the receive may. It
 * returns the count (0 at the end) or -1. */
static inline ssize_t ipcchan__read(struct ipcchan_stream_receiver *r, void *p, size_t n, int64_t deadline) {
	for (;;) {
		if ((deadline >= 0 || r->peer >= 0) && ipcchan__wait(r->fd, POLLIN, r->peer, deadline) < 0)
			return -1;
		ssize_t got = read(r->fd, p, n);
		if (got >= 0)
			return got;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || ipcchan__wait(r->fd, POLLIN, r->peer, deadline) < 0)
			return -1;
	}
}

/* ipcchan__fill reads until buf holds want bytes from head; it returns 1,
 * 0 at the end of the stream, or -1. */
static inline int ipcchan__fill(struct ipcchan_stream_receiver *r, size_t want, int64_t deadline) {
	if (r->tail - r->head >= want)
		return 1;
	if (r->head + want > sizeof r->buf) {
		memmove(r->buf, r->buf + r->head, r->tail - r->head);
		r->tail -= r->head;
		r->head = 0;
	}
	while (r->tail - r->head < want) {
		ssize_t got = ipcchan__read(r, r->buf + r->tail, sizeof r->buf - r->tail, deadline);
		if (got < 0)
			return -1;
		if (got == 0)
			return 0;
		r->tail += (size_t)got;
	}
	return 1;
}

/* ipcchan__stick makes errno e the receiver's answer from now on. */
static inline int ipcchan__stick(int *err, int e) {
	*err = e;
	errno = e;
	return -1;
}

static inline int ipcchan_stream_recv(struct ipcchan_stream_receiver *r, uint32_t *tag, void *buf, size_t cap, size_t *len, int timeout_ms) {
	int64_t deadline = ipcchan__deadline(timeout_ms);
	if (r->err != 0) {
		errno = r->err;
		return -1;
	}
	if (r->ended)
		return 0;
	if (r->fd < 0) {
		errno = EBADF;
		return -1;
	}
	for (;;) {
		while (r->skip > 0) { /* the rest of a refused frame */
			size_t have = r->tail - r->head;
			if (have > 0) {
				size_t k = have < r->skip ? have : (size_t)r->skip;
				r->head += k;
				r->skip -= k;
				continue;
			}
			r->head = r->tail = 0;
			ssize_t got = ipcchan__read(r, r->buf, r->skip < sizeof r->buf ? (size_t)r->skip : sizeof r->buf, deadline);
			if (got < 0)
				return -1;
			if (got == 0)
				return ipcchan__stick(&r->err, ENODATA);
			r->skip -= (uint64_t)got;
		}
		if (!r->pending) {
			int f = ipcchan__fill(r, 8, deadline);
			if (f < 0)
				return -1;
			if (f == 0) {
				if (r->tail > r->head)
					return ipcchan__stick(&r->err, ENODATA);
				r->ended = 1;
				return 0;
			}
			uint32_t n = ipcchan__get32(r->buf + r->head), t = ipcchan__get32(r->buf + r->head + 4);
			int hs = r->hello_len > 0;
			if (hs && !r->greeted && n > IPCCHAN_HELLO_MAX)
				return ipcchan__stick(&r->err, EPROTO); /* longer than any hello */
			if (hs && t == IPCCHAN_HELLO_TAG) {
				if (n > IPCCHAN_HELLO_MAX)
					return ipcchan__stick(&r->err, EPROTO);
				f = ipcchan__fill(r, 8 + (size_t)n, deadline);
				if (f < 0)
					return -1; /* ETIMEDOUT: the header stays buffered */
				if (f == 0)
					return ipcchan__stick(&r->err, ENODATA);
				if (!ipcchan_hello_matches(r->buf + r->head + 8, n, r->hello, r->hello_len))
					return ipcchan__stick(&r->err, EPROTO);
				r->head += 8 + (size_t)n;
				r->greeted = 1;
				continue;
			}
			if (hs && !r->greeted)
				return ipcchan__stick(&r->err, EPROTO); /* a frame before any hello */
			r->head += 8;
			if (tag != NULL)
				*tag = t;
			if (len != NULL)
				*len = n;
			if (n > cap || n > r->limit) {
				r->skip = n;
				errno = EMSGSIZE;
				return -1;
			}
			r->pending = 1;
			r->ptag = t;
			r->plen = n;
			r->pgot = 0;
		}
		/* The payload: what is buffered, then straight into buf. */
		if (r->plen > cap) { /* called again with another buffer */
			errno = EINVAL;
			return -1;
		}
		size_t have = r->tail - r->head, need = r->plen - r->pgot;
		size_t k = have < need ? have : need;
		if (k > 0)
			memcpy((unsigned char *)buf + r->pgot, r->buf + r->head, k);
		r->head += k;
		r->pgot += k;
		while (r->pgot < r->plen) {
			ssize_t got = ipcchan__read(r, (unsigned char *)buf + r->pgot, r->plen - r->pgot, deadline);
			if (got < 0)
				return -1;
			if (got == 0)
				return ipcchan__stick(&r->err, ENODATA);
			r->pgot += (size_t)got;
		}
		r->pending = 0;
		if (r->unixsock && (r->ptag & 0x80000000u)) {
			/* A frame that carried descriptors (§5): read without a control
			 * buffer, the kernel closed them; the value follows their count. */
			if (r->plen < 4) {
				errno = EBADMSG; /* dropped */
				return -1;
			}
			memmove(buf, (unsigned char *)buf + 4, r->plen - 4);
			r->plen -= 4;
			r->ptag &= 0x7FFFFFFFu;
		}
		if (tag != NULL)
			*tag = r->ptag;
		if (len != NULL)
			*len = r->plen;
		return 1;
	}
}

static inline int ipcchan_stream_receiver_close(struct ipcchan_stream_receiver *r) {
	int fd = r->fd, res = 0;
	if (r->peer >= 0)
		close(r->peer);
	r->peer = -1;
	r->fd = -1;
	if (fd >= 0)
		res = close(fd);
	return res;
}

/* ---- Opening ---- */

static inline int ipcchan_fifo_open(const char *path, int write) {
	for (;;) {
		int fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
		if (fd >= 0 || errno != EINTR)
			return fd;
	}
}

/* ipcchan__sockaddr fills a Unix address for path ("@x": abstract). */
static inline int ipcchan__sockaddr(struct sockaddr_un *a, socklen_t *alen, const char *path) {
	size_t n = strlen(path);
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof a->sun_path) {
		errno = n == 0 ? EINVAL : ENAMETOOLONG;
		return -1;
	}
	memcpy(a->sun_path, path, n);
	if (path[0] == '@')
		a->sun_path[0] = '\0';
	*alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
	return 0;
}

static inline int ipcchan_unix_connect(const char *path, int type) {
	struct sockaddr_un a;
	socklen_t alen;
	if (ipcchan__sockaddr(&a, &alen, path) < 0)
		return -1;
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	while (connect(fd, (struct sockaddr *)&a, alen) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static inline int ipcchan_unix_listen(const char *path, int type) {
	struct sockaddr_un a;
	socklen_t alen;
	if (ipcchan__sockaddr(&a, &alen, path) < 0)
		return -1;
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, alen) < 0 || (type != SOCK_DGRAM && listen(fd, 16) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static inline int ipcchan_tcp_connect(const char *host, const char *port) {
	struct addrinfo hints, *res, *ai;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		errno = EHOSTUNREACH;
		return -1;
	}
	int fd = -1, e = EHOSTUNREACH;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int c;
		while ((c = connect(fd, ai->ai_addr, ai->ai_addrlen)) < 0 && errno == EINTR)
			;
		if (c == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		errno = e;
	return fd;
}

/* ---- Datagrams and sequenced packets ---- */

/* ipcchan__socktype returns fd's socket type, or -1 with EINVAL if it is
 * not a datagram or seqpacket socket. */
static inline int ipcchan__socktype(int fd) {
	int type;
	socklen_t l = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
		return -1;
	if (type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
		errno = EINVAL;
		return -1;
	}
	return type;
}

static inline int ipcchan_packet_sender_init(struct ipcchan_packet_sender *s, int fd, const char *codec, uint64_t fp, unsigned flags) {
	memset(s, 0, offsetof(struct ipcchan_packet_sender, hello));
	s->fd = -1;
	if (ipcchan__hello_init(s->hello, &s->hello_len, codec, fp, (flags & IPCCHAN_HANDSHAKE) != 0) < 0)
		return -1;
	int type = ipcchan__socktype(fd);
	if (type < 0)
		return -1;
	s->fd = fd;
	s->type = type;
	s->flags = flags;
	return 0;
}

/* ipcchan__packet sends tag and payload as one datagram or record. */
static inline int ipcchan__packet(int fd, uint32_t tag, const void *p, size_t n) {
	unsigned char h[4];
	ipcchan__be32(h, tag);
	struct iovec iov[2] = {{h, 4}, {(void *)(uintptr_t)p, n}};
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = iov;
	m.msg_iovlen = n > 0 ? 2 : 1;
	for (;;) {
		if (sendmsg(fd, &m, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && ipcchan__wait(fd, POLLOUT, -1, -1) == 0)
			continue;
		return -1;
	}
}

static inline int ipcchan_packet_send(struct ipcchan_packet_sender *s, uint32_t tag, const void *p, size_t n) {
	if (s->fd < 0) {
		errno = EBADF; /* closed */
		return -1;
	}
	if ((s->type == SOCK_DGRAM && tag == IPCCHAN_TAG_EOS) || (s->hello_len > 0 && tag == IPCCHAN_HELLO_TAG)) {
		errno = EINVAL;
		return -1;
	}
	if (s->hello_len > 0 && !s->greeted) {
		if (ipcchan__packet(s->fd, IPCCHAN_HELLO_TAG, s->hello, s->hello_len) < 0)
			return -1;
		s->greeted = 1;
	}
	return ipcchan__packet(s->fd, tag, p, n);
}

static inline int ipcchan_packet_sender_close(struct ipcchan_packet_sender *s) {
	int res = 0, fd = s->fd;
	if (fd < 0)
		return 0;
	s->fd = -1;
	if (s->type == SOCK_DGRAM)
		res = ipcchan__packet(fd, IPCCHAN_TAG_EOS, NULL, 0);
	int e = errno;
	close(fd);
	errno = e;
	return res;
}

static inline int ipcchan_packet_receiver_init(struct ipcchan_packet_receiver *r, int fd, const char *codec, uint64_t fp, unsigned flags, int senders) {
	memset(r, 0, offsetof(struct ipcchan_packet_receiver, hello));
	r->fd = -1;
	r->peer = -1;
	if (senders < 1) {
		errno = EINVAL;
		return -1;
	}
	if (ipcchan__hello_init(r->hello, &r->hello_len, codec, fp, (flags & IPCCHAN_HANDSHAKE) != 0) < 0)
		return -1;
	int type = ipcchan__socktype(fd);
	if (type < 0)
		return -1;
	r->fd = fd;
	r->type = type;
	r->flags = flags;
	r->senders = senders;
	return 0;
}

static inline int ipcchan_packet_recv(struct ipcchan_packet_receiver *r, uint32_t *tag, void *buf, size_t cap, size_t *len, int timeout_ms) {
	int64_t deadline = ipcchan__deadline(timeout_ms);
	if (r->err != 0) {
		errno = r->err;
		return -1;
	}
	if (r->ended)
		return 0;
	if (r->fd < 0) {
		errno = EBADF;
		return -1;
	}
	for (;;) {
		unsigned char h[4];
		/* Before the hello, read at most a hello's length, into our own
		 * buffer; and there too while the handshake is on and the caller's
		 * buffer could not hold another sender's hello. */
		int hs = r->hello_len > 0, greet = hs && !r->greeted;
		unsigned char hb[IPCCHAN_HELLO_MAX];
		int own = greet || (hs && cap < sizeof hb);
		struct iovec iov[2] = {{h, 4}, {own ? hb : buf, own ? sizeof hb : cap}};
		struct msghdr m;
		memset(&m, 0, sizeof m);
		m.msg_iov = iov;
		m.msg_iovlen = 2;
		if ((deadline >= 0 || r->peer >= 0) && ipcchan__wait(r->fd, POLLIN, r->peer, deadline) < 0)
			return -1;
		ssize_t got = recvmsg(r->fd, &m, MSG_TRUNC | (deadline >= 0 || r->peer >= 0 ? MSG_DONTWAIT : 0));
		if (got < 0) {
			if (errno == EINTR)
				continue;
			/* Nothing there after all, or a non-blocking socket: wait
			 * (again) as the timeout says, rather than spin on recvmsg. */
			if (errno == EAGAIN && ipcchan__wait(r->fd, POLLIN, r->peer, deadline) == 0)
				continue;
			return -1;
		}
		if (got == 0 && r->type == SOCK_SEQPACKET) {
			/* The peer's close (a read of 0 bytes with nothing queued behind
			 * it), or an empty record, malformed, from a peer still there or
			 * with records behind it. */
			char c;
			struct pollfd p = {r->fd, POLLRDHUP, 0};
			if (recv(r->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP))) {
				r->ended = 1;
				return 0;
			}
		}
		if (got < 4) {
			errno = EBADMSG; /* dropped */
			return -1;
		}
		uint32_t t = ipcchan__get32(h);
		size_t n = (size_t)got - 4;
		if (r->type == SOCK_DGRAM && t == IPCCHAN_TAG_EOS) {
			if (n != 0) {
				errno = EBADMSG;
				return -1;
			}
			if (++r->ends >= r->senders) {
				r->ended = 1;
				return 0;
			}
			continue;
		}
		if (hs && t == IPCCHAN_HELLO_TAG) { /* a sender's hello: the first, or another sender's */
			if (!ipcchan_hello_matches(own ? hb : buf, n, r->hello, r->hello_len))
				return ipcchan__stick(&r->err, EPROTO);
			r->greeted = 1;
			continue;
		}
		if (greet)
			return ipcchan__stick(&r->err, EPROTO); /* a message before any hello */
		if (tag != NULL)
			*tag = t;
		if (len != NULL)
			*len = n;
		if (n > cap) {
			errno = EMSGSIZE; /* the kernel dropped the rest */
			return -1;
		}
		if (own && n > 0)
			memcpy(buf, hb, n);
		return 1;
	}
}

static inline int ipcchan_packet_receiver_close(struct ipcchan_packet_receiver *r) {
	int fd = r->fd;
	if (r->peer >= 0)
		close(r->peer);
	r->peer = r->fd = -1;
	return fd < 0 ? 0 : close(fd);
}

/* ---- Queues ---- */

/* ipcchan__queue_value returns what a body carries: 1 a value at *v, *n
 * (the body, or what follows an escape), 0 the end-of-stream marker. */
static inline int ipcchan__queue_value(const unsigned char *body, size_t len, const unsigned char **v, size_t *n) {
	*v = body;
	*n = len;
	if (len < IPCCHAN_QUEUE_EOS_LEN || memcmp(body, IPCCHAN_QUEUE_EOS, IPCCHAN_QUEUE_EOS_LEN - 1) != 0)
		return 1;
	if (body[15] == 0x01)
		return len == IPCCHAN_QUEUE_EOS_LEN ? 0 : 1;
	if (body[15] == 0x02) {
		*v = body + IPCCHAN_QUEUE_EOS_LEN;
		*n = len - IPCCHAN_QUEUE_EOS_LEN;
	}
	return 1;
}

/* ipcchan__needs_escape reports whether a value begins like the marker. */
static inline int ipcchan__needs_escape(const void *p, size_t n) {
	return n >= IPCCHAN_QUEUE_EOS_LEN - 1 && memcmp(p, IPCCHAN_QUEUE_EOS, IPCCHAN_QUEUE_EOS_LEN - 1) == 0;
}

static inline int ipcchan_mq_sender_init(struct ipcchan_mq_sender *s, mqd_t q) {
	struct mq_attr a;
	memset(s, 0, sizeof *s);
	s->q = (mqd_t)-1;
	if (mq_getattr(q, &a) < 0)
		return -1;
	if (a.mq_msgsize >= IPCCHAN_QUEUE_EOS_LEN && (s->scratch = (unsigned char *)malloc((size_t)a.mq_msgsize)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	s->q = q;
	s->msgsize = (size_t)a.mq_msgsize;
	return 0;
}

/* ipcchan__mq_put sends one body, through EINTR. */
static inline int ipcchan__mq_put(mqd_t q, const void *p, size_t n, unsigned prio) {
	while (mq_send(q, (const char *)p, n, prio) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

static inline int ipcchan_mq_send(struct ipcchan_mq_sender *s, unsigned prio, const void *p, size_t n) {
	if (s->q == (mqd_t)-1) {
		errno = EBADF; /* closed */
		return -1;
	}
	if (prio > 32767) {
		errno = EINVAL;
		return -1;
	}
	if (n > s->msgsize) {
		errno = EMSGSIZE;
		return -1;
	}
	if (s->scratch != NULL && ipcchan__needs_escape(p, n)) {
		if (n > s->msgsize - IPCCHAN_QUEUE_EOS_LEN) {
			errno = EMSGSIZE; /* the escaped body would not fit: never truncated */
			return -1;
		}
		memcpy(s->scratch, IPCCHAN_QUEUE_EOS, IPCCHAN_QUEUE_EOS_LEN - 1);
		s->scratch[IPCCHAN_QUEUE_EOS_LEN - 1] = 0x02;
		memcpy(s->scratch + IPCCHAN_QUEUE_EOS_LEN, p, n);
		return ipcchan__mq_put(s->q, s->scratch, n + IPCCHAN_QUEUE_EOS_LEN, prio);
	}
	return ipcchan__mq_put(s->q, p, n, prio);
}

static inline int ipcchan_mq_sender_close(struct ipcchan_mq_sender *s) {
	int res = 0, e = 0;
	if (s->q == (mqd_t)-1)
		return 0;
	if (s->scratch != NULL && (res = ipcchan__mq_put(s->q, IPCCHAN_QUEUE_EOS, IPCCHAN_QUEUE_EOS_LEN, 0)) < 0)
		e = errno;
	mq_close(s->q);
	free(s->scratch);
	s->scratch = NULL;
	s->q = (mqd_t)-1;
	if (res < 0)
		errno = e;
	return res;
}

static inline int ipcchan_mq_receiver_init(struct ipcchan_mq_receiver *r, mqd_t q, int senders) {
	struct mq_attr a;
	memset(r, 0, sizeof *r);
	r->q = (mqd_t)-1;
	r->peer = -1;
	if (senders < 1) {
		errno = EINVAL;
		return -1;
	}
	if (mq_getattr(q, &a) < 0)
		return -1;
	if ((r->body = (unsigned char *)malloc((size_t)a.mq_msgsize > 0 ? (size_t)a.mq_msgsize : 1)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	r->q = q;
	r->msgsize = (size_t)a.mq_msgsize;
	r->senders = senders;
	return 0;
}

static inline int ipcchan_mq_recv(struct ipcchan_mq_receiver *r, unsigned *prio, void *buf, size_t cap, size_t *len, int timeout_ms) {
	int64_t deadline = ipcchan__deadline(timeout_ms);
	if (r->ended)
		return 0;
	if (r->q == (mqd_t)-1) {
		errno = EBADF;
		return -1;
	}
	for (;;) {
		unsigned pr = 0;
		ssize_t got;
		if (deadline >= 0 || r->peer >= 0) {
			if (ipcchan__wait((int)r->q, POLLIN, r->peer, deadline) < 0)
				return -1;
			struct timespec now; /* ready: a zero wait, in case another reader took it */
			clock_gettime(CLOCK_REALTIME, &now);
			got = mq_timedreceive(r->q, (char *)r->body, r->msgsize, &pr, &now);
			if (got < 0 && (errno == ETIMEDOUT || errno == EAGAIN)) /* EAGAIN: q is O_NONBLOCK */
				continue;
		} else {
			got = mq_receive(r->q, (char *)r->body, r->msgsize, &pr);
		}
		if (got < 0) {
			if (errno == EINTR)
				continue;
			/* q is O_NONBLOCK (a queue a Go program opened, or the
			 * caller's): wait as the timeout says instead of failing. */
			if (errno == EAGAIN && ipcchan__wait((int)r->q, POLLIN, r->peer, deadline) == 0)
				continue;
			return -1;
		}
		const unsigned char *v;
		size_t n;
		if (r->msgsize >= IPCCHAN_QUEUE_EOS_LEN) {
			if (ipcchan__queue_value(r->body, (size_t)got, &v, &n) == 0 && pr == 0) {
				if (++r->ends >= r->senders) {
					r->ended = 1;
					return 0;
				}
				continue;
			}
		} else {
			v = r->body;
			n = (size_t)got;
		}
		if (prio != NULL)
			*prio = pr;
		if (len != NULL)
			*len = n;
		if (n > cap) {
			errno = EMSGSIZE;
			return -1;
		}
		if (n > 0)
			memcpy(buf, v, n);
		return 1;
	}
}

static inline int ipcchan_mq_receiver_close(struct ipcchan_mq_receiver *r) {
	int res = 0;
	if (r->peer >= 0)
		close(r->peer);
	if (r->q != (mqd_t)-1)
		res = mq_close(r->q);
	free(r->body);
	r->body = NULL;
	r->peer = -1;
	r->q = (mqd_t)-1;
	return res;
}

/* ipcchan__mtext is the text of a SysV message buffer (a long, then the text). */
static inline unsigned char *ipcchan__mtext(long *msg) {
	return (unsigned char *)(msg + 1);
}

/* ipcchan__msgmax reads kernel.msgmax (8192 if it cannot). */
static inline size_t ipcchan__msgmax(void) {
	char b[32];
	size_t max = 8192;
	int fd = open("/proc/sys/kernel/msgmax", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, b, sizeof b - 1);
		if (n > 0) {
			b[n] = '\0';
			long v = strtol(b, NULL, 10);
			if (v > 0)
				max = (size_t)v;
		}
		close(fd);
	}
	return max;
}

static inline int ipcchan_sysv_sender_init(struct ipcchan_sysv_sender *s, int id, long type) {
	memset(s, 0, sizeof *s);
	if (type < 1) {
		errno = EINVAL;
		return -1;
	}
	s->max = ipcchan__msgmax();
	if ((s->msg = (long *)malloc(sizeof(long) + s->max)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	s->id = id;
	s->type = type;
	return 0;
}

/* ipcchan__msgsnd sends the n bytes in ipcchan__mtext(s->msg), through EINTR. */
static inline int ipcchan__msgsnd(struct ipcchan_sysv_sender *s, size_t n) {
	while (msgsnd(s->id, s->msg, n, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

static inline int ipcchan_sysv_send(struct ipcchan_sysv_sender *s, long type, const void *p, size_t n) {
	if (s->msg == NULL) {
		errno = EBADF; /* closed */
		return -1;
	}
	if (type < 0) {
		errno = EINVAL;
		return -1;
	}
	size_t off = 0;
	if (s->max >= IPCCHAN_QUEUE_EOS_LEN && ipcchan__needs_escape(p, n)) {
		off = IPCCHAN_QUEUE_EOS_LEN;
		memcpy(ipcchan__mtext(s->msg), IPCCHAN_QUEUE_EOS, IPCCHAN_QUEUE_EOS_LEN - 1);
		ipcchan__mtext(s->msg)[IPCCHAN_QUEUE_EOS_LEN - 1] = 0x02;
	}
	if (n > s->max - off) {
		errno = EMSGSIZE;
		return -1;
	}
	*s->msg = type == 0 ? s->type : type;
	memcpy(ipcchan__mtext(s->msg) + off, p, n);
	return ipcchan__msgsnd(s, off + n);
}

static inline int ipcchan_sysv_sender_close(struct ipcchan_sysv_sender *s) {
	int res = 0;
	if (s->msg == NULL)
		return 0;
	if (s->max >= IPCCHAN_QUEUE_EOS_LEN) {
		*s->msg = s->type;
		memcpy(ipcchan__mtext(s->msg), IPCCHAN_QUEUE_EOS, IPCCHAN_QUEUE_EOS_LEN);
		res = ipcchan__msgsnd(s, IPCCHAN_QUEUE_EOS_LEN);
	}
	int e = errno;
	free(s->msg);
	s->msg = NULL;
	errno = e;
	return res;
}

static inline int ipcchan_sysv_receiver_init(struct ipcchan_sysv_receiver *r, int id, long type, int msgflg, int senders) {
	memset(r, 0, sizeof *r);
	r->peer = -1;
	if (senders < 1) {
		errno = EINVAL;
		return -1;
	}
	r->max = ipcchan__msgmax();
	if ((r->msg = (long *)malloc(sizeof(long) + r->max)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	r->id = id;
	r->type = type;
	r->msgflg = msgflg & MSG_EXCEPT;
	r->senders = senders;
	return 0;
}

static inline int ipcchan_sysv_recv(struct ipcchan_sysv_receiver *r, long *type, void *buf, size_t cap, size_t *len, int timeout_ms) {
	int64_t deadline = ipcchan__deadline(timeout_ms);
	int poll_ms = 1;
	if (r->ended)
		return 0;
	if (r->msg == NULL) {
		errno = EBADF;
		return -1;
	}
	for (;;) {
		int nowait = deadline >= 0 || r->peer >= 0;
		/* Look at the peer before the queue: a message it sent before it
		 * died is still delivered by the msgrcv below. */
		struct pollfd pp = {r->peer, POLLIN, 0};
		int gone = r->peer >= 0 && poll(&pp, 1, 0) == 1;
		ssize_t got = msgrcv(r->id, r->msg, r->max, r->type, r->msgflg | (nowait ? IPC_NOWAIT : 0));
		if (got < 0 && errno == E2BIG) {
			/* Longer than msgmax was at init (it was raised since): take it
			 * off the queue, cut, and report it dropped, rather than leave
			 * it in the way of every later receive. */
			if (msgrcv(r->id, r->msg, r->max, r->type, r->msgflg | MSG_NOERROR | IPC_NOWAIT) >= 0) {
				if (type != NULL)
					*type = *r->msg;
				if (len != NULL)
					*len = r->max + 1; /* at least */
				errno = EMSGSIZE;
				return -1;
			}
			if (errno == ENOMSG)
				continue; /* another receiver took it */
		}
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ENOMSG)
				return -1;
			if (gone) {
				errno = ESRCH;
				return -1;
			}
			int left = ipcchan__left(deadline);
			if (left == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			int ms = left < 0 || left > poll_ms ? poll_ms : left;
			struct timespec ts = {0, (long)ms * 1000000};
			nanosleep(&ts, NULL);
			if (poll_ms < 10)
				poll_ms++;
			continue;
		}
		poll_ms = 1;
		const unsigned char *v;
		size_t n;
		if (r->max >= IPCCHAN_QUEUE_EOS_LEN && ipcchan__queue_value(ipcchan__mtext(r->msg), (size_t)got, &v, &n) == 0) {
			if (++r->ends >= r->senders) {
				r->ended = 1;
				return 0;
			}
			continue;
		}
		if (r->max < IPCCHAN_QUEUE_EOS_LEN) {
			v = ipcchan__mtext(r->msg);
			n = (size_t)got;
		}
		if (type != NULL)
			*type = *r->msg;
		if (len != NULL)
			*len = n;
		if (n > cap) {
			errno = EMSGSIZE;
			return -1;
		}
		if (n > 0)
			memcpy(buf, v, n);
		return 1;
	}
}

static inline int ipcchan_sysv_receiver_close(struct ipcchan_sysv_receiver *r) {
	if (r->peer >= 0)
		close(r->peer);
	r->peer = -1;
	free(r->msg);
	r->msg = NULL;
	return 0;
}


/* ==== The shared-memory ring ==== */

/*
 * A ring (PROTOCOL.md §8): a header and a power-of-two data area of
 * variable-size records in shared memory, one reader and any number of
 * writer processes. The message path makes no system call while the other
 * side is busy and allocates nothing.
 *
 * Opening. An end is opened on
 *   - a ring its parent handed over in IPCCHAN_FILES (ipcchan_ring_inherit):
 *     a memfd with its two eventfd doorbells ("name=M+R+W", what Go's
 *     endpoints.RingPair and Pass hand over), or a bare memfd or file
 *     ("name=M", a ring FormatRing made in NewMemfd or a file);
 *   - descriptors the program got some other way (ipcchan_ring_open_fds);
 *   - a ring FormatRing made in a named mapping: a POSIX shared memory
 *     object (endpoints.CreateShm, ipcchan_ring_open_shm), a file
 *     (endpoints.CreateFileMapping, ipcchan_ring_open_file) or a SysV
 *     segment (endpoints.CreateSysVShm, ipcchan_ring_attach_sysv, by its
 *     identifier).
 * Every opener validates the header as the Go side does before it uses the
 * ring (magic, version, header size 256, a capacity that is the largest
 * power of two fitting the mapping, a largest payload of at most C/2 - 8,
 * the doorbells word against the descriptors given) and fails with EPROTO
 * on a header that is not a ring's or is damaged, and with ENOTSUP on a
 * ring whose ends have doorbells when it was not given them.
 *
 * Waiting. Every call that may wait takes timeout_ms: -1 waits for ever,
 * 0 does not wait (EAGAIN), more waits at most that long (ETIMEDOUT). A
 * side that finds nothing to do spins briefly on the ring (an adaptive
 * budget, as the Go ends have: IPCCHAN_RING_SPIN_NS), then sleeps as §8
 * says: on its doorbell with poll(2) if the ring has them, else on the
 * futex word in the mapping; it rings both the futex and the other side's
 * doorbell when it finds that side asleep. A signal's EINTR is retried
 * inside. A writer waiting while another process holds the write lock
 * looks every 10 ms whether that process has exited (a zombie counts as
 * exited) and then takes the lock back; what the dead writer was writing
 * was never published. A peer that dies leaves the other side waiting
 * unless it watches it (ipcchan_ring_watch).
 *
 * Atomics. head, tail, the lock, the futex words and every record word are
 * accessed with __atomic builtins (sequentially consistent, the record word
 * stored with release and loaded with acquire semantics), as §8 asks; the
 * 8-byte words are 8-aligned in the mapping and declared so, which makes
 * their atomics lock-free on 32-bit x86 too (gcc -m32 inlines them: no
 * libatomic).
 *
 * Corruption. The reader validates head, tail and every record word before
 * use; a writer validates head and tail. A violation (a hostile or broken
 * peer) fails with EPROTO and sticks: every later call of the end fails
 * the same way, nothing out of the mapping is ever read or written.
 *
 * Shrinking. A peer that truncates the object under a mapping makes the
 * next access raise SIGBUS, which this library does not catch: the
 * process dies unless it handles SIGBUS itself. Memfds that Go makes
 * (NewMemfd, RingPair) are sealed against shrinking, and SysV segments
 * cannot shrink; a named POSIX object or a file can — open those only
 * with peers you trust not to truncate them.
 *
 * One end per process and side: the write lock holds the writer's pid, so
 * two writer ends of one ring in one process would not exclude each other.
 * An end is not safe for concurrent use by several threads.
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* IPCCHAN_RING_HEADER is the size of a ring's header: the data area follows. */
#define IPCCHAN_RING_HEADER 256

/* IPCCHAN_RING_EOS is the record flag of a writer's end of stream. */
#define IPCCHAN_RING_EOS 0x40000000u

/* IPCCHAN_RING_SPIN_NS is how long a side first spins on the ring before
 * it sleeps, in nanoseconds (define it before including the header to
 * change it; 0: never spin). As the Go ends do, the budget then adapts: it
 * doubles (up to IPCCHAN_RING_SPIN_MAX_NS) when spinning caught the peer
 * and halves (down to 2 µs) when it ran out, so that a side whose peer is
 * slow, or off the processor on a loaded machine, soon sleeps at once
 * instead of burning the processor the peer needs. */
#ifndef IPCCHAN_RING_SPIN_NS
#define IPCCHAN_RING_SPIN_NS 20000
#endif
#ifndef IPCCHAN_RING_SPIN_MAX_NS
#define IPCCHAN_RING_SPIN_MAX_NS 50000
#endif

/* IPCCHAN_RING_LINGER_MS is how long ipcchan_ring_close waits for room for
 * a writer's end-of-stream record (Go's default linger). */
#define IPCCHAN_RING_LINGER_MS 5000

/* IPCCHAN_RING_RECHECK_MS is how often a sleeping writer looks whether the
 * process holding the write lock, or a watched peer, has exited. */
#define IPCCHAN_RING_RECHECK_MS 10

/* ipcchan_ring_flags of the openers: which end to open. */
#define IPCCHAN_RING_READER 0
#define IPCCHAN_RING_WRITER 1

/*
 * struct ipcchan_ring is one end of a ring, which the caller owns (declare it
 * anywhere; the openers fill it in). Its fields are private.
 */
struct ipcchan_ring {
	unsigned char *mem; /* the mapping */
	size_t size;
	unsigned char *data; /* mem + 256 */
	uint64_t cap, mask;
	uint32_t maxrec;
	int writer;
	int rbell, wbell; /* the reader's and the writers' doorbells, or -1 */
	int shm;          /* 1: a SysV attachment (shmdt), 0: mmap */
	uint32_t pid;     /* this process, the write lock's value */
	int err;          /* the sticky error, or 0 */
	int64_t spin_ns;  /* the spin budget */
	int watched;      /* the peer's pid (ipcchan_ring_watch), or 0 */
	/* reader */
	uint64_t head_seen, cur_end;
	int held;    /* a record is held by ipcchan_ring_peek */
	int senders; /* end-of-stream records that end the stream */
	int ended;   /* those seen */
	/* writer */
	uint64_t tail_seen, res_pos;
	uint32_t res_n;
	int reserved; /* the lock is held by ipcchan_ring_reserve */
	/* the hello (ipcchan_ring_hello) */
	int hello_on, greeted;
	size_t hello_len;
	unsigned char hello[IPCCHAN_HELLO_MAX];
};

/*
 * ipcchan_ring_inherit opens the ring end NAME that the parent handed over
 * in IPCCHAN_FILES (§9): "name=M+R+W" (a ring with doorbells, as Go's
 * RingPair and Pass hand it) or "name=M" (a ring without). flags is
 * IPCCHAN_RING_READER or IPCCHAN_RING_WRITER. The end takes the
 * descriptors over (ipcchan_ring_close closes them). It returns 0, or -1
 * with errno: ENOENT/EBADMSG (no or a malformed entry), EPROTO (not a ring,
 * or a damaged header), ENOTSUP (a ring with doorbells handed over without
 * them), or mmap's error.
 */
static inline int ipcchan_ring_inherit(struct ipcchan_ring *r, const char *name, int flags);

/*
 * ipcchan_ring_open_fds opens a ring end on the descriptor of its memory
 * fds[0] and, if n is 3, its reader's and writers' doorbells fds[1] and
 * fds[2] (eventfds). It takes the descriptors over, also on failure
 * (they are closed). Errors as ipcchan_ring_inherit's, and EINVAL for n
 * other than 1 or 3.
 */
static inline int ipcchan_ring_open_fds(struct ipcchan_ring *r, const int *fds, int n, int flags);

/*
 * ipcchan_ring_open_shm opens a ring end on the POSIX shared memory object
 * NAME ("/name", as endpoints.CreateShm names it) where FormatRing made a
 * ring. Errors: shm_open's, and those of ipcchan_ring_open_fds.
 */
static inline int ipcchan_ring_open_shm(struct ipcchan_ring *r, const char *name, int flags);

/*
 * ipcchan_ring_open_file opens a ring end on the file at path (not
 * following a symbolic link), where FormatRing made a ring. Errors:
 * open's, and those of ipcchan_ring_open_fds.
 */
static inline int ipcchan_ring_open_file(struct ipcchan_ring *r, const char *path, int flags);

/*
 * ipcchan_ring_attach_sysv opens a ring end on the SysV shared memory
 * segment shmid (Mapping.ID() on the Go side) where FormatRing made a
 * ring. Errors: shmctl's and shmat's, EPROTO, ENOTSUP.
 */
static inline int ipcchan_ring_attach_sysv(struct ipcchan_ring *r, int shmid, int flags);

/*
 * ipcchan_ring_senders sets how many end-of-stream records end a reader's
 * stream: one per writer (default 1), as Go's ipcchan.WithSenders(n).
 */
static inline void ipcchan_ring_senders(struct ipcchan_ring *r, int n);

/*
 * ipcchan_ring_watch makes the end's waits look, at least every 10 ms,
 * whether the process pid (the peer) has exited (a zombie counts as
 * exited): a reader then returns what the ring still holds and then fails
 * with EPIPE; a writer waiting for room fails with EPIPE. The failure
 * sticks. Go's WatchPeer. pid 0 stops watching.
 */
static inline void ipcchan_ring_watch(struct ipcchan_ring *r, int pid);

/*
 * ipcchan_ring_hello turns the hello on (PROTOCOL.md §3; the Go ends need
 * ipcchan.WithHandshake(true)): a writer writes its hello record now (tag
 * 0x7FFFFFFF, waiting up to timeout_ms for room), and refuses later
 * records with that tag (EINVAL); a reader refuses, for good (EPROTO), a
 * hello that differs from its own and any record before a hello, and
 * passes over matching hellos (one per writer). The hello is that of
 * ipcchan_hello(codec, fingerprint). It returns 0 or -1 with errno
 * (EINVAL for a bad codec name, or a send's error).
 */
static inline int ipcchan_ring_hello(struct ipcchan_ring *r, const char *codec, uint64_t fingerprint, int timeout_ms);

/*
 * ipcchan_ring_max returns the ring's largest payload, in bytes.
 */
static inline size_t ipcchan_ring_max(const struct ipcchan_ring *r);

/*
 * ipcchan_ring_recv receives the next record into buf (of cap bytes): its
 * length in *len and its tag in *tag (either may be NULL). It returns 1, 0
 * at the end of the stream (after one end-of-stream record per writer:
 * ipcchan_ring_senders; every later call returns 0 too), or -1 with errno:
 * EMSGSIZE (the record is longer than cap: *len says how long; it is
 * skipped, as Go's receiver discards a message over its limit, and the
 * next call goes on after it), EAGAIN (timeout_ms 0 and nothing there),
 * ETIMEDOUT, EPROTO (corruption, or a refused hello: sticky), EPIPE (the
 * watched peer exited: sticky).
 */
static inline int ipcchan_ring_recv(struct ipcchan_ring *r, void *buf, size_t cap, size_t *len, uint32_t *tag, int timeout_ms);

/*
 * ipcchan_ring_peek is the zero-copy receive: it waits for the next record
 * as ipcchan_ring_recv does and points *p at its payload, in the ring,
 * where it stays valid and unchanged until ipcchan_ring_release. It
 * returns 1, 0 or -1 as ipcchan_ring_recv does (never EMSGSIZE).
 */
static inline int ipcchan_ring_peek(struct ipcchan_ring *r, const void **p, size_t *len, uint32_t *tag, int timeout_ms);

/*
 * ipcchan_ring_release frees the record ipcchan_ring_peek returned, for
 * the writers; it does nothing if none is held.
 */
static inline void ipcchan_ring_release(struct ipcchan_ring *r);

/*
 * ipcchan_ring_send writes a record of n bytes from p with tag, waiting up
 * to timeout_ms for room and for the write lock. It returns 0, or -1 with
 * errno: EMSGSIZE (n over ipcchan_ring_max: nothing written), EINVAL (the
 * hello's tag while the hello is on), EAGAIN (timeout_ms 0 and no room or
 * the lock is held), ETIMEDOUT, EPROTO (corruption: sticky), EPIPE (the
 * watched reader exited: sticky).
 */
static inline int ipcchan_ring_send(struct ipcchan_ring *r, uint32_t tag, const void *p, size_t n, int timeout_ms);

/*
 * ipcchan_ring_reserve is the zero-copy send: it waits, as
 * ipcchan_ring_send does, for room for a record of up to n bytes, takes
 * the write lock, and points *room at the record's payload in the ring.
 * The caller writes at most n bytes there and then calls
 * ipcchan_ring_commit (or ipcchan_ring_abandon), soon: other writers wait
 * for the lock meanwhile. Errors as ipcchan_ring_send's.
 */
static inline int ipcchan_ring_reserve(struct ipcchan_ring *r, size_t n, void **room, int timeout_ms);

/*
 * ipcchan_ring_commit publishes the first m bytes written in the room
 * ipcchan_ring_reserve gave, with tag, and lets go of the lock. It returns
 * 0, or -1 with errno EINVAL (no room reserved, m over the room's size, or
 * the hello's tag while the hello is on: the record is abandoned).
 */
static inline int ipcchan_ring_commit(struct ipcchan_ring *r, uint32_t tag, size_t m);

/*
 * ipcchan_ring_abandon lets go of the room ipcchan_ring_reserve gave,
 * publishing nothing.
 */
static inline void ipcchan_ring_abandon(struct ipcchan_ring *r);

/*
 * ipcchan_ring_close closes the end: a writer first appends its
 * end-of-stream record (waiting up to IPCCHAN_RING_LINGER_MS for room,
 * unless the end has failed); then the mapping is unmapped and the
 * doorbells closed. It returns 0, or -1 with errno if the end-of-stream
 * record could not be written (the end is closed all the same). Closing a
 * zeroed or already closed ring does nothing.
 */
static inline int ipcchan_ring_close(struct ipcchan_ring *r);

/* ---- Implementation ---- */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define IPCCHAN__R_VERSION 8
#define IPCCHAN__R_HSIZE 12
#define IPCCHAN__R_CAP 16
#define IPCCHAN__R_MAXREC 24
#define IPCCHAN__R_LOCK 32
#define IPCCHAN__R_HEAD 64
#define IPCCHAN__R_TAIL 128
#define IPCCHAN__R_RWAIT 192
#define IPCCHAN__R_WWAIT 196
#define IPCCHAN__R_BELLS 200
#define IPCCHAN__R_PAD 0x80000000u
#define IPCCHAN__R_LEN (IPCCHAN_RING_EOS - 1)
#define IPCCHAN__SC __ATOMIC_SEQ_CST

/* 8-byte words at 8-aligned offsets: say so, for 32-bit targets, whose
 * uint64_t may be only 4-aligned (and whose 8-byte atomics then call out). */
typedef uint64_t ipcchan__u64 __attribute__((aligned(8)));

#define IPCCHAN__U32(r, off) ((uint32_t *)(void *)((r)->mem + (off)))
#define IPCCHAN__U64(r, off) ((ipcchan__u64 *)(void *)((r)->mem + (off)))

static inline uint64_t ipcchan__rec_size(uint64_t n) { return (8 + n + 7) & ~(uint64_t)7; }

static inline int64_t ipcchan__now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ipcchan__deadline turns timeout_ms into a deadline: -1 for none. */
static inline int64_t ipcchan__ring_deadline(int timeout_ms) {
	return timeout_ms < 0 ? -1 : ipcchan__now_ns() + (int64_t)timeout_ms * 1000000;
}

/* ipcchan__remaining returns the nanoseconds left before deadline (-1: no
 * deadline), capped at cap_ns if cap_ns >= 0; 0 once it has passed. */
static inline int64_t ipcchan__remaining(int64_t deadline, int64_t cap_ns) {
	int64_t left = -1;
	if (deadline >= 0) {
		left = deadline - ipcchan__now_ns();
		if (left < 0)
			left = 0;
	}
	if (cap_ns >= 0 && (left < 0 || left > cap_ns))
		left = cap_ns;
	return left;
}

static inline void ipcchan__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* ipcchan__spun adapts r's spin budget to a spin that caught the peer
 * (caught, after waited nanoseconds) or ran out. */
static inline void ipcchan__spun(struct ipcchan_ring *r, int caught, int64_t waited) {
	if (caught) {
		int64_t b = 2 * r->spin_ns > 2 * waited ? 2 * r->spin_ns : 2 * waited;
		r->spin_ns = b < IPCCHAN_RING_SPIN_MAX_NS ? b : IPCCHAN_RING_SPIN_MAX_NS;
	} else {
		r->spin_ns = r->spin_ns / 2 > 2000 ? r->spin_ns / 2 : 2000;
	}
}

/* ipcchan__process_running reports whether the process pid runs: not if
 * it has exited, a zombie included (its pidfd is readable then). */
static inline int ipcchan__process_running(int pid) {
	if (pid <= 0)
		return 0;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		struct pollfd p;
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		int n;
		while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR) {
		}
		close(fd);
		return n == 0;
	}
	if (errno == ESRCH)
		return 0;
	/* No pidfd_open (before Linux 5.3): the state letter in /proc. */
	char path[32], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int sfd = open(path, O_RDONLY | O_CLOEXEC);
	if (sfd < 0)
		return errno != ENOENT;
	ssize_t n = read(sfd, buf, sizeof buf - 1);
	close(sfd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	return !(rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X' || rp[2] == 'x'));
}

/* ipcchan__fail makes err the end's sticky error and returns -1. */
static inline int ipcchan__fail(struct ipcchan_ring *r, int err) {
	if (r->err == 0)
		r->err = err;
	errno = r->err;
	return -1;
}

/* ---- Doorbells and futexes ---- */

static inline uint64_t ipcchan__drain_bell(int fd) {
	uint64_t n = 0;
	if (read(fd, &n, 8) != 8)
		return 0;
	return n;
}

static inline void ipcchan__add_to_bell(int fd, uint64_t n) {
	if (n != 0 && fd >= 0) {
		ssize_t w = write(fd, &n, 8);
		(void)w; /* EAGAIN: the count is at its maximum, readable anyway */
	}
}

/* ipcchan__wake wakes the waiters announced on word, found set: it clears
 * the word, rings bell (if the ring has bells) and wakes the futex. Both,
 * always (§8). */
static inline void ipcchan__wake(uint32_t *word, int bell) {
	__atomic_store_n(word, 0, IPCCHAN__SC);
	if (bell >= 0)
		ipcchan__add_to_bell(bell, 1);
	syscall(SYS_futex, word, 1 /* FUTEX_WAIT is 0, FUTEX_WAKE 1 */, INT32_MAX, NULL, NULL, 0);
}

/* ipcchan__sleep sleeps on bell (poll) or, without bells, on the futex word
 * while it holds 1, for at most ns nanoseconds (-1: no limit). */
static inline void ipcchan__sleep(uint32_t *word, int bell, int64_t ns) {
	if (bell >= 0) {
		struct pollfd p;
		p.fd = bell;
		p.events = POLLIN;
		p.revents = 0;
		int ms = ns < 0 ? -1 : (int)((ns + 999999) / 1000000);
		poll(&p, 1, ms); /* EINTR: the caller looks again */
		return;
	}
	struct timespec ts, *tp = NULL;
	if (ns >= 0) {
		ts.tv_sec = (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		tp = &ts;
	}
	syscall(SYS_futex, word, 0 /* FUTEX_WAIT */, 1, tp, NULL, 0);
}

/* ---- Opening ---- */

/* ipcchan__ring_map validates the header of the mapping mem of size bytes
 * and sets up r on it. */
static inline int ipcchan__ring_setup(struct ipcchan_ring *r, unsigned char *mem, size_t size, int has_bells, int flags) {
	r->mem = mem;
	r->size = size;
	if (size < IPCCHAN_RING_HEADER + 64 || memcmp(mem, "IPCCRING", 8) != 0 ||
	    __atomic_load_n(IPCCHAN__U32(r, IPCCHAN__R_VERSION), IPCCHAN__SC) != 1 ||
	    *IPCCHAN__U32(r, IPCCHAN__R_HSIZE) != IPCCHAN_RING_HEADER) {
		errno = EPROTO;
		return -1;
	}
	/* The capacity is the largest power of two that fits, as formatted. */
	uint64_t rest = (uint64_t)size - IPCCHAN_RING_HEADER, c = 1;
	while (c <= rest / 2)
		c <<= 1;
	uint64_t cap = *IPCCHAN__U64(r, IPCCHAN__R_CAP);
	uint32_t maxrec = *IPCCHAN__U32(r, IPCCHAN__R_MAXREC);
	if (cap != c || maxrec == 0 || maxrec > cap / 2 - 8) {
		errno = EPROTO;
		return -1;
	}
	if (__atomic_load_n(IPCCHAN__U32(r, IPCCHAN__R_BELLS), IPCCHAN__SC) != 0 && !has_bells) {
		errno = ENOTSUP;
		return -1;
	}
	r->data = mem + IPCCHAN_RING_HEADER;
	r->cap = cap;
	r->mask = cap - 1;
	r->maxrec = maxrec;
	r->writer = flags == IPCCHAN_RING_WRITER;
	r->pid = (uint32_t)getpid();
	r->senders = 1;
	r->spin_ns = IPCCHAN_RING_SPIN_NS;
	return 0;
}

static inline void ipcchan__ring_zero(struct ipcchan_ring *r) {
	memset(r, 0, sizeof *r);
	r->rbell = r->wbell = -1;
}

static inline int ipcchan_ring_open_fds(struct ipcchan_ring *r, const int *fds, int n, int flags) {
	struct stat st;
	void *mem = MAP_FAILED;
	int m = fds[0], e = 0;
	ipcchan__ring_zero(r);
	if ((n != 1 && n != 3) || (flags != IPCCHAN_RING_READER && flags != IPCCHAN_RING_WRITER))
		e = EINVAL;
	else if (fstat(m, &st) < 0)
		e = errno;
	else if (!S_ISREG(st.st_mode) || st.st_size < IPCCHAN_RING_HEADER + 64 || (uint64_t)st.st_size > SIZE_MAX)
		e = EPROTO;
	else if ((mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0)) == MAP_FAILED)
		e = errno;
	else if (ipcchan__ring_setup(r, (unsigned char *)mem, (size_t)st.st_size, n == 3, flags) < 0) {
		e = errno;
		munmap(mem, (size_t)st.st_size);
	}
	if (e != 0) {
		for (int i = 0; i < n && i < 3; i++)
			close(fds[i]);
		ipcchan__ring_zero(r);
		errno = e;
		return -1;
	}
	close(m);
	if (n == 3) {
		/* Non-blocking, as §8 says (Go makes them so; this keeps a bell
		 * given some other way from blocking a drain). */
		for (int i = 1; i < 3; i++) {
			int fl = fcntl(fds[i], F_GETFL);
			if (fl >= 0 && !(fl & O_NONBLOCK))
				fcntl(fds[i], F_SETFL, fl | O_NONBLOCK);
		}
		r->rbell = fds[1];
		r->wbell = fds[2];
	}
	return 0;
}

static inline int ipcchan_ring_inherit(struct ipcchan_ring *r, const char *name, int flags) {
	int fds[IPCCHAN_FILES_MAX];
	int n = ipcchan_inherit(name, fds);
	if (n < 0) {
		ipcchan__ring_zero(r);
		return -1;
	}
	return ipcchan_ring_open_fds(r, fds, n, flags);
}

static inline int ipcchan_ring_open_shm(struct ipcchan_ring *r, const char *name, int flags) {
	int fd = shm_open(name, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0) {
		ipcchan__ring_zero(r);
		return -1;
	}
	return ipcchan_ring_open_fds(r, &fd, 1, flags);
}

static inline int ipcchan_ring_open_file(struct ipcchan_ring *r, const char *path, int flags) {
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		ipcchan__ring_zero(r);
		return -1;
	}
	return ipcchan_ring_open_fds(r, &fd, 1, flags);
}

static inline int ipcchan_ring_attach_sysv(struct ipcchan_ring *r, int shmid, int flags) {
	ipcchan__ring_zero(r);
	struct shmid_ds ds;
	if (flags != IPCCHAN_RING_READER && flags != IPCCHAN_RING_WRITER) {
		errno = EINVAL;
		return -1;
	}
	if (shmctl(shmid, IPC_STAT, &ds) < 0)
		return -1;
	void *mem = shmat(shmid, NULL, 0);
	if (mem == (void *)-1)
		return -1;
	if (ipcchan__ring_setup(r, (unsigned char *)mem, ds.shm_segsz, 0, flags) < 0) {
		int e = errno;
		shmdt(mem);
		ipcchan__ring_zero(r);
		errno = e;
		return -1;
	}
	r->shm = 1;
	return 0;
}

static inline void ipcchan_ring_senders(struct ipcchan_ring *r, int n) { r->senders = n > 0 ? n : 1; }

static inline void ipcchan_ring_watch(struct ipcchan_ring *r, int pid) { r->watched = pid > 0 ? pid : 0; }

static inline size_t ipcchan_ring_max(const struct ipcchan_ring *r) { return r->maxrec; }

/* ipcchan__peer_gone reports whether the watched peer has exited. */
static inline int ipcchan__peer_gone(struct ipcchan_ring *r) {
	return r->watched != 0 && !ipcchan__process_running(r->watched);
}

/* ---- Reading ---- */

/* ipcchan__advance frees the ring up to tail and wakes sleeping writers
 * once at most half of it is in use. */
static inline void ipcchan__advance(struct ipcchan_ring *r, uint64_t tail) {
	__atomic_store_n(IPCCHAN__U64(r, IPCCHAN__R_TAIL), tail, IPCCHAN__SC);
	uint32_t *ww = IPCCHAN__U32(r, IPCCHAN__R_WWAIT);
	if (__atomic_load_n(ww, IPCCHAN__SC) != 0 && r->head_seen - tail <= r->cap / 2)
		ipcchan__wake(ww, r->wbell);
}

/* ipcchan__try_read finds the next record, passing over pads, and returns
 * 1 with it (its word, payload, and end in r->cur_end), 0 if the ring is
 * empty, or -1 on corruption (EPROTO, sticky). Every value read from the
 * mapping is checked before it is used, as the Go reader does. */
static inline int ipcchan__try_read(struct ipcchan_ring *r, uint32_t *word, const unsigned char **payload, uint32_t *tag) {
	for (;;) {
		uint64_t tail = __atomic_load_n(IPCCHAN__U64(r, IPCCHAN__R_TAIL), IPCCHAN__SC);
		uint64_t used = r->head_seen - tail;
		if (used == 0 || used > r->cap) {
			r->head_seen = __atomic_load_n(IPCCHAN__U64(r, IPCCHAN__R_HEAD), IPCCHAN__SC);
			used = r->head_seen - tail;
			if (used > r->cap || r->head_seen % 8 != 0 || tail % 8 != 0)
				return ipcchan__fail(r, EPROTO);
			if (used == 0)
				return 0;
		}
		uint64_t i = tail & r->mask;
		uint32_t w = __atomic_load_n((uint32_t *)(void *)(r->data + i), __ATOMIC_ACQUIRE);
		if (w & IPCCHAN__R_PAD) {
			uint64_t size = r->cap - i;
			if (size > used)
				return ipcchan__fail(r, EPROTO);
			ipcchan__advance(r, tail + size);
			continue;
		}
		uint32_t n = w & IPCCHAN__R_LEN;
		uint64_t size = ipcchan__rec_size(n);
		if (n > r->maxrec || size > used || i + size > r->cap)
			return ipcchan__fail(r, EPROTO);
		*word = w;
		*tag = *(uint32_t *)(void *)(r->data + i + 4);
		*payload = r->data + i + 8;
		r->cur_end = tail + size;
		return 1;
	}
}

/* ipcchan__read_wait waits for a record until deadline: ipcchan__try_read's
 * result, or -1 with EAGAIN, ETIMEDOUT or EPIPE. */
static inline int ipcchan__read_wait(struct ipcchan_ring *r, uint32_t *w, const unsigned char **p, uint32_t *tag, int64_t deadline, int block) {
	int got = ipcchan__try_read(r, w, p, tag);
	if (got != 0)
		return got;
	if (!block) {
		if (ipcchan__peer_gone(r) && (got = ipcchan__try_read(r, w, p, tag)) == 0)
			return ipcchan__fail(r, EPIPE);
		if (got != 0)
			return got;
		errno = EAGAIN;
		return -1;
	}
	uint32_t *rw = IPCCHAN__U32(r, IPCCHAN__R_RWAIT);
	if (r->spin_ns > 0) {
		int64_t start = ipcchan__now_ns(), last = start;
		for (unsigned k = 1;; k++) {
			ipcchan__cpu_relax();
			if ((got = ipcchan__try_read(r, w, p, tag)) != 0) {
				ipcchan__spun(r, 1, last - start);
				return got;
			}
			if ((k & 31) == 0 && (last = ipcchan__now_ns()) - start >= r->spin_ns) {
				ipcchan__spun(r, 0, 0);
				break;
			}
		}
	}
	for (;;) {
		uint64_t c = r->rbell >= 0 ? ipcchan__drain_bell(r->rbell) : 0;
		__atomic_store_n(rw, 1, IPCCHAN__SC);
		if ((got = ipcchan__try_read(r, w, p, tag)) != 0) {
			__atomic_store_n(rw, 0, IPCCHAN__SC);
			ipcchan__add_to_bell(r->rbell, c);
			return got;
		}
		if (ipcchan__peer_gone(r)) {
			/* What the peer committed before it exited is still read. */
			if ((got = ipcchan__try_read(r, w, p, tag)) != 0)
				return got;
			return ipcchan__fail(r, EPIPE);
		}
		int64_t ns = ipcchan__remaining(deadline, r->watched ? IPCCHAN_RING_RECHECK_MS * 1000000LL : -1);
		if (ns == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ipcchan__sleep(rw, r->rbell, ns);
	}
}

/* ipcchan__next takes the next record to deliver: end-of-stream records
 * counted, hellos checked and passed over. 1 with it held, 0 at the end,
 * -1 on error. */
static inline int ipcchan__next(struct ipcchan_ring *r, const unsigned char **p, size_t *len, uint32_t *tag, int timeout_ms) {
	if (r->mem == NULL) {
		errno = EBADF;
		return -1;
	}
	if (r->writer) {
		errno = EINVAL;
		return -1;
	}
	if (r->err != 0) {
		errno = r->err;
		return -1;
	}
	if (r->held)
		ipcchan_ring_release(r);
	int64_t deadline = ipcchan__ring_deadline(timeout_ms);
	for (;;) {
		if (r->ended >= r->senders)
			return 0;
		uint32_t w, t;
		const unsigned char *q;
		if (ipcchan__read_wait(r, &w, &q, &t, deadline, timeout_ms != 0) < 0)
			return -1;
		size_t n = w & IPCCHAN__R_LEN;
		if (w & IPCCHAN_RING_EOS) {
			ipcchan__advance(r, r->cur_end);
			r->ended++;
			continue;
		}
		if (r->hello_on) {
			if (t == IPCCHAN_HELLO_TAG) {
				if (!ipcchan_hello_matches(q, n, r->hello, r->hello_len))
					return ipcchan__fail(r, EPROTO);
				r->greeted = 1;
				ipcchan__advance(r, r->cur_end);
				continue;
			}
			if (!r->greeted)
				return ipcchan__fail(r, EPROTO);
		}
		*p = q;
		*len = n;
		*tag = t;
		r->held = 1;
		return 1;
	}
}

static inline int ipcchan_ring_peek(struct ipcchan_ring *r, const void **p, size_t *len, uint32_t *tag, int timeout_ms) {
	const unsigned char *q;
	size_t n;
	uint32_t t;
	int got = ipcchan__next(r, &q, &n, &t, timeout_ms);
	if (got == 1) {
		*p = q;
		if (len)
			*len = n;
		if (tag)
			*tag = t;
	}
	return got;
}

static inline void ipcchan_ring_release(struct ipcchan_ring *r) {
	if (r->held) {
		r->held = 0;
		ipcchan__advance(r, r->cur_end);
	}
}

static inline int ipcchan_ring_recv(struct ipcchan_ring *r, void *buf, size_t cap, size_t *len, uint32_t *tag, int timeout_ms) {
	const unsigned char *q;
	size_t n;
	uint32_t t;
	int got = ipcchan__next(r, &q, &n, &t, timeout_ms);
	if (got != 1)
		return got;
	if (len)
		*len = n;
	if (n > cap) {
		ipcchan_ring_release(r);
		errno = EMSGSIZE;
		return -1;
	}
	if (n > 0)
		memcpy(buf, q, n);
	if (tag)
		*tag = t;
	ipcchan_ring_release(r);
	return 1;
}

/* ---- Writing ---- */

/* ipcchan__unlock_writers frees the write lock and wakes the writers
 * sleeping for it (on the writers' bell too: §8, step 4). */
static inline void ipcchan__unlock_writers(struct ipcchan_ring *r) {
	__atomic_store_n(IPCCHAN__U32(r, IPCCHAN__R_LOCK), 0, IPCCHAN__SC);
	uint32_t *ww = IPCCHAN__U32(r, IPCCHAN__R_WWAIT);
	if (__atomic_load_n(ww, IPCCHAN__SC) != 0)
		ipcchan__wake(ww, r->wbell);
}

/* ipcchan__steal_if_dead frees the lock of a holder that has exited (a
 * zombie included): what it was writing was never published. It reports
 * whether it freed it. */
static inline int ipcchan__steal_if_dead(struct ipcchan_ring *r) {
	uint32_t *lock = IPCCHAN__U32(r, IPCCHAN__R_LOCK);
	uint32_t owner = __atomic_load_n(lock, IPCCHAN__SC);
	return owner != 0 && owner != r->pid && owner <= INT32_MAX && !ipcchan__process_running((int)owner) &&
	       __atomic_compare_exchange_n(lock, &owner, 0, 0, IPCCHAN__SC, IPCCHAN__SC);
}

static inline int ipcchan__locked_by_other(struct ipcchan_ring *r) {
	uint32_t owner = __atomic_load_n(IPCCHAN__U32(r, IPCCHAN__R_LOCK), IPCCHAN__SC);
	return owner != 0 && owner != r->pid;
}

/* ipcchan__may_fit reports whether a try may place a record of n bytes now:
 * the lock is free and it fits (or the ring is at most half full). */
static inline int ipcchan__may_fit(struct ipcchan_ring *r, uint64_t n) {
	uint64_t head = __atomic_load_n(IPCCHAN__U64(r, IPCCHAN__R_HEAD), IPCCHAN__SC);
	uint64_t tail = __atomic_load_n(IPCCHAN__U64(r, IPCCHAN__R_TAIL), IPCCHAN__SC);
	if (__atomic_load_n(IPCCHAN__U32(r, IPCCHAN__R_LOCK), IPCCHAN__SC) != 0)
		return 0;
	uint64_t used = head - tail;
	if (used > r->cap || used <= r->cap / 2)
		return 1; /* corruption is for the try to report */
	uint64_t size = ipcchan__rec_size(n), i = head & r->mask;
	if (i + size > r->cap)
		size += r->cap - i;
	return used + size <= r->cap;
}

/* ipcchan__try_reserve takes the lock and room for n bytes (a pad written
 * first if the record would straddle the end): 1 with the lock held and
 * the record's position in r->res_pos, 0 if the lock is taken or there is
 * no room (the lock released), -1 on corruption. While writers wait
 * (wwait set) it takes the lock only if the record may fit (§8). */
static inline int ipcchan__try_reserve(struct ipcchan_ring *r, uint32_t n) {
	uint32_t *lock = IPCCHAN__U32(r, IPCCHAN__R_LOCK);
	if (__atomic_load_n(IPCCHAN__U32(r, IPCCHAN__R_WWAIT), IPCCHAN__SC) != 0 && !ipcchan__may_fit(r, n))
		return 0;
	uint32_t zero = 0;
	if (!__atomic_compare_exchange_n(lock, &zero, r->pid, 0, IPCCHAN__SC, IPCCHAN__SC))
		return 0;
	uint64_t head = __atomic_load_n(IPCCHAN__U64(r, IPCCHAN__R_HEAD), IPCCHAN__SC);
	uint64_t size = ipcchan__rec_size(n), i = head & r->mask, pad = 0;
	if (i + size > r->cap)
		pad = r->cap - i;
	uint64_t used = head - r->tail_seen;
	if (head % 8 != 0 || used > r->cap || used + pad + size > r->cap) {
		uint64_t tail = __atomic_load_n(IPCCHAN__U64(r, IPCCHAN__R_TAIL), IPCCHAN__SC);
		r->tail_seen = tail;
		used = head - tail;
		if (used > r->cap || head % 8 != 0 || tail % 8 != 0) {
			ipcchan__unlock_writers(r);
			return ipcchan__fail(r, EPROTO);
		}
		if (used + pad + size > r->cap) {
			ipcchan__unlock_writers(r);
			return 0;
		}
	}
	if (pad > 0) {
		__atomic_store_n((uint32_t *)(void *)(r->data + i), IPCCHAN__R_PAD, IPCCHAN__SC);
		head += pad;
		__atomic_store_n(IPCCHAN__U64(r, IPCCHAN__R_HEAD), head, IPCCHAN__SC);
	}
	r->res_pos = head;
	r->res_n = n;
	return 1;
}

/* ipcchan__publish makes the reserved record visible, releases the lock
 * and wakes a sleeping reader. */
static inline void ipcchan__publish(struct ipcchan_ring *r, uint32_t flags, uint32_t n, uint32_t tag) {
	uint64_t i = r->res_pos & r->mask;
	*(uint32_t *)(void *)(r->data + i + 4) = tag;
	__atomic_store_n((uint32_t *)(void *)(r->data + i), flags | n, __ATOMIC_RELEASE);
	__atomic_store_n(IPCCHAN__U64(r, IPCCHAN__R_HEAD), r->res_pos + ipcchan__rec_size(n), IPCCHAN__SC);
	uint32_t *rw = IPCCHAN__U32(r, IPCCHAN__R_RWAIT);
	if (__atomic_load_n(rw, IPCCHAN__SC) != 0)
		ipcchan__wake(rw, r->rbell);
	r->reserved = 0;
	ipcchan__unlock_writers(r);
}

/* ipcchan__write_wait takes the lock and room for n bytes, waiting until
 * deadline: 0, or -1 with errno. */
static inline int ipcchan__write_wait(struct ipcchan_ring *r, uint32_t n, int64_t deadline, int block) {
	int got = ipcchan__try_reserve(r, n);
	if (got != 0)
		return got > 0 ? 0 : -1;
	if (!block) {
		/* The holder is looked at only when the try failed: a holder that
		 * died would otherwise make every later non-blocking send fail. */
		if (ipcchan__steal_if_dead(r) && (got = ipcchan__try_reserve(r, n)) != 0)
			return got > 0 ? 0 : -1;
		errno = EAGAIN;
		return -1;
	}
	uint32_t *ww = IPCCHAN__U32(r, IPCCHAN__R_WWAIT);
	if (r->spin_ns > 0) {
		int64_t start = ipcchan__now_ns(), last = start;
		for (unsigned k = 1;; k++) {
			ipcchan__cpu_relax();
			if ((got = ipcchan__try_reserve(r, n)) != 0) {
				ipcchan__spun(r, 1, last - start);
				return got > 0 ? 0 : -1;
			}
			if ((k & 31) == 0 && (last = ipcchan__now_ns()) - start >= r->spin_ns) {
				ipcchan__spun(r, 0, 0);
				break;
			}
		}
	}
	for (;;) {
		ipcchan__steal_if_dead(r);
		uint64_t c = r->wbell >= 0 ? ipcchan__drain_bell(r->wbell) : 0;
		__atomic_store_n(ww, 1, IPCCHAN__SC);
		if ((got = ipcchan__try_reserve(r, n)) != 0) {
			ipcchan__add_to_bell(r->wbell, c);
			return got > 0 ? 0 : -1;
		}
		if (ipcchan__peer_gone(r))
			return ipcchan__fail(r, EPIPE);
		int recheck = r->watched != 0 || ipcchan__locked_by_other(r);
		int64_t ns = ipcchan__remaining(deadline, recheck ? IPCCHAN_RING_RECHECK_MS * 1000000LL : -1);
		if (ns == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ipcchan__sleep(ww, r->wbell, ns);
	}
}

/* ipcchan__check_write checks a write of n bytes on r. */
static inline int ipcchan__check_write(struct ipcchan_ring *r, size_t n) {
	if (r->mem == NULL) {
		errno = EBADF;
		return -1;
	}
	if (!r->writer || r->reserved) {
		errno = EINVAL;
		return -1;
	}
	if (r->err != 0) {
		errno = r->err;
		return -1;
	}
	if (n > r->maxrec) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

static inline int ipcchan_ring_reserve(struct ipcchan_ring *r, size_t n, void **room, int timeout_ms) {
	if (ipcchan__check_write(r, n) < 0 || ipcchan__write_wait(r, (uint32_t)n, ipcchan__ring_deadline(timeout_ms), timeout_ms != 0) < 0)
		return -1;
	r->reserved = 1;
	*room = r->data + (r->res_pos & r->mask) + 8;
	return 0;
}

static inline int ipcchan_ring_commit(struct ipcchan_ring *r, uint32_t tag, size_t m) {
	if (r->mem == NULL || !r->reserved) {
		errno = EINVAL;
		return -1;
	}
	if (m > r->res_n || (r->hello_on && tag == IPCCHAN_HELLO_TAG)) {
		ipcchan_ring_abandon(r);
		errno = EINVAL;
		return -1;
	}
	ipcchan__publish(r, 0, (uint32_t)m, tag);
	return 0;
}

static inline void ipcchan_ring_abandon(struct ipcchan_ring *r) {
	if (r->mem != NULL && r->reserved) {
		r->reserved = 0;
		ipcchan__unlock_writers(r);
	}
}

/* ipcchan__send writes a record with flags. */
static inline int ipcchan__send(struct ipcchan_ring *r, uint32_t flags, uint32_t tag, const void *p, size_t n, int timeout_ms) {
	if (ipcchan__check_write(r, n) < 0 || ipcchan__write_wait(r, (uint32_t)n, ipcchan__ring_deadline(timeout_ms), timeout_ms != 0) < 0)
		return -1;
	if (n > 0)
		memcpy(r->data + (r->res_pos & r->mask) + 8, p, n);
	ipcchan__publish(r, flags, (uint32_t)n, tag);
	return 0;
}

static inline int ipcchan_ring_send(struct ipcchan_ring *r, uint32_t tag, const void *p, size_t n, int timeout_ms) {
	if (r->hello_on && tag == IPCCHAN_HELLO_TAG) {
		errno = EINVAL;
		return -1;
	}
	return ipcchan__send(r, 0, tag, p, n, timeout_ms);
}

static inline int ipcchan_ring_hello(struct ipcchan_ring *r, const char *codec, uint64_t fingerprint, int timeout_ms) {
	if (r->mem == NULL) {
		errno = EBADF;
		return -1;
	}
	int n = ipcchan_hello(r->hello, codec, fingerprint);
	if (n < 0)
		return -1;
	r->hello_len = (size_t)n;
	r->hello_on = 1;
	if (!r->writer)
		return 0;
	return ipcchan__send(r, 0, IPCCHAN_HELLO_TAG, r->hello, r->hello_len, timeout_ms);
}

static inline int ipcchan_ring_close(struct ipcchan_ring *r) {
	if (r->mem == NULL)
		return 0;
	int rc = 0, e = 0;
	if (r->writer) {
		ipcchan_ring_abandon(r);
		if (r->err == 0 && ipcchan__send(r, IPCCHAN_RING_EOS, 0, NULL, 0, IPCCHAN_RING_LINGER_MS) < 0) {
			rc = -1;
			e = errno;
		}
	} else {
		ipcchan_ring_release(r);
	}
	if (r->shm)
		shmdt(r->mem);
	else
		munmap(r->mem, r->size);
	if (r->rbell >= 0)
		close(r->rbell);
	if (r->wbell >= 0)
		close(r->wbell);
	ipcchan__ring_zero(r);
	if (rc < 0)
		errno = e;
	return rc;
}


#ifdef __cplusplus
}
#endif

#endif /* IPCCHAN_H */
