/*
 * ring_peer: a C peer on an ipcchan ring, through ipcchan.h, for the tests
 * and benchmarks in clients/c_ring_test.go.
 *
 *   ring_peer MODE SRC [OPTIONS]
 *
 * SRC opens the ring: inherit:NAME (IPCCHAN_FILES), shm:/NAME, file:PATH or
 * sysv:ID. MODE:
 *   read       prints "TAG LEN SUM" for each record (SUM: the FNV-1a hash of
 *              the payload, in hex), then "eos" at the end of the stream;
 *              an error prints "error ERRNO-NAME" and exits 1.
 *   write      writes -n records: record i of writer -id has tag id<<24|i
 *              and a payload of pattern(id, i) of length (i*7919+id) mod
 *              (max+1), max the ring's largest record or -max; then closes
 *              (the end-of-stream record) and prints "done".
 *   holdlock   reserves room for a record (taking the write lock), prints
 *              "locked", and waits to be killed.
 *   echo       with -out SRC2: sends back every record read, same tag, until
 *              the end of stream, then closes SRC2.
 *   sink       reads until the end of stream, then prints the count.
 *   ping       with -out SRC2: -n times, sends a record of -size bytes to
 *              SRC2 and waits for it to come back on SRC; then closes SRC2,
 *              and prints "done".
 *              A record longer than -buf (default 16 MiB) prints "skipped LEN".
 * OPTIONS: -senders N, -hello CODEC:FINGERPRINT-HEX, -watch PID (watch the
 * peer), -timeout MS (each call's, default -1), -peek (read in place),
 * -reserve (write in place), -n N, -id ID, -max M, -wait-line (read a line
 * from stdin after "ready" before writing), -pause-after K (read: after K
 * records print "paused" and read a line from stdin), -size S (write and
 * ping: every record S bytes).
 */
#include "ipcchan.h"

#include <stdio.h>

static const char *errname(int e) {
	switch (e) {
	case EPROTO: return "EPROTO";
	case EBADMSG: return "EBADMSG";
	case EMSGSIZE: return "EMSGSIZE";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EAGAIN: return "EAGAIN";
	case EPIPE: return "EPIPE";
	case ENOTSUP: return "ENOTSUP";
	case EINVAL: return "EINVAL";
	case ENOENT: return "ENOENT";
	}
	return "other";
}

static int fail(const char *what) {
	int e = errno;
	printf("error %s %s: %s\n", errname(e), what, strerror(e));
	fflush(stdout);
	return 1;
}

static int open_src(struct ipcchan_ring *r, const char *src, int flags) {
	if (strncmp(src, "inherit:", 8) == 0)
		return ipcchan_ring_inherit(r, src + 8, flags);
	if (strncmp(src, "shm:", 4) == 0)
		return ipcchan_ring_open_shm(r, src + 4, flags);
	if (strncmp(src, "file:", 5) == 0)
		return ipcchan_ring_open_file(r, src + 5, flags);
	if (strncmp(src, "sysv:", 5) == 0)
		return ipcchan_ring_attach_sysv(r, atoi(src + 5), flags);
	errno = EINVAL;
	return -1;
}

