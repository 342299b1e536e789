/*
 * c_types: the C side of the fingerprint and codec tests. For a dozen C
 * structs described with ipcchan.h it prints, one line per shape:
 *
 *   NAME DESCRIPTION FINGERPRINT BINARY-LE BINARY-BE CSTRUCT
 *
 * (hex payloads of a fixed sample value, "-" where the codec does not
 * apply; tab-separated), then the literal descriptions' fingerprints. With arguments
 * "roundtrip NAME CODEC HEX" it unpacks HEX into the struct and packs it
 * again, printing the hex (or "error ERRNO").
 */
#include "ipcchan.h" /* first: it defines _GNU_SOURCE */

#include <stdio.h>

struct vec { uint32_t id; double temp; };
static const struct ipcchan_field vec_f[] = {
	IPCCHAN_FIELD(struct vec, id, "ID", IPCCHAN_UINT32),
	IPCCHAN_FIELD(struct vec, temp, "Temp", IPCCHAN_FLOAT64),
};
static const struct ipcchan_type vec_t = IPCCHAN_TYPE(struct vec, vec_f);

struct blank { int32_t pad; uint8_t x; };
static const struct ipcchan_field blank_f[] = {
	IPCCHAN_FIELD(struct blank, pad, "_", IPCCHAN_INT32),
	IPCCHAN_FIELD(struct blank, x, "X", IPCCHAN_UINT8),
};
static const struct ipcchan_type blank_t = IPCCHAN_TYPE(struct blank, blank_f);

struct scalars {
	_Bool b; int8_t i8; int16_t i16; int32_t i32; int64_t i64;
	uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; float f32; double f64;
};
static const struct ipcchan_field scalars_f[] = {
	IPCCHAN_FIELD(struct scalars, b, "B", IPCCHAN_BOOL),
	IPCCHAN_FIELD(struct scalars, i8, "I8", IPCCHAN_INT8),
	IPCCHAN_FIELD(struct scalars, i16, "I16", IPCCHAN_INT16),
	IPCCHAN_FIELD(struct scalars, i32, "I32", IPCCHAN_INT32),
	IPCCHAN_FIELD(struct scalars, i64, "I64", IPCCHAN_INT64),
	IPCCHAN_FIELD(struct scalars, u8, "U8", IPCCHAN_UINT8),
	IPCCHAN_FIELD(struct scalars, u16, "U16", IPCCHAN_UINT16),
	IPCCHAN_FIELD(struct scalars, u32, "U32", IPCCHAN_UINT32),
	IPCCHAN_FIELD(struct scalars, u64, "U64", IPCCHAN_UINT64),
	IPCCHAN_FIELD(struct scalars, f32, "F32", IPCCHAN_FLOAT32),
	IPCCHAN_FIELD(struct scalars, f64, "F64", IPCCHAN_FLOAT64),
};
static const struct ipcchan_type scalars_t = IPCCHAN_TYPE(struct scalars, scalars_f);

struct arrays { float v[3]; int16_t n[2]; };
static const struct ipcchan_field arrays_f[] = {
	IPCCHAN_ARRAY(struct arrays, v, "V", IPCCHAN_FLOAT32),
	IPCCHAN_ARRAY(struct arrays, n, "N", IPCCHAN_INT16),
};
static const struct ipcchan_type arrays_t = IPCCHAN_TYPE(struct arrays, arrays_f);

struct hdr { uint16_t len; uint8_t kind; };
static const struct ipcchan_field hdr_f[] = {
	IPCCHAN_FIELD(struct hdr, len, "Len", IPCCHAN_UINT16),
	IPCCHAN_FIELD(struct hdr, kind, "Kind", IPCCHAN_UINT8),
};
static const struct ipcchan_type hdr_t = IPCCHAN_TYPE(struct hdr, hdr_f);
struct nested { struct hdr hdr; uint32_t body[4]; };
static const struct ipcchan_field nested_f[] = {
	IPCCHAN_STRUCT_FIELD(struct nested, hdr, "Hdr", &hdr_t),
	IPCCHAN_ARRAY(struct nested, body, "Body", IPCCHAN_UINT32),
};
static const struct ipcchan_type nested_t = IPCCHAN_TYPE(struct nested, nested_f);

struct point { int32_t x, y; };
static const struct ipcchan_field point_f[] = {
	IPCCHAN_FIELD(struct point, x, "X", IPCCHAN_INT32),
	IPCCHAN_FIELD(struct point, y, "Y", IPCCHAN_INT32),
};
static const struct ipcchan_type point_t = IPCCHAN_TYPE(struct point, point_f);
struct points { struct point p[2]; uint8_t count; };
static const struct ipcchan_field points_f[] = {
	IPCCHAN_STRUCT_ARRAY(struct points, p, "P", &point_t),
	IPCCHAN_FIELD(struct points, count, "Count", IPCCHAN_UINT8),
};
static const struct ipcchan_type points_t = IPCCHAN_TYPE(struct points, points_f);

