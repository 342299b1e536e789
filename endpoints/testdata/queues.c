/* A classic C peer for the message-queue interop tests: nothing in it
   knows about ipcchan. Usage:
     queues mqsend NAME N      send "msg-I" with priority I%3 for I in 0..N-1
     queues mqrecv NAME N      receive N messages, print "PRIO TEXT" per line
     queues msgsnd ID N        send struct {long mtype; char text[64]} with
                               mtype 1+I%2 and text "msg-I"
     queues msgrcv ID TYPE N   receive N messages of TYPE, print "TYPE TEXT"
     queues msgput ID TYPE TEXT  send one message of TYPE (a long) */
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>

struct textmsg {
	long mtype;
	char text[64];
};

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	const char *mode = argv[1];
	int n = atoi(argv[argc - 1]);
	if (strcmp(mode, "mqsend") == 0) {
		mqd_t q = mq_open(argv[2], O_WRONLY);
		if (q == (mqd_t)-1) { perror("mq_open"); return 1; }
		for (int i = 0; i < n; i++) {
			char buf[32];
			int len = snprintf(buf, sizeof buf, "msg-%d", i);
			if (mq_send(q, buf, len, i % 3) != 0) { perror("mq_send"); return 1; }
		}
		return mq_close(q);
	}
	if (strcmp(mode, "mqrecv") == 0) {
		mqd_t q = mq_open(argv[2], O_RDONLY);
		if (q == (mqd_t)-1) { perror("mq_open"); return 1; }
		struct mq_attr a;
		mq_getattr(q, &a);
		char *buf = malloc(a.mq_msgsize);
		for (int i = 0; i < n; i++) {
			unsigned prio;
			ssize_t len = mq_receive(q, buf, a.mq_msgsize, &prio);
			if (len < 0) { perror("mq_receive"); return 1; }
			printf("%u %.*s\n", prio, (int)len, buf);
		}
		return mq_close(q);
	}
	if (strcmp(mode, "msgsnd") == 0) {
		int id = atoi(argv[2]);
		for (int i = 0; i < n; i++) {
			struct textmsg m = {.mtype = 1 + i % 2};
			snprintf(m.text, sizeof m.text, "msg-%d", i);
			if (msgsnd(id, &m, strlen(m.text), 0) != 0) { perror("msgsnd"); return 1; }
		}
		return 0;
	}
	if (strcmp(mode, "msgput") == 0 && argc == 5) {
		struct textmsg m = {.mtype = strtol(argv[3], NULL, 10)};
		snprintf(m.text, sizeof m.text, "%s", argv[4]);
		if (msgsnd(atoi(argv[2]), &m, strlen(m.text), 0) != 0) { perror("msgsnd"); return 1; }
		return 0;
	}
	if (strcmp(mode, "msgrcv") == 0 && argc == 5) {
		int id = atoi(argv[2]);
		long type = atol(argv[3]);
		for (int i = 0; i < n; i++) {
			struct textmsg m;
			ssize_t len = msgrcv(id, &m, sizeof m.text, type, 0);
			if (len < 0) { perror("msgrcv"); return 1; }
			printf("%ld %.*s\n", m.mtype, (int)len, m.text);
		}
		return 0;
	}
	return 2;
}