static uint64_t fnv(const unsigned char *p, size_t n) {
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static unsigned char buf[1 << 24];

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: ring_peer MODE SRC [OPTIONS]\n");
		return 2;
	}
	const char *mode = argv[1], *src = argv[2], *out = NULL, *hello = NULL;
	long bufsize = (long)sizeof buf;
	int size = -1, pause_after = -1, senders = 1, watch = 0, timeout = -1, peek = 0, reserve = 0, id = 0, wait_line = 0;
	long n = 0, max = -1;
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (strcmp(a, "-peek") == 0)
			peek = 1;
		else if (strcmp(a, "-reserve") == 0)
			reserve = 1;
		else if (strcmp(a, "-wait-line") == 0)
			wait_line = 1;
		else if (strcmp(a, "-buf") == 0)
			bufsize = atol(v), i++;
		else if (strcmp(a, "-size") == 0)
			size = atoi(v), i++;
		else if (strcmp(a, "-pause-after") == 0)
			pause_after = atoi(v), i++;
		else if (strcmp(a, "-senders") == 0)
			senders = atoi(v), i++;
		else if (strcmp(a, "-hello") == 0)
			hello = v, i++;
		else if (strcmp(a, "-watch") == 0)
			watch = atoi(v), i++;
		else if (strcmp(a, "-timeout") == 0)
			timeout = atoi(v), i++;
		else if (strcmp(a, "-n") == 0)
			n = atol(v), i++;
		else if (strcmp(a, "-id") == 0)
			id = atoi(v), i++;
		else if (strcmp(a, "-max") == 0)
			max = atol(v), i++;
		else if (strcmp(a, "-out") == 0)
			out = v, i++;
		else {
			fprintf(stderr, "ring_peer: unknown option %s\n", a);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int writer = strcmp(mode, "write") == 0 || strcmp(mode, "holdlock") == 0;
	if (wait_line) {
		char line[16];
		printf("ready\n");
		if (fgets(line, sizeof line, stdin) == NULL)
			return 2;
	}
	struct ipcchan_ring r;
	if (open_src(&r, src, writer ? IPCCHAN_RING_WRITER : IPCCHAN_RING_READER) < 0)
		return fail("open");
	ipcchan_ring_senders(&r, senders);
	ipcchan_ring_watch(&r, watch);
	if (hello != NULL) {
		char codec[256];
		const char *colon = strchr(hello, ':');
		if (colon == NULL || (size_t)(colon - hello) >= sizeof codec)
			return 2;
		memcpy(codec, hello, (size_t)(colon - hello));
		codec[colon - hello] = '\0';
		if (ipcchan_ring_hello(&r, codec, strtoull(colon + 1, NULL, 16), timeout) < 0)
			return fail("hello");
	}

	if (strcmp(mode, "read") == 0 || strcmp(mode, "sink") == 0) {
		int print = mode[0] == 'r';
		long count = 0;
		for (;;) {
			const void *p = buf;
			size_t len;
			uint32_t tag;
			int got = peek ? ipcchan_ring_peek(&r, &p, &len, &tag, timeout)
			               : ipcchan_ring_recv(&r, buf, (size_t)bufsize, &len, &tag, timeout);
			if (got < 0 && errno == EMSGSIZE) {
				printf("skipped %zu\n", len);
				continue;
			}
			if (got < 0)
				return fail("receive");
			if (got == 0)
				break;
			count++;
			if (print)
				printf("%u %zu %016llx\n", tag, len, (unsigned long long)fnv(p, len));
			if (peek)
				ipcchan_ring_release(&r);
			if (count == pause_after) {
				char line[16];
				printf("paused\n");
				fflush(stdout);
				if (fgets(line, sizeof line, stdin) == NULL)
					return 2;
			}
		}
		if (print)
			printf("eos\n");
		else
			printf("%ld\n", count);
		ipcchan_ring_close(&r);
		return 0;
	}

	if (strcmp(mode, "echo") == 0) {
		struct ipcchan_ring w;
		if (out == NULL || open_src(&w, out, IPCCHAN_RING_WRITER) < 0)
			return fail("open -out");
		ipcchan_ring_watch(&w, watch);
		for (;;) {
			const void *p;
			size_t len;
			uint32_t tag;
			int got = ipcchan_ring_peek(&r, &p, &len, &tag, timeout);
			if (got < 0)
				return fail("receive");
			if (got == 0)
				break;
			if (ipcchan_ring_send(&w, tag, p, len, timeout) < 0)
				return fail("send");
			ipcchan_ring_release(&r);
		}
		if (ipcchan_ring_close(&w) < 0)
			return fail("close");
		ipcchan_ring_close(&r);
		return 0;
	}

	if (strcmp(mode, "ping") == 0) {
		struct ipcchan_ring w;
		if (out == NULL || size < 0 || (size_t)size > sizeof buf || open_src(&w, out, IPCCHAN_RING_WRITER) < 0)
			return fail("open -out");
		for (long i = 0; i < n; i++) {
			size_t len;
			if (ipcchan_ring_send(&w, 0, buf, (size_t)size, timeout) < 0)
				return fail("send");
			int got = ipcchan_ring_recv(&r, buf, sizeof buf, &len, NULL, timeout);
			if (got <= 0)
				return fail("receive");
		}
		if (ipcchan_ring_close(&w) < 0)
			return fail("close");
		ipcchan_ring_close(&r);
		printf("done\n");
		return 0;
	}

	if (strcmp(mode, "holdlock") == 0) {
		void *room;
		if (ipcchan_ring_reserve(&r, 8, &room, timeout) < 0)
			return fail("reserve");
		memcpy(room, "torn!!!!", 8);
		printf("locked\n");
		fflush(stdout);
		for (;;)
			pause();
	}

	if (strcmp(mode, "write") == 0) {
		size_t m = ipcchan_ring_max(&r);
		if (max >= 0 && (size_t)max < m)
			m = (size_t)max;
		for (long i = 0; i < n; i++) {
			size_t len = size >= 0 ? (size_t)size : (size_t)((unsigned long)(i * 7919 + id) % (m + 1));
			uint32_t tag = (uint32_t)id << 24 | (uint32_t)i;
			unsigned char *p = buf;
			void *room = NULL;
			if (reserve) {
				if (ipcchan_ring_reserve(&r, len, &room, timeout) < 0)
					return fail("reserve");
				p = room;
			}
			for (size_t j = 0; j < len; j++)
				p[j] = (unsigned char)(j * 31 + (size_t)i + (size_t)id);
			if ((reserve ? ipcchan_ring_commit(&r, tag, len) : ipcchan_ring_send(&r, tag, p, len, timeout)) < 0)
				return fail("send");
		}
		if (ipcchan_ring_close(&r) < 0)
			return fail("close");
		printf("done\n");
		return 0;
	}
	fprintf(stderr, "ring_peer: unknown mode %s\n", mode);
	return 2;
}
