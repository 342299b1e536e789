/*
 * c_closed: every end of the streams and queues section, used after its
 * close: a second close returns 0, a send or receive fails with EBADF (as
 * the ring's ends do), never EINVAL, which says an argument was wrong. It
 * prints one line per end: KIND CLOSE-AGAIN OP-RESULT ERRNO.
 */
#include "ipcchan.h" /* first: it defines _GNU_SOURCE */

#include <stdio.h>
#include <sys/ipc.h>

static const char *errname(int e) {
	return e == EBADF ? "EBADF" : e == EINVAL ? "EINVAL" : strerror(e);
}

static void line(const char *what, int again, int res) {
	printf("%s %d %d %s\n", what, again, res, res < 0 ? errname(errno) : "-");
}

int main(void) {
	char buf[16];
	size_t n;
	uint32_t tag;
	int p[2], sv[2];
	if (pipe2(p, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;

	struct ipcchan_stream_sender ss;
	struct ipcchan_stream_receiver sr;
	if (ipcchan_stream_sender_init(&ss, p[1], "bytes", 1, 0) < 0 || ipcchan_stream_receiver_init(&sr, p[0], "bytes", 1, 0) < 0)
		return 1;
	ipcchan_stream_sender_close(&ss);
	line("stream-send", ipcchan_stream_sender_close(&ss), ipcchan_stream_send(&ss, 0, "x", 1));
	ipcchan_stream_receiver_close(&sr);
	line("stream-recv", ipcchan_stream_receiver_close(&sr), ipcchan_stream_recv(&sr, &tag, buf, sizeof buf, &n, 0));

	struct ipcchan_packet_sender ps;
	struct ipcchan_packet_receiver pr;
	memset(&ps, 0, sizeof ps);
	memset(&pr, 0, sizeof pr);
	if (ipcchan_packet_sender_init(&ps, sv[1], NULL, 0, 0) < 0 || ipcchan_packet_receiver_init(&pr, sv[0], NULL, 0, 0, 1) < 0)
		return 1;
	ipcchan_packet_sender_close(&ps);
	line("packet-send", ipcchan_packet_sender_close(&ps), ipcchan_packet_send(&ps, 0, "x", 1));
	ipcchan_packet_receiver_close(&pr);
	line("packet-recv", ipcchan_packet_receiver_close(&pr), ipcchan_packet_recv(&pr, &tag, buf, sizeof buf, &n, 0));

	char name[64];
	struct mq_attr a = {0, 4, 64, 0, {0}};
	snprintf(name, sizeof name, "/ipcchan-%d-cclosed", (int)getpid());
	mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
	if (q == (mqd_t)-1)
		return 1;
	mqd_t q2 = mq_open(name, O_RDONLY | O_CLOEXEC);
	mq_unlink(name);
	struct ipcchan_mq_sender ms;
	struct ipcchan_mq_receiver mr;
	unsigned prio;
	if (q2 == (mqd_t)-1 || ipcchan_mq_sender_init(&ms, q) < 0 || ipcchan_mq_receiver_init(&mr, q2, 1) < 0)
		return 1;
	ipcchan_mq_sender_close(&ms);
	line("mq-send", ipcchan_mq_sender_close(&ms), ipcchan_mq_send(&ms, 0, "x", 1));
	ipcchan_mq_receiver_close(&mr);
	line("mq-recv", ipcchan_mq_receiver_close(&mr), ipcchan_mq_recv(&mr, &prio, buf, sizeof buf, &n, 0));

	int id = msgget(IPC_PRIVATE, 0600);
	if (id < 0)
		return 1;
	struct ipcchan_sysv_sender ys;
	struct ipcchan_sysv_receiver yr;
	long type;
	if (ipcchan_sysv_sender_init(&ys, id, 1) < 0 || ipcchan_sysv_receiver_init(&yr, id, 0, 0, 1) < 0)
		return 1;
	ipcchan_sysv_sender_close(&ys);
	line("sysv-send", ipcchan_sysv_sender_close(&ys), ipcchan_sysv_send(&ys, 0, "x", 1));
	ipcchan_sysv_receiver_close(&yr);
	line("sysv-recv", ipcchan_sysv_receiver_close(&yr), ipcchan_sysv_recv(&yr, &type, buf, sizeof buf, &n, 0));
	msgctl(id, IPC_RMID, NULL);
	return 0;
}
