#include "ipcchan.h"
/* A pipeline stage: Go's struct{ ID uint32; Temp float64 } in Celsius on "in", Fahrenheit on "out". */
struct reading { uint32_t id; double temp; };
static const struct ipcchan_field fields[] = {
	IPCCHAN_FIELD(struct reading, id, "ID", IPCCHAN_UINT32),
	IPCCHAN_FIELD(struct reading, temp, "Temp", IPCCHAN_FLOAT64),
};
static const struct ipcchan_type reading_type = IPCCHAN_TYPE(struct reading, fields);

int main(void) {
	struct ipcchan_stream_receiver in;
	struct ipcchan_stream_sender out;
	struct reading r;
	unsigned char buf[64];
	int fd[IPCCHAN_FILES_MAX], got;
	size_t n;
	uint64_t fp;
	if (ipcchan_type_fingerprint(&reading_type, &fp) < 0 ||
	    ipcchan_inherit("in", fd) < 0 || ipcchan_stream_receiver_init(&in, fd[0], "binary-le", fp, 0) < 0 ||
	    ipcchan_inherit("out", fd) < 0 || ipcchan_stream_sender_init(&out, fd[0], "binary-le", fp, 0) < 0)
		return 1;
	while ((got = ipcchan_stream_recv(&in, NULL, buf, sizeof buf, &n, -1)) == 1 &&
	       ipcchan_unpack(&reading_type, IPCCHAN_BINARY_LE, buf, n, &r) == 0) {
		r.temp = r.temp * 9 / 5 + 32;
		if (ipcchan_stream_send(&out, 0, buf, (size_t)ipcchan_pack(&reading_type, IPCCHAN_BINARY_LE, &r, buf, sizeof buf)) < 0)
			return 1;
	}
	return got != 0 || ipcchan_stream_sender_close(&out) < 0;
}
