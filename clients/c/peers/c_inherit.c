/*
 * c_inherit KIND NAME: takes the endpoint NAME from IPCCHAN_FILES with
 * ipcchan_inherit (KIND fd), ipcchan_inherit_sysv (sysv) or
 * ipcchan_ring_inherit (ring) and prints what it got: the count and the
 * descriptors, the queue's id, type and flags, or -1 and errno's name.
 */
#include "ipcchan.h" /* first: it defines _GNU_SOURCE */

#include <stdio.h>

static const char *errname(int e) {
	switch (e) {
	case ENOENT: return "ENOENT";
	case EBADMSG: return "EBADMSG";
	case EBADF: return "EBADF";
	case ENOTSUP: return "ENOTSUP";
	case EPROTO: return "EPROTO";
	case EINVAL: return "EINVAL";
	default: return strerror(e);
	}
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: c_inherit fd|sysv|ring NAME\n");
		return 2;
	}
	if (strcmp(argv[1], "fd") == 0) {
		int fds[IPCCHAN_FILES_MAX];
		int n = ipcchan_inherit(argv[2], fds);
		if (n < 0)
			printf("-1 %s\n", errname(errno));
		else
			for (int i = 0; i < n; i++)
				printf(i + 1 < n ? "%d " : "%d\n", fds[i]);
	} else if (strcmp(argv[1], "sysv") == 0) {
		int id, flags;
		long type;
		if (ipcchan_inherit_sysv(argv[2], &id, &type, &flags) < 0)
			printf("-1 %s\n", errname(errno));
		else
			printf("%d %ld %d\n", id, type, flags);
	} else {
		struct ipcchan_ring r;
		if (ipcchan_ring_inherit(&r, argv[2], IPCCHAN_RING_READER) < 0) {
			printf("-1 %s\n", errname(errno));
		} else {
			printf("ring\n");
			ipcchan_ring_close(&r);
		}
	}
	return 0;
}
