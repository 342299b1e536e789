/*
 * ringbell: a C peer on a shared-memory ring with doorbells, written from
 * PROTOCOL.md §8 and §9 alone. It finds a ring end its parent handed over
 * in IPCCHAN_FILES (name=M+R+W: the memory, the reader's bell, the
 * writers' bell), maps the memory, and drives the ring as §8 says, sleeping
 * on its bell with poll(2) and ringing the other side's.
 *
 *   ringbell read NAME    prints each record's payload on a line until the
 *                         end of stream; after a record "pause" it prints
 *                         "paused" and reads a line from stdin first.
 *   ringbell write NAME K N
 *                         K times: reads a line from stdin, then writes the
 *                         record "k<i>"; then writes N records "m<i>" and
 *                         an end-of-stream record.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define OFF_VERSION 8
#define OFF_HEADER 12
#define OFF_CAPACITY 16
#define OFF_MAXREC 24
#define OFF_LOCK 32
#define OFF_HEAD 64
#define OFF_TAIL 128
#define OFF_RWAIT 192
#define OFF_WWAIT 196
#define OFF_BELLS 200
#define HEADER 256

#define REC_PAD 0x80000000u
#define REC_EOS 0x40000000u
#define REC_LEN (REC_EOS - 1)

#define SC __ATOMIC_SEQ_CST

static unsigned char *mem;
static uint64_t cap, mask;
static uint32_t maxrec;
static int rbell, wbell; /* the reader's bell, the writers' bell */
static uint32_t me;

#define U32(off) ((uint32_t *)(mem + (off)))
#define U64(off) ((uint64_t *)(mem + (off)))
#define DATA (mem + HEADER)

