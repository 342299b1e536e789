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
 * ipcchan_ring is one end of a ring, which the caller owns (declare it
 * anywhere; the openers fill it in). Its fields are private.
 */
typedef struct ipcchan_ring {
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
} ipcchan_ring;

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
static inline int ipcchan_ring_inherit(ipcchan_ring *r, const char *name, int flags);

/*
 * ipcchan_ring_open_fds opens a ring end on the descriptor of its memory
 * fds[0] and, if n is 3, its reader's and writers' doorbells fds[1] and
 * fds[2] (eventfds). It takes the descriptors over, also on failure
 * (they are closed). Errors as ipcchan_ring_inherit's, and EINVAL for n
 * other than 1 or 3.
 */
static inline int ipcchan_ring_open_fds(ipcchan_ring *r, const int *fds, int n, int flags);

/*
 * ipcchan_ring_open_shm opens a ring end on the POSIX shared memory object
 * NAME ("/name", as endpoints.CreateShm names it) where FormatRing made a
 * ring. Errors: shm_open's, and those of ipcchan_ring_open_fds.
 */
static inline int ipcchan_ring_open_shm(ipcchan_ring *r, const char *name, int flags);

/*
 * ipcchan_ring_open_file opens a ring end on the file at path (not
 * following a symbolic link), where FormatRing made a ring. Errors:
 * open's, and those of ipcchan_ring_open_fds.
 */
static inline int ipcchan_ring_open_file(ipcchan_ring *r, const char *path, int flags);

/*
 * ipcchan_ring_attach_sysv opens a ring end on the SysV shared memory
 * segment shmid (Mapping.ID() on the Go side) where FormatRing made a
 * ring. Errors: shmctl's and shmat's, EPROTO, ENOTSUP.
 */
static inline int ipcchan_ring_attach_sysv(ipcchan_ring *r, int shmid, int flags);

/*
 * ipcchan_ring_senders sets how many end-of-stream records end a reader's
 * stream: one per writer (default 1), as Go's ipcchan.WithSenders(n).
 */
static inline void ipcchan_ring_senders(ipcchan_ring *r, int n);

/*
 * ipcchan_ring_watch makes the end's waits look, at least every 10 ms,
 * whether the process pid (the peer) has exited (a zombie counts as
 * exited): a reader then returns what the ring still holds and then fails
 * with EPIPE; a writer waiting for room fails with EPIPE. The failure
 * sticks. Go's WatchPeer. pid 0 stops watching.
 */
static inline void ipcchan_ring_watch(ipcchan_ring *r, int pid);

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
static inline int ipcchan_ring_hello(ipcchan_ring *r, const char *codec, uint64_t fingerprint, int timeout_ms);

/*
 * ipcchan_ring_max returns the ring's largest payload, in bytes.
 */
static inline size_t ipcchan_ring_max(const ipcchan_ring *r);

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
static inline int ipcchan_ring_recv(ipcchan_ring *r, void *buf, size_t cap, size_t *len, uint32_t *tag, int timeout_ms);

/*
 * ipcchan_ring_peek is the zero-copy receive: it waits for the next record
 * as ipcchan_ring_recv does and points *p at its payload, in the ring,
 * where it stays valid and unchanged until ipcchan_ring_release. It
 * returns 1, 0 or -1 as ipcchan_ring_recv does (never EMSGSIZE).
 */
static inline int ipcchan_ring_peek(ipcchan_ring *r, const void **p, size_t *len, uint32_t *tag, int timeout_ms);

/*
 * ipcchan_ring_release frees the record ipcchan_ring_peek returned, for
 * the writers; it does nothing if none is held.
 */
static inline void ipcchan_ring_release(ipcchan_ring *r);

