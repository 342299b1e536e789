/*
 * event: a C peer on two ipcchan events, written from PROTOCOL.md §14 and
 * §9 alone. It finds the events "ping" and "pong" its parent handed over
 * in IPCCHAN_FILES (name=fd: a memfd with the event at offset 0), and:
 *
 *   event ROUNDS   ROUNDS times waits (the waiter's rule) for ping's
 *                  counter to move past the value it last saw, then
 *                  notifies pong (adds 1); then raises bit 5 on pong and
 *                  prints "timeouts N": how many of its futex waits ran
 *                  to their timeout (10 s) rather than being woken — a
 *                  lost wake-up, which the waiter's bounded recheck
 *                  would otherwise hide.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define OFF_VERSION 8
#define OFF_SIZE 12
#define OFF_STATE 64
#define OFF_WAITERS 68
#define OFF_COUNT 72
#define OFF_BITS 80
#define SIZE 128

#define SC __ATOMIC_SEQ_CST

static int timeouts;

static void die(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "event: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

#define U32(m, off) ((uint32_t *)((m) + (off)))
#define U64(m, off) ((uint64_t *)((m) + (off)))

/* open_event maps the event handed down as name=fd (§9) and checks its
 * header (§14). */
static unsigned char *open_event(const char *name) {
	const char *env = getenv("IPCCHAN_FILES");
	if (env == NULL)
		die("no IPCCHAN_FILES");
	char *list = strdup(env), *save = NULL;
	size_t len = strlen(name);
	int fd = -1;
	for (char *e = strtok_r(list, ",", &save); e != NULL; e = strtok_r(NULL, ",", &save)) {
		if (strncmp(e, name, len) == 0 && e[len] == '=' && sscanf(e + len + 1, "%d", &fd) == 1)
			break;
	}
	free(list);
	if (fd < 0)
		die("no entry %s in IPCCHAN_FILES=%s", name, env);
	unsigned char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	if (memcmp(m, "IPCCEVNT", 8) != 0 || __atomic_load_n(U32(m, OFF_VERSION), SC) != 1 ||
	    *U32(m, OFF_SIZE) != SIZE)
		die("%s is not an event", name);
	return m;
}

static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
	return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* wait_count waits until the counter is not seen (§14, the waiter's
 * rule) and returns it. */
static uint64_t wait_count(unsigned char *m, uint64_t seen) {
	struct timespec ts = {10, 0};
	for (;;) {
		uint32_t s = __atomic_load_n(U32(m, OFF_STATE), SC);
		uint64_t c = __atomic_load_n(U64(m, OFF_COUNT), SC);
		if (c != seen)
			return c;
		__atomic_store_n(U32(m, OFF_WAITERS), 1, SC);
		if (__atomic_load_n(U32(m, OFF_STATE), SC) != s)
			continue;
		if (futex(U32(m, OFF_STATE), FUTEX_WAIT, s, &ts) < 0 && errno == ETIMEDOUT)
			timeouts++;
	}
}

/* notify adds n to the counter, ORs bits into the bit set, advances the
 * state and follows the wake rule (§14). */
static void notify(unsigned char *m, uint64_t n, uint64_t bits) {
	__atomic_fetch_add(U64(m, OFF_COUNT), n, SC);
	__atomic_fetch_or(U64(m, OFF_BITS), bits, SC);
	uint32_t s = __atomic_load_n(U32(m, OFF_STATE), SC);
	while (!__atomic_compare_exchange_n(U32(m, OFF_STATE), &s, (s + 2) | 1, 0, SC, SC))
		;
	if (__atomic_load_n(U32(m, OFF_WAITERS), SC) != 0 && __atomic_exchange_n(U32(m, OFF_WAITERS), 0, SC) != 0)
		futex(U32(m, OFF_STATE), FUTEX_WAKE, INT_MAX, NULL);
}

int main(int argc, char **argv) {
	if (argc != 2)
		die("usage: event ROUNDS");
	long rounds = strtol(argv[1], NULL, 10);
	unsigned char *ping = open_event("ping"), *pong = open_event("pong");
	uint64_t seen = 0;
	for (long i = 0; i < rounds; i++) {
		seen = wait_count(ping, seen);
		notify(pong, 1, 0);
	}
	notify(pong, 0, 1u << 5);
	printf("timeouts %d\n", timeouts);
	return 0;
}
