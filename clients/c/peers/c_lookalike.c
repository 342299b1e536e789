/*
 * c_lookalike QUEUE: sends on a POSIX (mq:NAME) or SysV (sysvid:ID:TYPE)
 * queue the values that look like the end-of-stream marker or its escape
 * (PROTOCOL.md §7), then one whose escaped form does not fit the queue's
 * messages (printing "refused EMSGSIZE"), then closes ("sent").
 */
#include "ipcchan.h" /* first: it defines _GNU_SOURCE */

#include <stdio.h>

int main(int argc, char **argv) {
	static const char eos[] = IPCCHAN_QUEUE_EOS;
	unsigned char v[5][32], big[9000];
	size_t n[5] = {16, 16, 18, 15, 20};
	memcpy(v[0], eos, 16);
	memcpy(v[1], eos, 15), v[1][15] = 2;
	memcpy(v[2], eos, 15), v[2][15] = 2, v[2][16] = 'a', v[2][17] = 'b';
	memcpy(v[3], eos, 15);
	memcpy(v[4], eos, 16), memcpy(v[4] + 16, "tail", 4);
	memcpy(big, eos, 16);
	if (argc != 2)
		return 2;
	struct ipcchan_mq_sender mq = {0};
	struct ipcchan_sysv_sender sv = {0};
	int posix = strncmp(argv[1], "mq:", 3) == 0, id;
	long type;
	if (posix) {
		mqd_t q = mq_open(argv[1] + 3, O_WRONLY);
		if (q == (mqd_t)-1 || ipcchan_mq_sender_init(&mq, q) < 0)
			return 3;
	} else if (sscanf(argv[1], "sysvid:%d:%ld", &id, &type) != 2 || ipcchan_sysv_sender_init(&sv, id, type) < 0) {
		return 3;
	}
	for (int i = 0; i < 5; i++) {
		if ((posix ? ipcchan_mq_send(&mq, 0, v[i], n[i]) : ipcchan_sysv_send(&sv, 0, v[i], n[i])) < 0) {
			printf("error %d\n", errno);
			return 3;
		}
	}
	/* The largest message fits as it is, not escaped: refused whole. */
	size_t max = posix ? mq.msgsize : sv.max;
	int r = posix ? ipcchan_mq_send(&mq, 0, big, max) : ipcchan_sysv_send(&sv, 0, big, max);
	printf(r < 0 && errno == EMSGSIZE ? "refused EMSGSIZE\n" : "sent whole: %d\n", r);
	if ((posix ? ipcchan_mq_sender_close(&mq) : ipcchan_sysv_sender_close(&sv)) < 0)
		return 3;
	printf("sent\n");
	return 0;
}
