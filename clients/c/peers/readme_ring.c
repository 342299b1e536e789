#include "ipcchan.h"
#include <stdio.h>

/* Prints every record of the ring its Go parent handed over as "jobs". */
int main(void) {
	struct ipcchan_ring r;
	static char buf[1 << 16];
	size_t n;
	uint32_t tag;
	int got;
	if (ipcchan_ring_inherit(&r, "jobs", IPCCHAN_RING_READER) < 0) {
		perror("ipcchan_ring_inherit");
		return 1;
	}
	ipcchan_ring_watch(&r, getppid()); /* a killed parent: EPIPE, not a hang */
	while ((got = ipcchan_ring_recv(&r, buf, sizeof buf, &n, &tag, -1)) == 1)
		printf("tag %u: %.*s\n", tag, (int)n, buf);
	if (got < 0)
		perror("ipcchan_ring_recv");
	ipcchan_ring_close(&r);
	return got < 0;
}
