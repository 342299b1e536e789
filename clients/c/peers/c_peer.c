/*
 * c_peer: the C end of the cross-process tests, on every transport of
 * ipcchan.h but the ring.
 *
 *   c_peer send|recv TRANSPORT [options]
 *
 * TRANSPORT: stream (IPCCHAN_FILES entry "ch"), fifo:PATH, unix:PATH,
 * tcp:HOST:PORT, listen:PATH (a Unix stream socket it listens on, printing
 * "listening", and the one connection it accepts), packet ("ch": unixgram
 * or seqpacket), unixgram:PATH
 * (connect), seqpacket:PATH (connect), mq:NAME, sysv ("ch", by
 * ipcchan_inherit_sysv), sysvid:ID:TYPE.
 *
 * A sender sends -n messages: message i has length
 * len(i) = i == 0 ? 0 : i == n-1 ? max : (i * 7919) % (max + 1) and bytes
 * (i * 131 + j * 7) & 0xff, and tag -tag (a number, or "seq": i % 1000,
 * or "seq1": 1 + i % 5), then closes. With -after K it prints "ready" after
 * K messages and then stops (-partial: after writing half a frame) until
 * it is killed.
 *
 * A receiver prints one line per message, "TAG LEN FNV64", and "end" at
 * the end; an error prints "error NAME TAG LEN" and goes on after
 * EMSGSIZE and EBADMSG, else exits 3.
 *
 * Options: -n N, -max M, -codec NAME, -desc DESCRIPTION (fingerprint),
 * -nohs (streams: no hello), -hs (packets: a hello), -shared, -senders N,
 * -timeout MS, -watch PID, -cap BYTES (receive buffer), -limit BYTES,
 * -sigs (a SIGUSR1 handler without SA_RESTART: every blocking call the
 * signals interrupt fails with EINTR, which the library must absorb).
 */
#include "ipcchan.h" /* first: it defines _GNU_SOURCE */

#include <stdio.h>
#include <sys/socket.h>

static const char *errname(int e) {
	switch (e) {
	case EPROTO: return "EPROTO";
	case EMSGSIZE: return "EMSGSIZE";
	case EBADMSG: return "EBADMSG";
	case ENODATA: return "ENODATA";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ESRCH: return "ESRCH";
	case EPIPE: return "EPIPE";
	case EINVAL: return "EINVAL";
	case EIDRM: return "EIDRM";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	default: return strerror(e);
	}
}

static void die(const char *what) {
	printf("error %s %s\n", errname(errno), what);
	fflush(stdout);
	exit(3);
}

static size_t msglen(long i, long n, size_t max) {
	if (i == 0)
		return 0;
	if (i == n - 1)
		return max;
	return (size_t)((unsigned long)i * 7919u % (max + 1));
}

static void fill(unsigned char *p, long i, size_t len) {
	for (size_t j = 0; j < len; j++)
		p[j] = (unsigned char)((unsigned long)i * 131u + j * 7u);
}

