/*
 * c_noalloc MQNAME: counts the allocations of the message path. Built with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc, it makes a sender and a
 * receiver on each transport (a pipe with the hello, a unixgram and a
 * seqpacket socket pair with the hello, the POSIX queue MQNAME, which it
 * creates and removes, a private SysV queue), then sends and receives 100
 * messages with a timeout while counting, and prints
 * "TRANSPORT allocations N" for each.
 */
#include "ipcchan.h" /* first: it defines _GNU_SOURCE */

#include <stdio.h>

static long allocations;
static int counting;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) {
	allocations += counting;
	return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size) {
	allocations += counting;
	return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
	allocations += counting;
	return __real_realloc(p, n);
}

static unsigned char out[100], in[256];

static void report(const char *name) {
	printf("%s allocations %ld\n", name, allocations);
	allocations = 0;
}

static int fail(const char *what) {
	printf("error %s: %s\n", what, strerror(errno));
	return 3;
}

int main(int argc, char **argv) {
	static struct ipcchan_stream_receiver sr;
	struct ipcchan_stream_sender ss;
	struct ipcchan_packet_sender ps;
	struct ipcchan_packet_receiver pr;
	struct ipcchan_mq_sender ms;
	struct ipcchan_mq_receiver mr;
	struct ipcchan_sysv_sender vs;
	struct ipcchan_sysv_receiver vr;
	uint64_t fp = ipcchan_fingerprint("[]uint8");
	size_t len;
	uint32_t tag;
	if (argc != 2)
		return 2;

	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0 || ipcchan_stream_sender_init(&ss, p[1], "bytes", fp, 0) < 0 ||
	    ipcchan_stream_receiver_init(&sr, p[0], "bytes", fp, 0) < 0)
		return fail("pipe");
	counting = 1;
	for (int i = 0; i < 100; i++)
		if (ipcchan_stream_send(&ss, (uint32_t)i, out, sizeof out) < 0 ||
		    ipcchan_stream_recv(&sr, &tag, in, sizeof in, &len, 1000) != 1)
			return fail("pipe message");
	counting = 0;
	ipcchan_stream_sender_close(&ss);
	ipcchan_stream_receiver_close(&sr);
	report("pipe");

	int types[2] = {SOCK_DGRAM, SOCK_SEQPACKET};
	for (int k = 0; k < 2; k++) {
		int sv[2];
		if (socketpair(AF_UNIX, types[k] | SOCK_CLOEXEC, 0, sv) < 0 ||
		    ipcchan_packet_sender_init(&ps, sv[0], "bytes", fp, IPCCHAN_HANDSHAKE) < 0 ||
		    ipcchan_packet_receiver_init(&pr, sv[1], "bytes", fp, IPCCHAN_HANDSHAKE, 1) < 0)
			return fail("socketpair");
		counting = 1;
		for (int i = 0; i < 100; i++)
			if (ipcchan_packet_send(&ps, (uint32_t)i, out, sizeof out) < 0 ||
			    ipcchan_packet_recv(&pr, &tag, in, sizeof in, &len, 1000) != 1)
				return fail("packet message");
		counting = 0;
		ipcchan_packet_sender_close(&ps);
		ipcchan_packet_receiver_close(&pr);
		report(k == 0 ? "unixgram" : "seqpacket");
	}

	struct mq_attr a;
	memset(&a, 0, sizeof a);
	a.mq_maxmsg = 4;
	a.mq_msgsize = 128;
	mqd_t qs = mq_open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
	mqd_t qr = mq_open(argv[1], O_RDONLY | O_CLOEXEC);
	mq_unlink(argv[1]);
	if (qs == (mqd_t)-1 || qr == (mqd_t)-1 || ipcchan_mq_sender_init(&ms, qs) < 0 || ipcchan_mq_receiver_init(&mr, qr, 1) < 0)
		return fail("mq");
	counting = 1;
	for (int i = 0; i < 100; i++) {
		unsigned prio;
		if (ipcchan_mq_send(&ms, 1, out, sizeof out) < 0 || ipcchan_mq_recv(&mr, &prio, in, sizeof in, &len, 1000) != 1)
			return fail("mq message");
	}
	counting = 0;
	ipcchan_mq_sender_close(&ms);
	ipcchan_mq_receiver_close(&mr);
	report("posix");

	int id = msgget(IPC_PRIVATE, 0600);
	if (id < 0 || ipcchan_sysv_sender_init(&vs, id, 1) < 0 || ipcchan_sysv_receiver_init(&vr, id, 0, 0, 1) < 0)
		return fail("sysv");
	counting = 1;
	for (int i = 0; i < 100; i++) {
		long type;
		if (ipcchan_sysv_send(&vs, 0, out, sizeof out) < 0 || ipcchan_sysv_recv(&vr, &type, in, sizeof in, &len, 1000) != 1)
			return fail("sysv message");
	}
	counting = 0;
	ipcchan_sysv_sender_close(&vs);
	ipcchan_sysv_receiver_close(&vr);
	msgctl(id, IPC_RMID, NULL);
	report("sysv");
	return 0;
}
