/*
 * classic: IPC peers written the textbook way, knowing nothing of ipcchan.
 * The Go tests talk to them unchanged (see classic_c_test.go).
 *
 *   fifo-write PATH N        write N 128-byte buffers "record I" to a FIFO
 *   fifo-read PATH           read 128-byte buffers until EOF, print each
 *   sysv-send PATH           ftok(PATH,'Q'), create the queue, send 6
 *                            struct { long mtype; char text[64]; }:
 *                            type 1 "job I", type 2 "cancel I"
 *   sysv-recv PATH TYPE N    receive N messages of TYPE, print "type text"
 *   mq-send NAME             create NAME (8 x 8192 bytes), send 6 full
 *                            8192-byte buffers "msg I" at priority I*3%5
 *   mq-recv NAME N           receive N, print "prio text"
 *   stream-echo PATH         listen on a Unix stream socket, serve one
 *                            client: every 128-byte record back upper-cased
 *   dgram-echo PATH REPLY    bind a Unix datagram socket, answer each
 *                            128-byte datagram to REPLY upper-cased,
 *                            stop after "quit"
 *   shm-count PATH N         ftok(PATH,'S'), create or attach a segment
 *                            holding struct { int pid; int counter; }
 *                            and add 1 to counter N times
 */
#include <ctype.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REC 128

static void die(const char *what) { perror(what); exit(1); }

/* read exactly n bytes; 0 at a clean end of file */
static ssize_t read_full(int fd, char *buf, size_t n) {
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0) die("read");
		if (r == 0) break;
		got += r;
	}
	return got;
}

static void upper(char *s, size_t n) {
	for (size_t i = 0; i < n && s[i]; i++) s[i] = toupper((unsigned char)s[i]);
}

struct message { long mtype; char text[64]; };
struct shared { int pid; int counter; };

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: classic MODE ARGS\n"); return 2; }
	const char *mode = argv[1];

	if (!strcmp(mode, "fifo-write")) {
		int fd = open(argv[2], O_WRONLY);
		if (fd < 0) die("open");
		for (int i = 0; i < atoi(argv[3]); i++) {
			char buf[REC];
			memset(buf, 0, sizeof buf);
			snprintf(buf, sizeof buf, "record %d", i);
			if (write(fd, buf, sizeof buf) != sizeof buf) die("write");
		}
		return close(fd);
	}
	if (!strcmp(mode, "fifo-read")) {
		int fd = open(argv[2], O_RDONLY);
		if (fd < 0) die("open");
		char buf[REC];
		ssize_t n;
		while ((n = read_full(fd, buf, sizeof buf)) == sizeof buf) printf("%.128s\n", buf);
		if (n != 0) { fprintf(stderr, "torn record of %zd bytes\n", n); return 1; }
		return 0;
	}
	if (!strcmp(mode, "sysv-send")) {
		key_t key = ftok(argv[2], 'Q');
		int id = msgget(key, IPC_CREAT | 0600);
		if (id < 0) die("msgget");
		for (int i = 0; i < 6; i++) {
			struct message m;
			memset(&m, 0, sizeof m);
			m.mtype = i % 2 + 1;
			snprintf(m.text, sizeof m.text, "%s %d", m.mtype == 1 ? "job" : "cancel", i);
			if (msgsnd(id, &m, sizeof m.text, 0) < 0) die("msgsnd");
		}
		return 0;
	}
	if (!strcmp(mode, "sysv-recv")) {
		int id = msgget(ftok(argv[2], 'Q'), 0);
		if (id < 0) die("msgget");
		for (int i = 0; i < atoi(argv[4]); i++) {
			struct message m;
			ssize_t n = msgrcv(id, &m, sizeof m.text, atol(argv[3]), 0);
			if (n < 0) die("msgrcv");
			printf("%ld %.64s\n", m.mtype, m.text);
		}
		return 0;
	}
	if (!strcmp(mode, "mq-send")) {
		struct mq_attr attr = { .mq_maxmsg = 8, .mq_msgsize = 8192 };
		mqd_t q = mq_open(argv[2], O_CREAT | O_EXCL | O_WRONLY, 0600, &attr);
		if (q == (mqd_t)-1) die("mq_open");
		for (int i = 0; i < 6; i++) {
			static char buf[8192];
			memset(buf, 0, sizeof buf);
			snprintf(buf, sizeof buf, "msg %d", i);
			if (mq_send(q, buf, sizeof buf, i * 3 % 5) < 0) die("mq_send");
		}
		return mq_close(q);
	}
	if (!strcmp(mode, "mq-recv")) {
		mqd_t q = mq_open(argv[2], O_RDONLY);
		if (q == (mqd_t)-1) die("mq_open");
		struct mq_attr attr;
		mq_getattr(q, &attr);
		char *buf = malloc(attr.mq_msgsize + 1);
		for (int i = 0; i < atoi(argv[3]); i++) {
			unsigned prio;
			ssize_t n = mq_receive(q, buf, attr.mq_msgsize, &prio);
			if (n < 0) die("mq_receive");
			buf[n] = 0;
			printf("%u %s (%zd bytes)\n", prio, buf, n);
		}
		return mq_close(q);
	}
	if (!strcmp(mode, "stream-echo")) {
		struct sockaddr_un addr = { .sun_family = AF_UNIX };
		strncpy(addr.sun_path, argv[2], sizeof addr.sun_path - 1);
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 1) < 0) die("listen");
		printf("ready\n");
		fflush(stdout);
		int c = accept(s, NULL, NULL);
		if (c < 0) die("accept");
		char buf[REC];
		while (read_full(c, buf, sizeof buf) == sizeof buf) {
			upper(buf, sizeof buf);
			if (write(c, buf, sizeof buf) != sizeof buf) die("write");
		}
		close(c);
		unlink(argv[2]);
		return 0;
	}
	if (!strcmp(mode, "dgram-echo")) {
		struct sockaddr_un addr = { .sun_family = AF_UNIX }, reply = { .sun_family = AF_UNIX };
		strncpy(addr.sun_path, argv[2], sizeof addr.sun_path - 1);
		strncpy(reply.sun_path, argv[3], sizeof reply.sun_path - 1);
		int s = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
		printf("ready\n");
		fflush(stdout);
		char buf[REC];
		for (;;) {
			ssize_t n = recv(s, buf, sizeof buf, 0);
			if (n != sizeof buf) { fprintf(stderr, "a %zd-byte datagram\n", n); return 1; }
			if (!strcmp(buf, "quit")) break;
			upper(buf, sizeof buf);
			if (sendto(s, buf, sizeof buf, 0, (struct sockaddr *)&reply, sizeof reply) < 0) die("sendto");
		}
		unlink(argv[2]);
		return 0;
	}
	if (!strcmp(mode, "shm-count")) {
		int id = shmget(ftok(argv[2], 'S'), sizeof(struct shared), IPC_CREAT | 0600);
		if (id < 0) die("shmget");
		struct shared *p = shmat(id, NULL, 0);
		if (p == (void *)-1) die("shmat");
		for (int i = 0; i < atoi(argv[3]); i++) {
			__atomic_fetch_add(&p->counter, 1, __ATOMIC_SEQ_CST);
			__atomic_store_n(&p->pid, getpid(), __ATOMIC_RELAXED);
		}
		return shmdt(p);
	}
	fprintf(stderr, "unknown mode %s\n", mode);
	return 2;
}