static uint64_t fnv(const unsigned char *p, size_t n) {
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static unsigned long tagof(const char *mode, long i) {
	if (strcmp(mode, "seq") == 0)
		return (unsigned long)(i % 1000);
	if (strcmp(mode, "seq1") == 0)
		return (unsigned long)(1 + i % 5);
	return strtoul(mode, NULL, 10);
}

static void on_signal(int sig) {
	(void)sig;
}

static void ready(void) {
	printf("ready\n");
	fflush(stdout);
}

int main(int argc, char **argv) {
	if (argc < 3)
		return 2;
	const char *role = argv[1], *tr = argv[2], *codec = "bytes", *desc = "[]uint8", *tagmode = "0";
	long n = 100, senders = 1, after = -1, timeout = 10000;
	size_t max = 1000, cap = 1 << 20;
	unsigned long limit = 0;
	unsigned flags = 0;
	int partial = 0;
	pid_t watch = 0;
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
		if (strcmp(a, "-nohs") == 0) flags |= IPCCHAN_NO_HANDSHAKE;
		else if (strcmp(a, "-hs") == 0) flags |= IPCCHAN_HANDSHAKE;
		else if (strcmp(a, "-shared") == 0) flags |= IPCCHAN_SHARED;
		else if (strcmp(a, "-partial") == 0) partial = 1;
		else if (strcmp(a, "-sigs") == 0) {
			struct sigaction sa;
			memset(&sa, 0, sizeof sa);
			sa.sa_handler = on_signal; /* no SA_RESTART */
			sigaction(SIGUSR1, &sa, NULL);
			printf("signals\n"); /* the handler is in place: signal away */
			fflush(stdout);
		}
		else {
			i++;
			if (strcmp(a, "-n") == 0) n = atol(v);
			else if (strcmp(a, "-max") == 0) max = (size_t)atol(v);
			else if (strcmp(a, "-codec") == 0) codec = v;
			else if (strcmp(a, "-desc") == 0) desc = v;
			else if (strcmp(a, "-tag") == 0) tagmode = v;
			else if (strcmp(a, "-senders") == 0) senders = atol(v);
			else if (strcmp(a, "-after") == 0) after = atol(v);
			else if (strcmp(a, "-timeout") == 0) timeout = atol(v);
			else if (strcmp(a, "-watch") == 0) watch = (pid_t)atol(v);
			else if (strcmp(a, "-cap") == 0) cap = (size_t)atol(v);
			else if (strcmp(a, "-limit") == 0) limit = strtoul(v, NULL, 10);
			else return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0); /* each line as it comes: the tests wait for them */
	uint64_t fp = ipcchan_fingerprint(desc);
	unsigned char *buf = malloc(cap > max ? cap : max);
	if (buf == NULL)
		die("malloc");
	int sending = strcmp(role, "send") == 0;

	/* What the transport is. */
	enum { STREAM, PACKET, MQ, SYSV } kind;
	int fd = -1;
	int fds[IPCCHAN_FILES_MAX];
	mqd_t q = (mqd_t)-1;
	int sysv_id = 0, sysv_flg = 0;
	long sysv_type = 0;
	if (strcmp(tr, "stream") == 0 || strcmp(tr, "packet") == 0) {
		if (ipcchan_inherit("ch", fds) != 1)
			die("inherit");
		fd = fds[0];
		kind = tr[0] == 's' ? STREAM : PACKET;
	} else if (strncmp(tr, "fifo:", 5) == 0) {
		if ((fd = ipcchan_fifo_open(tr + 5, sending)) < 0)
			die("fifo");
		kind = STREAM;
	} else if (strncmp(tr, "unix:", 5) == 0) {
		if ((fd = ipcchan_unix_connect(tr + 5, SOCK_STREAM)) < 0)
			die("connect");
		kind = STREAM;
	} else if (strncmp(tr, "listen:", 7) == 0) {
		int l = ipcchan_unix_listen(tr + 7, SOCK_STREAM);
		if (l < 0)
			die("listen");
		printf("listening\n");
		while ((fd = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0 && errno == EINTR)
			;
		if (fd < 0)
			die("accept");
		close(l);
		unlink(tr + 7);
		kind = STREAM;
	} else if (strncmp(tr, "tcp:", 4) == 0) {
		char host[256];
		const char *colon = strrchr(tr + 4, ':');
		if (colon == NULL || (size_t)(colon - tr - 4) >= sizeof host)
			return 2;
		memcpy(host, tr + 4, (size_t)(colon - tr - 4));
		host[colon - tr - 4] = '\0';
		if ((fd = ipcchan_tcp_connect(host, colon + 1)) < 0)
			die("connect");
		kind = STREAM;
	} else if (strncmp(tr, "unixgram:", 9) == 0 || strncmp(tr, "seqpacket:", 10) == 0) {
		int dgram = tr[0] == 'u';
		if ((fd = ipcchan_unix_connect(strchr(tr, ':') + 1, dgram ? SOCK_DGRAM : SOCK_SEQPACKET)) < 0)
			die("connect");
		kind = PACKET;
	} else if (strncmp(tr, "mq:", 3) == 0) {
		if ((q = mq_open(tr + 3, sending ? O_WRONLY : O_RDONLY)) == (mqd_t)-1)
			die("mq_open");
		kind = MQ;
	} else if (strcmp(tr, "sysv") == 0) {
		if (ipcchan_inherit_sysv("ch", &sysv_id, &sysv_type, &sysv_flg) < 0)
			die("inherit_sysv");
		kind = SYSV;
	} else if (strncmp(tr, "sysvid:", 7) == 0) {
		if (sscanf(tr + 7, "%d:%ld", &sysv_id, &sysv_type) != 2)
			return 2;
		kind = SYSV;
	} else {
		return 2;
	}

	if (sending) {
		struct ipcchan_stream_sender ss = {0};
		struct ipcchan_packet_sender ps = {0};
		struct ipcchan_mq_sender ms = {0};
		struct ipcchan_sysv_sender vs = {0};
		int r = 0;
		switch (kind) {
		case STREAM: r = ipcchan_stream_sender_init(&ss, fd, codec, fp, flags); break;
		case PACKET: r = ipcchan_packet_sender_init(&ps, fd, codec, fp, flags); break;
		case MQ: r = ipcchan_mq_sender_init(&ms, q); break;
		case SYSV: r = ipcchan_sysv_sender_init(&vs, sysv_id, sysv_type); break;
		}
		if (r < 0)
			die("init");
		for (long i = 0; i < n; i++) {
			if (i == after) {
				if (partial && kind == STREAM) {
					/* Half a frame: the header of 1000 bytes and 10 of them. */
					unsigned char h[18] = {0, 0, 0x03, 0xe8, 0, 0, 0, 1};
					if (write(fd, h, sizeof h) != (ssize_t)sizeof h)
						die("write");
				}
				ready();
				for (;;)
					pause();
			}
			size_t len = msglen(i, n, max);
			fill(buf, i, len);
			unsigned long tag = tagof(tagmode, i);
			switch (kind) {
			case STREAM: r = ipcchan_stream_send(&ss, (uint32_t)tag, buf, len); break;
			case PACKET: r = ipcchan_packet_send(&ps, (uint32_t)tag, buf, len); break;
			case MQ: r = ipcchan_mq_send(&ms, (unsigned)tag, buf, len); break;
			case SYSV: r = ipcchan_sysv_send(&vs, (long)tag, buf, len); break;
			}
			if (r < 0) {
				printf("error %s %ld %zu\n", errname(errno), i, len);
				fflush(stdout);
				exit(3);
			}
		}
		switch (kind) {
		case STREAM: r = ipcchan_stream_sender_close(&ss); break;
		case PACKET: r = ipcchan_packet_sender_close(&ps); break;
		case MQ: r = ipcchan_mq_sender_close(&ms); break;
		case SYSV: r = ipcchan_sysv_sender_close(&vs); break;
		}
		if (r < 0)
			die("close");
		printf("sent\n");
		return 0;
	}

	struct ipcchan_stream_receiver *sr = NULL;
	struct ipcchan_packet_receiver pr = {0};
	struct ipcchan_mq_receiver mr = {0};
	struct ipcchan_sysv_receiver vr = {0};
	int r = 0, peer = -1;
	if (watch > 0 && (peer = ipcchan_pidfd(watch)) < 0)
		die("pidfd");
	switch (kind) {
	case STREAM:
		sr = malloc(sizeof *sr);
		if (sr == NULL)
			die("malloc");
		r = ipcchan_stream_receiver_init(sr, fd, codec, fp, flags);
		if (r == 0) {
			sr->peer = peer;
			if (limit > 0)
				sr->limit = (uint32_t)limit;
		}
		break;
	case PACKET:
		r = ipcchan_packet_receiver_init(&pr, fd, codec, fp, flags, (int)senders);
		pr.peer = peer;
		break;
	case MQ:
		r = ipcchan_mq_receiver_init(&mr, q, (int)senders);
		mr.peer = peer;
		break;
	case SYSV:
		r = ipcchan_sysv_receiver_init(&vr, sysv_id, sysv_type, sysv_flg, (int)senders);
		vr.peer = peer;
		break;
	}
	if (r < 0)
		die("init");
	for (;;) {
		uint32_t tag32 = 0;
		unsigned prio = 0;
		long type = 0;
		unsigned long long tag = 0;
		size_t len = 0;
		switch (kind) {
		case STREAM: r = ipcchan_stream_recv(sr, &tag32, buf, cap, &len, (int)timeout); tag = tag32; break;
		case PACKET: r = ipcchan_packet_recv(&pr, &tag32, buf, cap, &len, (int)timeout); tag = tag32; break;
		case MQ: r = ipcchan_mq_recv(&mr, &prio, buf, cap, &len, (int)timeout); tag = prio; break;
		case SYSV: r = ipcchan_sysv_recv(&vr, &type, buf, cap, &len, (int)timeout); tag = (unsigned long long)type; break;
		}
		if (r == 0) {
			printf("end\n");
			break;
		}
		if (r < 0) {
			int e = errno;
			printf("error %s %llu %zu\n", errname(e), tag, len);
			fflush(stdout);
			if (e == EMSGSIZE || e == EBADMSG)
				continue;
			exit(3);
		}
		printf("%llu %zu %016llx\n", tag, len, (unsigned long long)fnv(buf, len));
	}
	switch (kind) {
	case STREAM: r = ipcchan_stream_receiver_close(sr); free(sr); break;
	case PACKET: r = ipcchan_packet_receiver_close(&pr); break;
	case MQ: r = ipcchan_mq_receiver_close(&mr); break;
	case SYSV: r = ipcchan_sysv_receiver_close(&vr); break;
	}
	free(buf);
	return r < 0 ? 3 : 0;
}