/*
 * ipcchan_ring_send writes a record of n bytes from p with tag, waiting up
 * to timeout_ms for room and for the write lock. It returns 0, or -1 with
 * errno: EMSGSIZE (n over ipcchan_ring_max: nothing written), EINVAL (the
 * hello's tag while the hello is on), EAGAIN (timeout_ms 0 and no room or
 * the lock is held), ETIMEDOUT, EPROTO (corruption: sticky), EPIPE (the
 * watched reader exited: sticky).
 */
static inline int ipcchan_ring_send(ipcchan_ring *r, uint32_t tag, const void *p, size_t n, int timeout_ms);

/*
 * ipcchan_ring_reserve is the zero-copy send: it waits, as
 * ipcchan_ring_send does, for room for a record of up to n bytes, takes
 * the write lock, and points *room at the record's payload in the ring.
 * The caller writes at most n bytes there and then calls
 * ipcchan_ring_commit (or ipcchan_ring_abandon), soon: other writers wait
 * for the lock meanwhile. Errors as ipcchan_ring_send's.
 */
static inline int ipcchan_ring_reserve(ipcchan_ring *r, size_t n, void **room, int timeout_ms);

/*
 * ipcchan_ring_commit publishes the first m bytes written in the room
 * ipcchan_ring_reserve gave, with tag, and lets go of the lock. It returns
 * 0, or -1 with errno EINVAL (no room reserved, m over the room's size, or
 * the hello's tag while the hello is on: the record is abandoned).
 */
static inline int ipcchan_ring_commit(ipcchan_ring *r, uint32_t tag, size_t m);

/*
 * ipcchan_ring_abandon lets go of the room ipcchan_ring_reserve gave,
 * publishing nothing.
 */
static inline void ipcchan_ring_abandon(ipcchan_ring *r);

/*
 * ipcchan_ring_close closes the end: a writer first appends its
 * end-of-stream record (waiting up to IPCCHAN_RING_LINGER_MS for room,
 * unless the end has failed); then the mapping is unmapped and the
 * doorbells closed. It returns 0, or -1 with errno if the end-of-stream
 * record could not be written (the end is closed all the same). Closing a
 * zeroed or already closed ring does nothing.
 */
