/*
 * c_sysv_msgmax: a SysV receiver made while msgmax was 100 meets a message
 * of 150 bytes sent after msgmax was raised to 200. It must take it off
 * the queue and report EMSGSIZE, then receive the next message and the
 * end. It runs in an IPC namespace of its own (unshare(CLONE_NEWIPC)), so
 * that changing msgmax touches nothing else; it prints "skip: WHY" where
 * it may not, then the results, one a line.
 */
#include "ipcchan.h" /* first: it defines _GNU_SOURCE */

#include <sched.h>
#include <stdio.h>

static int set_msgmax(const char *v) {
	int fd = open("/proc/sys/kernel/msgmax", O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, v, strlen(v));
	close(fd);
	return n == (ssize_t)strlen(v) ? 0 : -1;
}

int main(void) {
	if (unshare(CLONE_NEWIPC) < 0) {
		printf("skip: unshare(CLONE_NEWIPC): %s\n", strerror(errno));
		return 0;
	}
	if (set_msgmax("100") < 0) {
		printf("skip: set msgmax: %s\n", strerror(errno));
		return 0;
	}
	int id = msgget(IPC_PRIVATE, 0600);
	struct ipcchan_sysv_receiver r;
	struct ipcchan_sysv_sender s;
	unsigned char big[150] = {0}, buf[256];
	if (id < 0 || ipcchan_sysv_receiver_init(&r, id, 0, 0, 1) < 0 || set_msgmax("200") < 0 ||
	    ipcchan_sysv_sender_init(&s, id, 1) < 0 || ipcchan_sysv_send(&s, 0, big, sizeof big) < 0 ||
	    ipcchan_sysv_send(&s, 0, "after", 5) < 0 || ipcchan_sysv_sender_close(&s) < 0) {
		printf("error: %s\n", strerror(errno));
		return 3;
	}
	for (int i = 0; i < 3; i++) {
		long type = 0;
		size_t len = 0;
		int got = ipcchan_sysv_recv(&r, &type, buf, sizeof buf, &len, 1000);
		if (got < 0)
			printf("%d %s %ld\n", got, errno == EMSGSIZE ? "EMSGSIZE" : strerror(errno), type);
		else
			printf("%d %ld %.*s\n", got, type, (int)len, (const char *)buf);
	}
	ipcchan_sysv_receiver_close(&r);
	msgctl(id, IPC_RMID, NULL);
	return 0;
}
