/*
 * shortrec: classic FIFO peers that write short records, one write() each,
 * for a reader that takes each read() as one message. The Go tests talk to
 * them unchanged (see shortrec_test.go).
 *
 *   write PATH MSG            open PATH for writing, write strlen(MSG)
 *                             bytes in one write(), close, exit
 *   write-struct PATH ID TXT  write struct { int id; char text[60]; } but
 *                             only up to TXT's NUL: its tail is not written
 *   read PATH N               read(fd, buf, N) until end of file, printing
 *                             "LEN TEXT" for each read (TEXT up to a NUL)
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rec { int id; char text[60]; };

static void die(const char *what) { perror(what); exit(1); }

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: shortrec MODE PATH ARGS\n"); return 2; }
	const char *mode = argv[1];
	if (!strcmp(mode, "write") && argc == 4) {
		int fd = open(argv[2], O_WRONLY);
		if (fd < 0) die("open");
		size_t n = strlen(argv[3]);
		if (write(fd, argv[3], n) != (ssize_t)n) die("write");
		return close(fd);
	}
	if (!strcmp(mode, "write-struct") && argc == 5) {
		struct rec r;
		r.id = atoi(argv[3]);
		strncpy(r.text, argv[4], sizeof r.text - 1);
		r.text[sizeof r.text - 1] = 0;
		size_t n = offsetof(struct rec, text) + strlen(r.text) + 1;
		int fd = open(argv[2], O_WRONLY);
		if (fd < 0) die("open");
		if (write(fd, &r, n) != (ssize_t)n) die("write");
		return close(fd);
	}
	if (!strcmp(mode, "read") && argc == 4) {
		int fd = open(argv[2], O_RDONLY);
		if (fd < 0) die("open");
		size_t size = atoi(argv[3]);
		char *buf = malloc(size + 1);
		ssize_t n;
		while ((n = read(fd, buf, size)) > 0) {
			buf[n] = 0;
			printf("%zd %s\n", n, buf);
			fflush(stdout);
		}
		if (n < 0) die("read");
		return 0;
	}
	fprintf(stderr, "shortrec: bad arguments\n");
	return 2;
}