static inline int ipcchan_ring_close(ipcchan_ring *r);

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
static inline int64_t ipcchan__deadline(int timeout_ms) {
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
		struct pollfd p = {.fd = fd, .events = POLLIN};
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
static inline int ipcchan__fail(ipcchan_ring *r, int err) {
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
		struct pollfd p = {.fd = bell, .events = POLLIN};
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
static inline int ipcchan__ring_setup(ipcchan_ring *r, unsigned char *mem, size_t size, int has_bells, int flags) {
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

static inline void ipcchan__ring_zero(ipcchan_ring *r) {
	memset(r, 0, sizeof *r);
	r->rbell = r->wbell = -1;
}

static inline int ipcchan_ring_open_fds(ipcchan_ring *r, const int *fds, int n, int flags) {
	ipcchan__ring_zero(r);
	int m = fds[0], e = 0;
	if ((n != 1 && n != 3) || (flags != IPCCHAN_RING_READER && flags != IPCCHAN_RING_WRITER)) {
		e = EINVAL;
		goto fail;
	}
	struct stat st;
	if (fstat(m, &st) < 0) {
		e = errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < IPCCHAN_RING_HEADER + 64 || (uint64_t)st.st_size > SIZE_MAX) {
		e = EPROTO;
		goto fail;
	}
	void *mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
	if (mem == MAP_FAILED) {
		e = errno;
		goto fail;
	}
	if (ipcchan__ring_setup(r, mem, (size_t)st.st_size, n == 3, flags) < 0) {
		e = errno;
		munmap(mem, (size_t)st.st_size);
		goto fail;
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
fail:
	for (int i = 0; i < n && i < 3; i++)
		close(fds[i]);
	ipcchan__ring_zero(r);
	errno = e;
	return -1;
}

static inline int ipcchan_ring_inherit(ipcchan_ring *r, const char *name, int flags) {
	int fds[IPCCHAN_FILES_MAX];
	int n = ipcchan_inherit(name, fds);
	if (n < 0) {
		ipcchan__ring_zero(r);
		return -1;
	}
	return ipcchan_ring_open_fds(r, fds, n, flags);
}

static inline int ipcchan_ring_open_shm(ipcchan_ring *r, const char *name, int flags) {
	int fd = shm_open(name, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0) {
		ipcchan__ring_zero(r);
		return -1;
	}
	return ipcchan_ring_open_fds(r, &fd, 1, flags);
}

static inline int ipcchan_ring_open_file(ipcchan_ring *r, const char *path, int flags) {
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		ipcchan__ring_zero(r);
		return -1;
	}
	return ipcchan_ring_open_fds(r, &fd, 1, flags);
}

static inline int ipcchan_ring_attach_sysv(ipcchan_ring *r, int shmid, int flags) {
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
	if (ipcchan__ring_setup(r, mem, ds.shm_segsz, 0, flags) < 0) {
		int e = errno;
		shmdt(mem);
		ipcchan__ring_zero(r);
		errno = e;
		return -1;
	}
	r->shm = 1;
	return 0;
}

static inline void ipcchan_ring_senders(ipcchan_ring *r, int n) { r->senders = n > 0 ? n : 1; }

static inline void ipcchan_ring_watch(ipcchan_ring *r, int pid) { r->watched = pid > 0 ? pid : 0; }

static inline size_t ipcchan_ring_max(const ipcchan_ring *r) { return r->maxrec; }

/* ipcchan__peer_gone reports whether the watched peer has exited. */
static inline int ipcchan__peer_gone(ipcchan_ring *r) {
	return r->watched != 0 && !ipcchan__process_running(r->watched);
}

/* ---- Reading ---- */

/* ipcchan__advance frees the ring up to tail and wakes sleeping writers
 * once at most half of it is in use. */
static inline void ipcchan__advance(ipcchan_ring *r, uint64_t tail) {
	__atomic_store_n(IPCCHAN__U64(r, IPCCHAN__R_TAIL), tail, IPCCHAN__SC);
	uint32_t *ww = IPCCHAN__U32(r, IPCCHAN__R_WWAIT);
	if (__atomic_load_n(ww, IPCCHAN__SC) != 0 && r->head_seen - tail <= r->cap / 2)
		ipcchan__wake(ww, r->wbell);
}

/* ipcchan__try_read finds the next record, passing over pads, and returns
 * 1 with it (its word, payload, and end in r->cur_end), 0 if the ring is
 * empty, or -1 on corruption (EPROTO, sticky). Every value read from the
 * mapping is checked before it is used, as the Go reader does. */
static inline int ipcchan__try_read(ipcchan_ring *r, uint32_t *word, const unsigned char **payload, uint32_t *tag) {
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
static inline int ipcchan__read_wait(ipcchan_ring *r, uint32_t *w, const unsigned char **p, uint32_t *tag, int64_t deadline, int block) {
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
static inline int ipcchan__next(ipcchan_ring *r, const unsigned char **p, size_t *len, uint32_t *tag, int timeout_ms) {
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
	int64_t deadline = ipcchan__deadline(timeout_ms);
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

static inline int ipcchan_ring_peek(ipcchan_ring *r, const void **p, size_t *len, uint32_t *tag, int timeout_ms) {
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

static inline void ipcchan_ring_release(ipcchan_ring *r) {
	if (r->held) {
		r->held = 0;
		ipcchan__advance(r, r->cur_end);
	}
}

static inline int ipcchan_ring_recv(ipcchan_ring *r, void *buf, size_t cap, size_t *len, uint32_t *tag, int timeout_ms) {
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
static inline void ipcchan__unlock_writers(ipcchan_ring *r) {
	__atomic_store_n(IPCCHAN__U32(r, IPCCHAN__R_LOCK), 0, IPCCHAN__SC);
	uint32_t *ww = IPCCHAN__U32(r, IPCCHAN__R_WWAIT);
	if (__atomic_load_n(ww, IPCCHAN__SC) != 0)
		ipcchan__wake(ww, r->wbell);
}

/* ipcchan__steal_if_dead frees the lock of a holder that has exited (a
 * zombie included): what it was writing was never published. */
static inline void ipcchan__steal_if_dead(ipcchan_ring *r) {
	uint32_t *lock = IPCCHAN__U32(r, IPCCHAN__R_LOCK);
	uint32_t owner = __atomic_load_n(lock, IPCCHAN__SC);
	if (owner != 0 && owner != r->pid && owner <= INT32_MAX && !ipcchan__process_running((int)owner))
		__atomic_compare_exchange_n(lock, &owner, 0, 0, IPCCHAN__SC, IPCCHAN__SC);
}

static inline int ipcchan__locked_by_other(ipcchan_ring *r) {
	uint32_t owner = __atomic_load_n(IPCCHAN__U32(r, IPCCHAN__R_LOCK), IPCCHAN__SC);
	return owner != 0 && owner != r->pid;
}

/* ipcchan__may_fit reports whether a try may place a record of n bytes now:
 * the lock is free and it fits (or the ring is at most half full). */
static inline int ipcchan__may_fit(ipcchan_ring *r, uint64_t n) {
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
static inline int ipcchan__try_reserve(ipcchan_ring *r, uint32_t n) {
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
static inline void ipcchan__publish(ipcchan_ring *r, uint32_t flags, uint32_t n, uint32_t tag) {
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
static inline int ipcchan__write_wait(ipcchan_ring *r, uint32_t n, int64_t deadline, int block) {
	int got = ipcchan__try_reserve(r, n);
	if (got != 0)
		return got > 0 ? 0 : -1;
	if (!block) {
		ipcchan__steal_if_dead(r);
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
static inline int ipcchan__check_write(ipcchan_ring *r, size_t n) {
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

static inline int ipcchan_ring_reserve(ipcchan_ring *r, size_t n, void **room, int timeout_ms) {
	if (ipcchan__check_write(r, n) < 0 || ipcchan__write_wait(r, (uint32_t)n, ipcchan__deadline(timeout_ms), timeout_ms != 0) < 0)
		return -1;
	r->reserved = 1;
	*room = r->data + (r->res_pos & r->mask) + 8;
	return 0;
}

static inline int ipcchan_ring_commit(ipcchan_ring *r, uint32_t tag, size_t m) {
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

static inline void ipcchan_ring_abandon(ipcchan_ring *r) {
	if (r->mem != NULL && r->reserved) {
		r->reserved = 0;
		ipcchan__unlock_writers(r);
	}
}

/* ipcchan__send writes a record with flags. */
static inline int ipcchan__send(ipcchan_ring *r, uint32_t flags, uint32_t tag, const void *p, size_t n, int timeout_ms) {
	if (ipcchan__check_write(r, n) < 0 || ipcchan__write_wait(r, (uint32_t)n, ipcchan__deadline(timeout_ms), timeout_ms != 0) < 0)
		return -1;
	if (n > 0)
		memcpy(r->data + (r->res_pos & r->mask) + 8, p, n);
	ipcchan__publish(r, flags, (uint32_t)n, tag);
	return 0;
}

static inline int ipcchan_ring_send(ipcchan_ring *r, uint32_t tag, const void *p, size_t n, int timeout_ms) {
	if (r->hello_on && tag == IPCCHAN_HELLO_TAG) {
		errno = EINVAL;
		return -1;
	}
	return ipcchan__send(r, 0, tag, p, n, timeout_ms);
}

static inline int ipcchan_ring_hello(ipcchan_ring *r, const char *codec, uint64_t fingerprint, int timeout_ms) {
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

static inline int ipcchan_ring_close(ipcchan_ring *r) {
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
