/*
 * fifo_burst PATH ID N: a short-lived FIFO writer. It opens the FIFO at PATH
 * for writing (waiting for a reader, as open(2) does), writes N whole frames
 * of ipcchan's wire format, one write(2) each, and exits at once. Frame I is
 * the 8-byte header (payload length and tag 0, both uint32 big-endian) and
 * the payload "ID/I". Exit status 0 only if every write was whole.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: fifo_burst PATH ID N\n");
		return 2;
	}
	int n = atoi(argv[3]);
	int fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char frame[8 + 64];
		int len = snprintf(frame + 8, sizeof frame - 8, "%s/%d", argv[2], i);
		uint32_t h[2] = {htonl((uint32_t)len), htonl(0)};
		memcpy(frame, h, 8);
		if (write(fd, frame, 8 + len) != 8 + len) {
			perror("write");
			return 1;
		}
	}
	return 0;
}