static void die(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "ringbell: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* find_end sets m, r, w from the IPCCHAN_FILES entry name=M+R+W (§9). */
static void find_end(const char *name, int *m, int *r, int *w) {
	const char *env = getenv("IPCCHAN_FILES");
	if (env == NULL)
		die("no IPCCHAN_FILES");
	char *list = strdup(env), *save = NULL;
	size_t len = strlen(name);
	for (char *e = strtok_r(list, ",", &save); e != NULL; e = strtok_r(NULL, ",", &save)) {
		if (strncmp(e, name, len) == 0 && e[len] == '=') {
			if (sscanf(e + len + 1, "%d+%d+%d", m, r, w) != 3)
				die("entry %s is not a ring with doorbells", e);
			free(list);
			return;
		}
	}
	die("no entry %s in IPCCHAN_FILES=%s", name, env);
}

/* open_ring maps the ring memory and checks its header. */
static void open_ring(const char *name) {
	int m;
	find_end(name, &m, &rbell, &wbell);
	struct stat st;
	if (fstat(m, &st) < 0)
		die("fstat: %s", strerror(errno));
	mem = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
	if (mem == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	if (memcmp(mem, "IPCCRING", 8) != 0 || __atomic_load_n(U32(OFF_VERSION), SC) != 1 ||
	    *U32(OFF_HEADER) != HEADER)
		die("not a ring");
	cap = *U64(OFF_CAPACITY);
	mask = cap - 1;
	maxrec = *U32(OFF_MAXREC);
	if (cap == 0 || (cap & mask) != 0 || HEADER + cap > (uint64_t)st.st_size || maxrec > cap / 2 - 8)
		die("bad capacity %llu or largest record %u", (unsigned long long)cap, maxrec);
	if (*U32(OFF_BELLS) != 1)
		die("the ring has no doorbells");
	me = (uint32_t)getpid();
}

static uint64_t record_size(uint32_t n) { return (8 + (uint64_t)n + 7) & ~(uint64_t)7; }

/* Doorbells: eventfds, non-blocking (the parent made them so). */
static void add_to_bell(int fd, uint64_t n) {
	if (n != 0 && write(fd, &n, 8) != 8)
		die("ring a bell: %s", strerror(errno));
}

static uint64_t drain_bell(int fd) {
	uint64_t n = 0;
	if (read(fd, &n, 8) != 8)
		return 0;
	return n;
}

static void wait_bell(int fd, int timeout_ms) {
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR) {
	}
}

/* wake wakes the waiters announced on word: clear it, wake its futex
 * waiters, and ring its side's bell. Both, always. */
static void wake(uint32_t *word, int bell) {
	__atomic_store_n(word, 0, SC);
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	add_to_bell(bell, 1);
}

/* ---- reading ---- */

static void advance(uint64_t tail) {
	__atomic_store_n(U64(OFF_TAIL), tail, SC);
	uint64_t head = __atomic_load_n(U64(OFF_HEAD), __ATOMIC_ACQUIRE);
	if (__atomic_load_n(U32(OFF_WWAIT), SC) != 0 && head - tail <= cap / 2)
		wake(U32(OFF_WWAIT), wbell);
}

/* try_read finds the next record, skipping pads: 1 and the record, or 0
 * if the ring is empty. */
static int try_read(uint32_t *flags, uint32_t *n, const unsigned char **payload, uint64_t *next) {
	for (;;) {
		uint64_t tail = __atomic_load_n(U64(OFF_TAIL), SC);
		uint64_t head = __atomic_load_n(U64(OFF_HEAD), __ATOMIC_ACQUIRE);
		uint64_t used = head - tail;
		if (used > cap || head % 8 != 0 || tail % 8 != 0)
			die("corrupt: head %llu, tail %llu", (unsigned long long)head, (unsigned long long)tail);
		if (used == 0)
			return 0;
		uint64_t i = tail & mask;
		uint32_t w = __atomic_load_n(U32(HEADER + i), __ATOMIC_ACQUIRE);
		if (w & REC_PAD) {
			if (cap - i > used)
				die("corrupt pad");
			advance(tail + (cap - i));
			continue;
		}
		uint32_t len = w & REC_LEN;
		uint64_t size = record_size(len);
		if (len > maxrec || size > used || i + size > cap)
			die("corrupt record of %u bytes at %llu", len, (unsigned long long)i);
		*flags = w & ~REC_LEN;
		*n = len;
		*payload = DATA + i + 8;
		*next = tail + size;
		return 1;
	}
}

/* read_record waits for a record: the sleeper's protocol with a bell —
 * drain the bell, set rwait, try once more, then sleep until the bell is
 * readable; a count drained for nothing goes back. */
static void read_record(uint32_t *flags, uint32_t *n, const unsigned char **payload, uint64_t *next) {
	while (!try_read(flags, n, payload, next)) {
		uint64_t c = drain_bell(rbell);
		__atomic_store_n(U32(OFF_RWAIT), 1, SC);
		if (try_read(flags, n, payload, next)) {
			add_to_bell(rbell, c);
			return;
		}
		wait_bell(rbell, -1);
	}
}

static int do_read(void) {
	char line[64];
	for (;;) {
		uint32_t flags, n;
		const unsigned char *p;
		uint64_t next;
		read_record(&flags, &n, &p, &next);
		if (flags & REC_EOS) {
			advance(next);
			return 0; /* one sender: its end of stream ends it */
		}
		int pause = n == 5 && memcmp(p, "pause", 5) == 0;
		fwrite(p, 1, n, stdout);
		fputc('\n', stdout);
		advance(next);
		if (pause) {
			printf("paused\n");
			fflush(stdout);
			if (fgets(line, sizeof line, stdin) == NULL)
				die("stdin ended");
		}
		fflush(stdout);
	}
}

/* ---- writing ---- */

/* may_fit: the lock is free and a record of n bytes fits (or the ring is
 * at most half full). A waiting writer takes the lock only then. */
static int may_fit(uint32_t n) {
	uint64_t head = __atomic_load_n(U64(OFF_HEAD), SC);
	uint64_t tail = __atomic_load_n(U64(OFF_TAIL), SC);
	if (__atomic_load_n(U32(OFF_LOCK), SC) != 0)
		return 0;
	uint64_t used = head - tail;
	if (used > cap || used <= cap / 2)
		return 1;
	uint64_t size = record_size(n), i = head & mask;
	if (i + size > cap)
		size += cap - i;
	return used + size <= cap;
}

/* try_write: steps 1 to 4 of writing; 1 if the record went in. */
static int try_write(uint32_t flags, const char *p, uint32_t n) {
	uint32_t zero = 0;
	if (!__atomic_compare_exchange_n(U32(OFF_LOCK), &zero, me, 0, SC, SC))
		return 0;
	uint64_t head = __atomic_load_n(U64(OFF_HEAD), SC);
	uint64_t tail = __atomic_load_n(U64(OFF_TAIL), SC);
	uint64_t used = head - tail;
	if (used > cap || head % 8 != 0 || tail % 8 != 0)
		die("corrupt: head %llu, tail %llu", (unsigned long long)head, (unsigned long long)tail);
	uint64_t size = record_size(n), i = head & mask, pad = 0;
	if (i + size > cap)
		pad = cap - i;
	int ok = used + pad + size <= cap;
	if (ok) {
		if (pad) {
			__atomic_store_n(U32(HEADER + i), REC_PAD, SC);
			head += pad;
			__atomic_store_n(U64(OFF_HEAD), head, __ATOMIC_RELEASE);
			i = 0;
		}
		memcpy(DATA + i + 8, p, n);
		*U32(HEADER + i + 4) = 0; /* tag */
		__atomic_store_n(U32(HEADER + i), flags | n, __ATOMIC_RELEASE);
		__atomic_store_n(U64(OFF_HEAD), head + size, SC);
	}
	__atomic_store_n(U32(OFF_LOCK), 0, SC);
	if (ok && __atomic_load_n(U32(OFF_RWAIT), SC) != 0)
		wake(U32(OFF_RWAIT), rbell);
	if (__atomic_load_n(U32(OFF_WWAIT), SC) != 0)
		wake(U32(OFF_WWAIT), wbell);
	return ok;
}

/* steal_if_dead frees the lock of a holder that has exited. */
static void steal_if_dead(void) {
	uint32_t owner = __atomic_load_n(U32(OFF_LOCK), SC);
	if (owner != 0 && owner != me && kill((pid_t)owner, 0) < 0 && errno == ESRCH)
		__atomic_compare_exchange_n(U32(OFF_LOCK), &owner, 0, 0, SC, SC);
}

/* write_record writes a record, waiting for room on the writers' bell:
 * drain it, set wwait, try once more if the record may fit, then sleep
 * until the bell is readable (at most 10 ms while another process holds
 * the lock, to see whether it died). */
static void write_record(uint32_t flags, const char *p, uint32_t n) {
	if (try_write(flags, p, n))
		return;
	for (;;) {
		uint64_t c = drain_bell(wbell);
		__atomic_store_n(U32(OFF_WWAIT), 1, SC);
		if (may_fit(n) && try_write(flags, p, n)) {
			add_to_bell(wbell, c);
			return;
		}
		uint32_t owner = __atomic_load_n(U32(OFF_LOCK), SC);
		wait_bell(wbell, owner != 0 && owner != me ? 10 : -1);
		steal_if_dead();
	}
}

static int do_write(int k, int n) {
	char line[64], rec[32];
	for (int i = 0; i < k; i++) {
		if (fgets(line, sizeof line, stdin) == NULL)
			die("stdin ended");
		int len = snprintf(rec, sizeof rec, "k%d", i);
		write_record(0, rec, (uint32_t)len);
	}
	for (int i = 0; i < n; i++) {
		int len = snprintf(rec, sizeof rec, "m%d", i);
		write_record(0, rec, (uint32_t)len);
	}
	write_record(REC_EOS, "", 0);
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 3 && strcmp(argv[1], "read") == 0) {
		open_ring(argv[2]);
		return do_read();
	}
	if (argc >= 5 && strcmp(argv[1], "write") == 0) {
		open_ring(argv[2]);
		return do_write(atoi(argv[3]), atoi(argv[4]));
	}
	fprintf(stderr, "usage: ringbell read NAME | ringbell write NAME K N\n");
	return 2;
}