struct chars { int32_t id; char name[8]; };
static const struct ipcchan_field chars_f[] = {
	IPCCHAN_FIELD(struct chars, id, "ID", IPCCHAN_INT32),
	IPCCHAN_CHARS_FIELD(struct chars, name, "Name"),
};
static const struct ipcchan_type chars_t = IPCCHAN_TYPE(struct chars, chars_f);

struct reading { int32_t id; double value; char unit[8]; };
static const struct ipcchan_field reading_f[] = {
	IPCCHAN_FIELD(struct reading, id, "ID", IPCCHAN_INT32),
	IPCCHAN_FIELD(struct reading, value, "Value", IPCCHAN_FLOAT64),
	IPCCHAN_CSTRING_FIELD(struct reading, unit, "Unit"),
};
static const struct ipcchan_type reading_t = IPCCHAN_TYPE(struct reading, reading_f);

struct flags { _Bool flags[3]; int64_t t; };
static const struct ipcchan_field flags_f[] = {
	IPCCHAN_ARRAY(struct flags, flags, "Flags", IPCCHAN_BOOL),
	IPCCHAN_FIELD(struct flags, t, "T", IPCCHAN_INT64),
};
static const struct ipcchan_type flags_t = IPCCHAN_TYPE(struct flags, flags_f);

struct deep_b { uint64_t c; };
static const struct ipcchan_field deep_b_f[] = {IPCCHAN_FIELD(struct deep_b, c, "C", IPCCHAN_UINT64)};
static const struct ipcchan_type deep_b_t = IPCCHAN_TYPE(struct deep_b, deep_b_f);
struct deep_a { struct deep_b b; int8_t d; };
static const struct ipcchan_field deep_a_f[] = {
	IPCCHAN_STRUCT_FIELD(struct deep_a, b, "B", &deep_b_t),
	IPCCHAN_FIELD(struct deep_a, d, "D", IPCCHAN_INT8),
};
static const struct ipcchan_type deep_a_t = IPCCHAN_TYPE(struct deep_a, deep_a_f);
struct deep { struct deep_a a; uint16_t e; };
static const struct ipcchan_field deep_f[] = {
	IPCCHAN_STRUCT_FIELD(struct deep, a, "A", &deep_a_t),
	IPCCHAN_FIELD(struct deep, e, "E", IPCCHAN_UINT16),
};
static const struct ipcchan_type deep_t = IPCCHAN_TYPE(struct deep, deep_f);

struct padded { uint8_t a; uint64_t b; uint8_t c; uint32_t d; };
static const struct ipcchan_field padded_f[] = {
	IPCCHAN_FIELD(struct padded, a, "A", IPCCHAN_UINT8),
	IPCCHAN_FIELD(struct padded, b, "B", IPCCHAN_UINT64),
	IPCCHAN_FIELD(struct padded, c, "C", IPCCHAN_UINT8),
	IPCCHAN_FIELD(struct padded, d, "D", IPCCHAN_UINT32),
};
static const struct ipcchan_type padded_t = IPCCHAN_TYPE(struct padded, padded_f);

struct gap { uint16_t a; uint8_t pad[2]; uint32_t b; };
static const struct ipcchan_field gap_f[] = {
	IPCCHAN_FIELD(struct gap, a, "A", IPCCHAN_UINT16),
	IPCCHAN_ARRAY(struct gap, pad, "_", IPCCHAN_UINT8),
	IPCCHAN_FIELD(struct gap, b, "B", IPCCHAN_UINT32),
};
static const struct ipcchan_type gap_t = IPCCHAN_TYPE(struct gap, gap_f);

/* The shapes, each with its sample value. */
static struct vec vec_v = {7, -21.5};
static struct blank blank_v = {0x55555555, 200}; /* the blank field is sent as zeros */
static struct scalars scalars_v = {1, -8, -1600, -320000, -6400000000LL, 8, 1600, 3200000000u, 6400000000000000000ull, 1.5f, -2.25};
static struct arrays arrays_v = {{1.0f, -2.0f, 0.5f}, {-1, 32767}};
static struct nested nested_v = {{513, 9}, {1, 2, 0xdeadbeef, 4}};
static struct points points_v = {{{-1, 2}, {3, -4}}, 2};
static struct chars chars_v = {42, {'a', 'b', 0, 'x', 'y', 'z', 0, 1}};
static struct reading reading_v = {3, 22.5, "degC"};
static struct flags flags_v = {{1, 0, 1}, -1};
static struct deep deep_v = {{{0x0102030405060708ull}, -3}, 65535};
static struct padded padded_v = {1, 2, 3, 4};
static struct gap gap_v = {0x1234, {9, 9}, 0x56789abc};

struct shape {
	const char *name;
	const struct ipcchan_type *t;
	void *v;
};
static const struct shape shapes[] = {
	{"vec", &vec_t, &vec_v}, {"blank", &blank_t, &blank_v}, {"scalars", &scalars_t, &scalars_v},
	{"arrays", &arrays_t, &arrays_v}, {"nested", &nested_t, &nested_v}, {"points", &points_t, &points_v},
	{"chars", &chars_t, &chars_v}, {"reading", &reading_t, &reading_v}, {"flags", &flags_t, &flags_v},
	{"deep", &deep_t, &deep_v}, {"padded", &padded_t, &padded_v}, {"gap", &gap_t, &gap_v},
};

static void hex(const unsigned char *p, ssize_t n) {
	if (n < 0) {
		printf("\t-");
		return;
	}
	putchar('\t');
	for (ssize_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	if (n == 0)
		putchar('.');
}

int main(int argc, char **argv) {
	unsigned char out[256], in[256];
	char desc[IPCCHAN_DESCRIPTION_MAX];
	if (argc == 5 && strcmp(argv[1], "roundtrip") == 0) {
		for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
			if (strcmp(shapes[i].name, argv[2]) != 0)
				continue;
			enum ipcchan_codec c = strcmp(argv[3], "binary-le") == 0 ? IPCCHAN_BINARY_LE
			                      : strcmp(argv[3], "binary-be") == 0 ? IPCCHAN_BINARY_BE : IPCCHAN_CSTRUCT;
			size_t n = strlen(argv[4]) / 2;
			for (size_t j = 0; j < n && j < sizeof in; j++)
				sscanf(argv[4] + 2 * j, "%2hhx", &in[j]);
			unsigned char value[256];
			memset(value, 0xAA, sizeof value);
			if (ipcchan_unpack(shapes[i].t, c, in, n, value) < 0) {
				printf("error %d\n", errno);
				return 0;
			}
			ssize_t m = ipcchan_pack(shapes[i].t, c, value, out, sizeof out);
			if (m < 0) {
				printf("error %d\n", errno);
				return 0;
			}
			hex(out, m);
			putchar('\n');
			return 0;
		}
		return 2;
	}
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		const struct shape *s = &shapes[i];
		uint64_t fp;
		if (ipcchan_describe(s->t, desc, sizeof desc) < 0 || ipcchan_type_fingerprint(s->t, &fp) < 0) {
			printf("%s error %d\n", s->name, errno);
			continue;
		}
		printf("%s\t%s\t%016llx", s->name, desc, (unsigned long long)fp);
		hex(out, ipcchan_pack(s->t, IPCCHAN_BINARY_LE, s->v, out, sizeof out));
		hex(out, ipcchan_pack(s->t, IPCCHAN_BINARY_BE, s->v, out, sizeof out));
		hex(out, ipcchan_pack(s->t, IPCCHAN_CSTRUCT, s->v, out, sizeof out));
		putchar('\n');
	}
	const char *literal[] = {"[]uint8", "string", "int64", "[4]float32", "map[string]int"};
	for (size_t i = 0; i < sizeof literal / sizeof literal[0]; i++)
		printf("literal %s %016llx\n", literal[i], (unsigned long long)ipcchan_fingerprint(literal[i]));
	/* Refusals: a description that does not fit, a field outside the struct. */
	char small[8];
	int r = ipcchan_describe(&vec_t, small, sizeof small);
	printf("small %d %s\n", r, r < 0 && errno == ERANGE ? "ERANGE" : "?");
	static const struct ipcchan_field bad_f[] = {{"X", IPCCHAN_UINT64, 4, 0, NULL}};
	static const struct ipcchan_type bad_t = {bad_f, 1, 8};
	uint64_t fp;
	r = ipcchan_type_fingerprint(&bad_t, &fp);
	printf("outside %d %s\n", r, r < 0 && errno == EINVAL ? "EINVAL" : "?");
	struct reading full = {1, 2, {'1', '2', '3', '4', '5', '6', '7', '8'}};
	r = (int)ipcchan_pack(&reading_t, IPCCHAN_CSTRUCT, &full, out, sizeof out);
	printf("fullstring %d %s\n", r, r < 0 && errno == EINVAL ? "EINVAL" : "?");
	r = (int)ipcchan_pack(&reading_t, IPCCHAN_BINARY_LE, &reading_v, out, sizeof out);
	printf("stringbinary %d %s\n", r, r < 0 && errno == EINVAL ? "EINVAL" : "?");
	r = (int)ipcchan_pack(&vec_t, IPCCHAN_BINARY_LE, &vec_v, out, 11);
	printf("shortbuf %d %s\n", r, r < 0 && errno == EMSGSIZE ? "EMSGSIZE" : "?");
	r = ipcchan_unpack(&vec_t, IPCCHAN_BINARY_LE, out, 11, &vec_v);
	printf("shortin %d %s\n", r, r < 0 && errno == EBADMSG ? "EBADMSG" : "?");
	char text[8];
	r = (int)ipcchan_ctext_pack("hello", out, 8);
	hex(out, r);
	r = (int)ipcchan_ctext_unpack(out, 8, text, sizeof text);
	printf(" ctext %d %s\n", r, text);
	r = (int)ipcchan_ctext_pack("12345678", out, 8);
	printf("ctextfull %d %s\n", r, r < 0 && errno == EMSGSIZE ? "EMSGSIZE" : "?");
	return 0;
}
