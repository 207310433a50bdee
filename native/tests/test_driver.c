/*
 * test_driver.c - tests of the batch driver (scrypt_driver.h) that need no
 * Python: published answers for every variant this CPU supports at every
 * batch size, mixed batches against OpenSSL's own scrypt, the planner, the
 * buffer life cycle, the size arithmetic under hostile parameters, the
 * buffers' memory flags (no core dump, locked) and the error paths. Prints
 * one summary line,
 * "test_driver: <n> checks, <f> failures", and exits nonzero on a failure.
 *
 * tests/engines/test_native_driver.py builds it with AddressSanitizer and
 * UndefinedBehaviorSanitizer and runs it; by hand:
 *   cc -std=c11 -Inative -DSCRYPT_MAX_...=... (see native/limit_macros.py)
 *      native/tests/test_driver.c native/scrypt_*.c native/romix_*.c -lcrypto
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "scrypt_driver.h"
#include "scrypt_plan.h"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#define CAN_FORK 1
#else
#define CAN_FORK 0
#endif

#if defined(__linux__)
#include <sys/resource.h>
#define CAN_LIMIT_MEMORY 1
#else
#define CAN_LIMIT_MEMORY 0
#endif

/* Most worker processes for the batches (each may hold 512 MiB). */
#define MAX_WORKERS 4

static unsigned checks, failures;

static void check(int ok, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Count one check; print what failed and where. */
static void check(int ok, int line, const char *fmt, ...)
{
    va_list ap;

    checks++;
    if (ok)
        return;
    failures++;
    printf("FAIL (test_driver.c:%d): ", line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}
#define CHECK(cond, ...) check((cond) != 0, __LINE__, __VA_ARGS__)

/* Decode lowercase hex into out (room for strlen(hex)/2 bytes); returns the length. */
static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2, i;

    for (i = 0; i < n; i++) {
        unsigned byte;
        sscanf(hex + 2 * i, "%2x", &byte);
        out[i] = (uint8_t)byte;
    }
    return n;
}

/* ------------------------------------------------------- known answers */

/* Passwords of one parameter set with their published outputs. */
struct known_set {
    const char *name;
    const char *salt;
    struct scrypt_params prm;
    size_t count;
    const char *pw_hex[2];
    const char *dk_hex[2];
};

/*
 * RFC 7914 section 12, and the Firefox Accounts (PICL) vectors. RFC 7914's
 * fourth vector (N = 1048576, r = 8: 1 GiB per lane, 8 GiB for an 8-lane
 * batch) is left out: too large and too slow for every batch size of every
 * variant under the sanitizers. The Python tests do not run it either.
 */
static const struct known_set KNOWN[] = {
    {"rfc7914-1", "", {16, 1, 1, 64}, 1, {""},
     {"77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
      "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"}},
    {"rfc7914-2", "NaCl", {1024, 8, 16, 64}, 1, {"70617373776f7264"},
     {"fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
      "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"}},
    {"rfc7914-3", "SodiumChloride", {16384, 8, 1, 64}, 1, {"706c656173656c65746d65696e"},
     {"7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
      "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"}},
    {"picl", "identity.mozilla.com/picl/v1/scrypt", {65536, 8, 1, 32}, 2,
     {"f84913e3d8e6d624689d0a3e9678ac8dcc79d2c2f3d9641488cd9d6ef6cd83dd", "abcdef0123"},
     {"5b82f146a64126923e4167a0350bb181feba61f63cb1714012b19cb0be0119c5",
      "8158f3aae9044369c4c6ba5eda6f679cca8adc1186eb29637a75c9e4b4b940f1"}},
};
#define N_KNOWN (sizeof(KNOWN) / sizeof(KNOWN[0]))

/* Cheap parameter sets for mixed batches checked against OpenSSL's scrypt:
 * odd r, p > 1 (jobs of one input spread over lanes), the largest r and
 * buflen, the smallest N and buflen, an empty salt. */
static const struct {
    const char *salt;
    struct scrypt_params prm;
} MIXED[] = {
    {"", {16, 1, 1, 64}},
    {"mixed lanes", {64, 3, 2, 37}},
    {"tiny", {2, 1, 3, 1}},
    {"wide", {32, SCRYPT_MAX_R, 1, SCRYPT_MAX_BUFLEN}},
};
#define N_MIXED (sizeof(MIXED) / sizeof(MIXED[0]))

#define MAX_OUT (SCRYPT_MAX_LANES * SCRYPT_MAX_BUFLEN)

/* OpenSSL's scrypt of one input: the reference for mixed batches. */
static int reference(const uint8_t *pw, size_t pw_len, const char *salt, const struct scrypt_params *prm,
                     uint8_t *out)
{
    return EVP_PBE_scrypt((const char *)pw, pw_len, (const uint8_t *)salt, strlen(salt), prm->N, prm->r, prm->p,
                          (uint64_t)1 << 30, out, (size_t)prm->buflen) == 1;
}

/* Hash n inputs in one batch and compare lane i with want + i*buflen. */
static void hash_and_compare(struct scrypt_ctx *ctx, const char *what, size_t n, const uint8_t *const *in,
                             const size_t *len, const char *salt, const struct scrypt_params *prm,
                             const uint8_t *want)
{
    static uint8_t out[MAX_OUT];
    size_t i;
    int rc;

    rc = scrypt_hash_batch(ctx, in, len, n, (const uint8_t *)salt, strlen(salt), prm, out);
    CHECK(rc == SCRYPT_OK, "%s %s batch of %zu: %s", ctx->variant->name, what, n, scrypt_strerror(rc));
    if (rc != SCRYPT_OK)
        return;
    for (i = 0; i < n; i++)
        CHECK(memcmp(out + i * prm->buflen, want + i * prm->buflen, prm->buflen) == 0,
              "%s %s batch of %zu: lane %zu differs", ctx->variant->name, what, n, i);
}

/* Sets this large (64 MiB per lane at N = 65536) run only where the batch is
 * one kernel's width: the other batch sizes plan the same kernels, which the
 * small sets cover at every size, and under the sanitizers each large batch
 * costs seconds. */
#define LARGE_N 16384

/* Whether a batch of n is one pass of one of v's kernels (lanes full). */
static int kernel_width(const struct scrypt_variant *v, size_t n)
{
    size_t k;

    for (k = 0; k < v->n_kernels; k++)
        if (v->kernels[k].lanes == n)
            return 1;
    return 0;
}

/* Each known set at batch size n (the large ones where n is a kernel's
 * width); lane i takes password (i + n) % count, so with two passwords each
 * lane position sees both. */
static void test_known(struct scrypt_ctx *ctx, size_t n)
{
    static uint8_t pw[SCRYPT_MAX_LANES][64], want[MAX_OUT];
    const uint8_t *in[SCRYPT_MAX_LANES];
    size_t len[SCRYPT_MAX_LANES], k, i;
    int large = kernel_width(ctx->variant, n);

    for (k = 0; k < N_KNOWN; k++) {
        const struct known_set *ks = &KNOWN[k];
        if (ks->prm.N >= LARGE_N && !large)
            continue;
        for (i = 0; i < n; i++) {
            size_t which = (i + n) % ks->count;
            len[i] = unhex(ks->pw_hex[which], pw[i]);
            in[i] = pw[i];
            unhex(ks->dk_hex[which], want + i * ks->prm.buflen);
        }
        hash_and_compare(ctx, ks->name, n, in, len, ks->salt, &ks->prm, want);
    }
}

/* Mixed batches of n different passwords (lengths 0 up) against OpenSSL. */
static void test_mixed(struct scrypt_ctx *ctx, size_t n)
{
    static uint8_t pw[SCRYPT_MAX_LANES][80], want[MAX_OUT];
    const uint8_t *in[SCRYPT_MAX_LANES];
    size_t len[SCRYPT_MAX_LANES], m, i, j;
    char what[32];

    for (m = 0; m < N_MIXED; m++) {
        for (i = 0; i < n; i++) {
            len[i] = i == 1 ? 0 : (i * 23 + m * 5 + n) % sizeof(pw[i]); /* lane 1: empty */
            for (j = 0; j < len[i]; j++)
                pw[i][j] = (uint8_t)(i * 131 + j * 7 + m);
            in[i] = pw[i];
            CHECK(reference(pw[i], len[i], MIXED[m].salt, &MIXED[m].prm, want + i * MIXED[m].prm.buflen),
                  "OpenSSL scrypt failed for mixed set %zu", m);
        }
        snprintf(what, sizeof(what), "mixed set %zu", m);
        hash_and_compare(ctx, what, n, in, len, MIXED[m].salt, &MIXED[m].prm, want);
    }
}

/* ------------------------------------------------------------- planner */

static void test_planner(const struct scrypt_variant *v)
{
    struct scrypt_plan_step steps[SCRYPT_MAX_JOBS];
    unsigned lanes = scrypt_variant_lanes(v), jobs, used = 0, all = 0;
    size_t n, s, k;

    CHECK(v->n_kernels >= 1 && v->n_kernels <= 32, "%s: %zu kernels", v->name, v->n_kernels);
    CHECK(v->kernels[0].lanes == lanes, "%s: the first kernel is not the widest", v->name);
    CHECK(v->kernels[v->n_kernels - 1].lanes == 1, "%s: the last kernel is not a one-hash kernel", v->name);
    for (jobs = 1; jobs <= SCRYPT_MAX_JOBS; jobs++) {
        unsigned sum = 0, bad = 0;
        n = scrypt_plan(v, jobs, steps);
        for (s = 0; s < n; s++) {
            sum += steps[s].jobs;
            bad |= steps[s].jobs < 1 || steps[s].jobs > steps[s].kernel->lanes;
            if (jobs <= 2 * lanes)
                used |= 1u << (unsigned)(steps[s].kernel - v->kernels);
        }
        CHECK(n >= 1 && n <= jobs && sum == jobs && !bad, "%s: plan of %u jobs is wrong (%zu steps)", v->name,
              jobs, n);
    }
    /* Batches of 1..lanes inputs with p = 1 or 2 must use every kernel, so
     * that the known-answer tests above run each of them. */
    for (k = 0; k < v->n_kernels; k++)
        all |= 1u << k;
    CHECK(used == all, "%s: jobs 1..%u leave kernels unused (mask %#x of %#x)", v->name, 2 * lanes, used, all);
    n = scrypt_plan(v, 1, steps);
    CHECK(n == 1 && steps[0].kernel == &v->kernels[v->n_kernels - 1], "%s: one job is not one narrow pass",
          v->name);
    n = scrypt_plan(v, lanes, steps);
    CHECK(n == 1 && steps[0].kernel == &v->kernels[0] && steps[0].jobs == lanes,
          "%s: a full batch is not one wide pass", v->name);
    CHECK(scrypt_plan(v, 0, steps) == 0, "%s: a plan of 0 jobs", v->name);
    CHECK(scrypt_plan(v, SCRYPT_MAX_JOBS + 1, steps) == 0, "%s: a plan beyond SCRYPT_MAX_JOBS", v->name);
}

/* ------------------------------------------------------- buffer life cycle */

/* The big buffer: allocated for the widest pass, reused, grown, given back
 * when far too large, dirty after a batch, zero after a wipe. */
static void test_buffer(struct scrypt_ctx *ctx)
{
    static uint8_t pw[SCRYPT_MAX_LANES][4], want[MAX_OUT];
    const uint8_t *in[SCRYPT_MAX_LANES];
    size_t len[SCRYPT_MAX_LANES], i;
    struct scrypt_params small = {256, 8, 1, 32}, big = {1024, 8, 1, 32}, tiny = {16, 1, 1, 32};
    const char *name = ctx->variant->name;
    size_t lanes = ctx->lanes;

    for (i = 0; i < lanes; i++) {
        memcpy(pw[i], "pw", 2);
        pw[i][2] = (uint8_t)('0' + i);
        len[i] = 3;
        in[i] = pw[i];
    }
    CHECK(scrypt_ctx_buffer_bytes(ctx) == 0 && scrypt_ctx_buffer_is_zero(ctx), "%s: fresh context holds memory",
          name);

    for (i = 0; i < lanes; i++)
        reference(pw[i], len[i], "s", &small, want + i * 32);
    hash_and_compare(ctx, "buffer", lanes, in, len, "s", &small, want);
    CHECK(scrypt_ctx_buffer_bytes(ctx) == lanes * 128 * 8 * 256, "%s: buffer of %zu bytes after a full batch",
          name, scrypt_ctx_buffer_bytes(ctx));
    CHECK(!scrypt_ctx_buffer_is_zero(ctx), "%s: buffer zero after a batch", name);
    scrypt_ctx_wipe(ctx);
    CHECK(scrypt_ctx_buffer_is_zero(ctx), "%s: buffer not zero after wipe", name);
    CHECK(scrypt_ctx_buffer_bytes(ctx) == lanes * 128 * 8 * 256, "%s: wipe changed the buffer size", name);
    scrypt_ctx_wipe(ctx);
    CHECK(scrypt_ctx_buffer_is_zero(ctx), "%s: buffer not zero after a second wipe", name);

    /* Still usable after a wipe; a smaller batch fits the buffer there. */
    hash_and_compare(ctx, "after wipe", 1, in, len, "s", &small, want);
    CHECK(scrypt_ctx_buffer_bytes(ctx) == lanes * 128 * 8 * 256, "%s: one input resized the buffer", name);

    for (i = 0; i < lanes; i++)
        reference(pw[i], len[i], "s", &big, want + i * 32);
    hash_and_compare(ctx, "grown", lanes, in, len, "s", &big, want);
    CHECK(scrypt_ctx_buffer_bytes(ctx) == lanes * 128 * 8 * 1024, "%s: buffer did not grow", name);

    /* Reserving holds a full batch's buffer, zeroed (the last batch's state with it), which
     * the next full batch uses as it is. */
    CHECK(scrypt_ctx_reserve(ctx, &big) == SCRYPT_OK, "%s: reserve failed", name);
    CHECK(scrypt_ctx_buffer_bytes(ctx) == lanes * 128 * 8 * 1024, "%s: reserve held %zu bytes", name,
          scrypt_ctx_buffer_bytes(ctx));
    CHECK(scrypt_ctx_buffer_is_zero(ctx), "%s: buffer not zero after reserve", name);
    hash_and_compare(ctx, "reserved", lanes, in, len, "s", &big, want);
    CHECK(scrypt_ctx_buffer_bytes(ctx) == lanes * 128 * 8 * 1024, "%s: a batch resized the reserve", name);
    CHECK(scrypt_ctx_reserve(ctx, &tiny) == SCRYPT_OK && scrypt_ctx_buffer_bytes(ctx) == lanes * 128 * 1 * 16,
          "%s: reserve kept an oversized buffer", name);
    {
        struct scrypt_params bad = {1000, 8, 1, 32}; /* N not a power of two */
        CHECK(scrypt_ctx_reserve(ctx, &bad) == SCRYPT_EPARAM, "%s: reserve took a bad N", name);
    }

    for (i = 0; i < lanes; i++)
        reference(pw[i], len[i], "s", &tiny, want + i * 32);
    hash_and_compare(ctx, "shrunk", lanes, in, len, "s", &tiny, want);
    CHECK(scrypt_ctx_buffer_bytes(ctx) == lanes * 128 * 1 * 16, "%s: oversized buffer kept", name);

    scrypt_ctx_free(ctx);
    CHECK(scrypt_ctx_buffer_bytes(ctx) == 0 && scrypt_ctx_buffer_is_zero(ctx), "%s: free kept memory", name);
    scrypt_ctx_free(ctx); /* idempotent */
    hash_and_compare(ctx, "after free", 1, in, len, "s", &tiny, want);
    scrypt_ctx_free(ctx);
}

/* ------------------------------------------------------------ error paths */

static void test_bad_params(struct scrypt_ctx *ctx)
{
    static const struct {
        struct scrypt_params prm;
        const char *why;
    } BAD[] = {
        {{3, 1, 1, 32}, "N must be a power of two"},
        {{1000, 1, 1, 32}, "N must be a power of two"},
        {{0, 1, 1, 32}, "N must be 2.."},
        {{1, 1, 1, 32}, "N must be 2.."},
        {{SCRYPT_MAX_N * 2, 1, 1, 32}, "N must be 2.."},
        {{UINT64_MAX, 1, 1, 32}, "N must be 2.."},
        {{16, 0, 1, 32}, "r must be 1.."},
        {{16, SCRYPT_MAX_R + 1, 1, 32}, "r must be 1.."},
        {{16, 1, 0, 32}, "p must be 1.."},
        {{16, 1, SCRYPT_MAX_P + 1, 32}, "p must be 1.."},
        {{16, 1, 1, 0}, "buflen must be 1.."},
        {{16, 1, 1, SCRYPT_MAX_BUFLEN + 1}, "buflen must be 1.."},
        {{1, 0, 0, 0}, "N must be 2.."},
    };
    static uint8_t out[MAX_OUT];
    const uint8_t *in[SCRYPT_MAX_LANES + 1];
    size_t len[SCRYPT_MAX_LANES + 1], i, j;
    struct scrypt_params good = {16, 1, 1, 32};
    char why[80];
    int rc;

    for (i = 0; i <= SCRYPT_MAX_LANES; i++) {
        in[i] = (const uint8_t *)"pw";
        len[i] = 2;
    }
    for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        const struct scrypt_params *p = &BAD[i].prm;
        why[0] = '\0';
        rc = scrypt_check_params(p, why, sizeof(why));
        CHECK(rc == SCRYPT_EPARAM && strncmp(why, BAD[i].why, strlen(BAD[i].why)) == 0,
              "check_params(N=%llu r=%llu p=%llu buflen=%llu): %d \"%s\", expected \"%s\"",
              (unsigned long long)p->N, (unsigned long long)p->r, (unsigned long long)p->p,
              (unsigned long long)p->buflen, rc, why, BAD[i].why);
        memset(out, 0xa5, sizeof(out));
        rc = scrypt_hash_batch(ctx, in, len, 1, (const uint8_t *)"s", 1, p, out);
        for (j = 0; j < sizeof(out) && out[j] == 0xa5; j++)
            ;
        CHECK(rc == SCRYPT_EPARAM && j == sizeof(out), "hash_batch with bad parameters #%zu: %s, output %s", i,
              scrypt_strerror(rc), j == sizeof(out) ? "untouched" : "written");
    }
    snprintf(why, sizeof(why), "N must be 2..%llu", (unsigned long long)SCRYPT_MAX_N);
    {
        char got[80];
        struct scrypt_params p = {0, 1, 1, 32};
        scrypt_check_params(&p, got, sizeof(got));
        CHECK(strcmp(got, why) == 0, "message \"%s\", expected \"%s\"", got, why);
    }
    CHECK(scrypt_check_params(&good, NULL, 0) == SCRYPT_OK, "good parameters refused");
    CHECK(scrypt_check_params(&BAD[0].prm, NULL, 0) == SCRYPT_EPARAM, "check_params without a message buffer");

    rc = scrypt_hash_batch(ctx, in, len, 0, (const uint8_t *)"s", 1, &good, out);
    CHECK(rc == SCRYPT_EPARAM, "a batch of no inputs: %s", scrypt_strerror(rc));
    rc = scrypt_hash_batch(ctx, in, len, ctx->lanes + 1, (const uint8_t *)"s", 1, &good, out);
    CHECK(rc == SCRYPT_EPARAM, "%s: a batch of lanes + 1 inputs: %s", ctx->variant->name, scrypt_strerror(rc));
    in[0] = NULL;
    rc = scrypt_hash_batch(ctx, in, len, 1, (const uint8_t *)"s", 1, &good, out);
    CHECK(rc == SCRYPT_EPARAM, "a NULL input of nonzero length: %s", scrypt_strerror(rc));
    rc = scrypt_hash_batch(ctx, in + 1, len + 1, 1, NULL, 1, &good, out);
    CHECK(rc == SCRYPT_EPARAM, "a NULL salt of nonzero length: %s", scrypt_strerror(rc));
}

/* ------------------------------------------------------- size arithmetic */

#if defined(__SIZEOF_INT128__)
typedef unsigned __int128 wide_t; /* holds every product below exactly */
#define WIDE_EXACT 1
#else
typedef long double wide_t;
#define WIDE_EXACT 0
#endif

/*
 * scrypt_batch_sizes on one parameter set: its verdict must match the
 * sizes computed in a wider type. SCRYPT_OK exactly when every size fits
 * size_t (and then each field equals its product); SCRYPT_ENOMEM exactly
 * when one would not; SCRYPT_EPARAM for a value past the types' ranges.
 */
static void check_sizes(uint64_t N, uint64_t r, uint64_t p, uint64_t buflen, size_t n, unsigned lanes)
{
    const struct scrypt_params prm = {N, r, p, buflen};
    struct scrypt_sizes sz, zero;
    int rc = scrypt_batch_sizes(&prm, n, lanes, &sz), in_range, fits;
    wide_t block = (wide_t)128 * r, big = block * N * lanes, xy = block * 2 * lanes;
    wide_t scratch = xy + block * ((wide_t)2 * lanes * p + 1), out = (wide_t)n * buflen;

    memset(&zero, 0, sizeof(zero));
    in_range = lanes >= 1 && lanes <= SCRYPT_MAX_LANES && n >= 1 && n <= lanes && N >= 1 && N <= UINT32_MAX &&
               r >= 1 && r <= INT_MAX / 128 && p >= 1 && p <= SCRYPT_MAX_JOBS / lanes && buflen >= 1 &&
               buflen <= INT_MAX && (wide_t)p * block <= INT_MAX;
    fits = big <= SIZE_MAX && scratch <= SIZE_MAX && out <= SIZE_MAX;
    if (!in_range) {
        CHECK(rc == SCRYPT_EPARAM && memcmp(&sz, &zero, sizeof(sz)) == 0,
              "sizes(N=%llu r=%llu p=%llu buflen=%llu n=%zu lanes=%u): %s, expected EPARAM", (unsigned long long)N,
              (unsigned long long)r, (unsigned long long)p, (unsigned long long)buflen, n, lanes,
              scrypt_strerror(rc));
        return;
    }
    if (!fits) {
        CHECK(rc == SCRYPT_ENOMEM && memcmp(&sz, &zero, sizeof(sz)) == 0,
              "sizes(N=%llu r=%llu p=%llu n=%zu lanes=%u) past SIZE_MAX: %s, expected ENOMEM", (unsigned long long)N,
              (unsigned long long)r, (unsigned long long)p, n, lanes, scrypt_strerror(rc));
        return;
    }
    CHECK(rc == SCRYPT_OK, "sizes(N=%llu r=%llu p=%llu n=%zu lanes=%u) fit: %s", (unsigned long long)N,
          (unsigned long long)r, (unsigned long long)p, n, lanes, scrypt_strerror(rc));
    if (rc != SCRYPT_OK)
        return;
    CHECK(sz.block == block && sz.jobs == (wide_t)n * p && sz.input_bytes == (wide_t)p * block &&
              sz.lane_bytes == block * N && sz.big_bytes == big && sz.xy_bytes == xy &&
              sz.xy_bytes == SCRYPT_SCRATCH_BYTES(lanes, r) && sz.scratch_bytes == scratch && sz.out_bytes == out,
          "sizes(N=%llu r=%llu p=%llu n=%zu lanes=%u) are wrong", (unsigned long long)N, (unsigned long long)r,
          (unsigned long long)p, n, lanes);
}

/*
 * Every size is bounded before it is computed: values that would wrap
 * size_t (with 64-bit or 32-bit size_t), or pass what the kernels, OpenSSL
 * and the planner take, are refused, whatever the SCRYPT_MAX_* limits are.
 */
static void test_sizes(void)
{
    static const uint64_t NS[] = {0, 1, 2, 1024, 65536, (uint64_t)1 << 20, (uint64_t)1 << 31, UINT32_MAX,
                                  (uint64_t)1 << 32, (uint64_t)1 << 63, UINT64_MAX};
    static const uint64_t RS[] = {0, 1, 8, 32, 1u << 16, 1u << 20, INT_MAX / 128, INT_MAX / 128 + 1,
                                  (uint64_t)1 << 40, UINT64_MAX};
    static const uint64_t PS[] = {0, 1, 2, 16, SCRYPT_MAX_JOBS, SCRYPT_MAX_JOBS + 1, (uint64_t)1 << 62, UINT64_MAX};
    static const uint64_t BUFLENS[] = {0, 1, 32, INT_MAX, (uint64_t)INT_MAX + 1, UINT64_MAX};
    static const unsigned LANES[] = {0, 1, 4, SCRYPT_MAX_LANES, SCRYPT_MAX_LANES + 1};
    size_t a, b, c, d, e, k, n;
    struct scrypt_sizes sz;
    const struct scrypt_params picl = {65536, 8, 1, 32};

    for (a = 0; a < sizeof(NS) / sizeof(NS[0]); a++)
        for (b = 0; b < sizeof(RS) / sizeof(RS[0]); b++)
            for (c = 0; c < sizeof(PS) / sizeof(PS[0]); c++)
                for (e = 0; e < sizeof(LANES) / sizeof(LANES[0]); e++) {
                    /* Batches of none, one, a full one and one too many. */
                    const size_t batch[] = {0, 1, LANES[e], (size_t)LANES[e] + 1};
                    for (k = 0; k < sizeof(batch) / sizeof(batch[0]); k++)
                        check_sizes(NS[a], RS[b], PS[c], 32, batch[k], LANES[e]);
                }
    for (d = 0; d < sizeof(BUFLENS) / sizeof(BUFLENS[0]); d++)
        for (n = 1; n <= SCRYPT_MAX_LANES; n++)
            check_sizes(16, 1, 1, BUFLENS[d], n, SCRYPT_MAX_LANES);

    /* The production set on an 8-lane context, by hand. */
    CHECK(scrypt_batch_sizes(&picl, 3, 8, &sz) == SCRYPT_OK && sz.jobs == 3 && sz.block == 1024 &&
              sz.input_bytes == 1024 && sz.lane_bytes == (size_t)64 << 20 && sz.big_bytes == (size_t)512 << 20 &&
              sz.xy_bytes == 16384 && sz.scratch_bytes == 16384 + 17 * 1024 && sz.out_bytes == 96,
          "sizes of the production set");
    /* 128 r N lanes = 2^7 (2^24 - 1) 2^31 2^3, about 2^65, would wrap a 64-bit size_t: refused. */
    {
        const struct scrypt_params wrap = {(uint64_t)1 << 31, INT_MAX / 128, 1, 32};
        CHECK(scrypt_batch_sizes(&wrap, 1, SCRYPT_MAX_LANES, &sz) == SCRYPT_ENOMEM, "128 r N * lanes past SIZE_MAX");
    }
    if (!WIDE_EXACT)
        printf("note: no 128-bit integers, size checks compared in long double\n");
}

/* The footprint a context reports is what its buffers map. */
static void test_footprint(const struct scrypt_variant *v)
{
    const struct scrypt_params prm = {256, 8, 2, 32}, bad = {3, 8, 1, 32};
    struct scrypt_sizes sz;
    size_t bytes = 1;

    CHECK(scrypt_ctx_footprint(v, &prm, &bytes) == SCRYPT_OK &&
              scrypt_batch_sizes(&prm, scrypt_variant_lanes(v), scrypt_variant_lanes(v), &sz) == SCRYPT_OK &&
              bytes == scrypt_bigbuf_footprint(sz.big_bytes) + scrypt_bigbuf_footprint(sz.scratch_bytes) &&
              bytes >= sz.big_bytes + sz.scratch_bytes,
          "%s: footprint %zu", v->name, bytes);
    CHECK(scrypt_ctx_footprint(v, &bad, &bytes) == SCRYPT_EPARAM && bytes == 0, "%s: footprint of N=3", v->name);
    CHECK(scrypt_bigbuf_footprint(SIZE_MAX) == 0 && scrypt_bigbuf_footprint(SIZE_MAX - 10) == 0,
          "bigbuf footprint past SIZE_MAX");
    CHECK(scrypt_bigbuf_footprint(0) >= 64 && scrypt_bigbuf_footprint(1) >= 64, "bigbuf footprint of 0 or 1 byte");
}

static void test_variants(void)
{
    const struct scrypt_variant *built[SCRYPT_MAX_VARIANTS], *sup[SCRYPT_MAX_VARIANTS];
    size_t n_built = scrypt_variants_built(built, SCRYPT_MAX_VARIANTS);
    size_t n_sup = scrypt_variants_supported(sup, SCRYPT_MAX_VARIANTS);
    size_t i, j;
    struct scrypt_ctx ctx;
    int rc;

    CHECK(n_built >= 1 && n_built <= SCRYPT_MAX_VARIANTS, "%zu variants built", n_built);
    CHECK(n_sup >= 1 && n_sup <= n_built, "%zu of %zu variants supported", n_sup, n_built);
    CHECK(strcmp(sup[n_sup - 1]->name, "portable") == 0, "the last supported variant is %s", sup[n_sup - 1]->name);
    /* Supported ones are the built ones this CPU runs, in the same order. */
    for (i = 0, j = 0; i < n_built; i++) {
        int ok = scrypt_variant_supported(built[i]);
        if (ok) {
            CHECK(j < n_sup && sup[j] == built[i], "supported list out of order at %s", built[i]->name);
            j++;
        }
        CHECK(scrypt_variant_find(built[i]->name) == built[i], "find(%s) failed", built[i]->name);
        rc = scrypt_ctx_init(&ctx, built[i]->name);
        CHECK(rc == (ok ? SCRYPT_OK : SCRYPT_EUNSUPPORTED), "init(%s): %s", built[i]->name, scrypt_strerror(rc));
        if (rc == SCRYPT_OK)
            CHECK(ctx.lanes == scrypt_variant_lanes(built[i]) && ctx.variant == built[i], "init(%s) state",
                  built[i]->name);
    }
    CHECK(j == n_sup, "supported variants missing from the built list");
    for (i = 0; i < n_built; i++) {
        static const struct {
            const char *name;
            unsigned lanes;
        } LANES[] = {{"avx512", 8}, {"avx2", 6}, {"sse2", 4}, {"portable", 1}};
        for (j = 0; j < sizeof(LANES) / sizeof(LANES[0]); j++)
            if (strcmp(built[i]->name, LANES[j].name) == 0)
                break;
        CHECK(j < sizeof(LANES) / sizeof(LANES[0]) && scrypt_variant_lanes(built[i]) == LANES[j].lanes,
              "lanes of %s: %u", built[i]->name, scrypt_variant_lanes(built[i]));
        CHECK(scrypt_variant_lanes(built[i]) <= SCRYPT_MAX_LANES, "%s: more lanes than SCRYPT_MAX_LANES",
              built[i]->name);
    }

    CHECK(scrypt_variant_find("neon") == NULL && scrypt_variant_find("") == NULL && scrypt_variant_find(NULL) == NULL,
          "found a variant that does not exist");
    rc = scrypt_ctx_init(&ctx, "neon");
    CHECK(rc == SCRYPT_EVARIANT && ctx.variant == NULL, "init(neon): %s", scrypt_strerror(rc));
    {
        struct scrypt_params good = {16, 1, 1, 32};
        const uint8_t *in[1] = {(const uint8_t *)"pw"};
        size_t len[1] = {2};
        uint8_t out[32];
        rc = scrypt_hash_batch(&ctx, in, len, 1, (const uint8_t *)"s", 1, &good, out);
        CHECK(rc == SCRYPT_EPARAM, "hash_batch on a context without a variant: %s", scrypt_strerror(rc));
    }
}

#if CAN_LIMIT_MEMORY
/* Bytes of address space this process uses now (first field of statm). */
static unsigned long long address_space_now(void)
{
    unsigned long long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu", &pages) != 1)
        pages = 0;
    fclose(f);
    return pages * (unsigned long long)sysconf(_SC_PAGESIZE);
}

/*
 * In a child with RLIMIT_AS just above what it uses now, a full batch of
 * the largest parameters (128*r*N = 4 GiB per lane) must fail with
 * SCRYPT_ENOMEM, hold no buffer after, and leave the context usable.
 * The limit is relative to the current address space because
 * AddressSanitizer reserves terabytes of shadow memory at start-up: an
 * absolute limit would fail every allocation under it.
 */
static int child_out_of_memory(const char *variant)
{
    const struct scrypt_params huge = {SCRYPT_MAX_N, SCRYPT_MAX_R, 1, 32}, small = {16, 1, 1, 8};
    const uint8_t *in[SCRYPT_MAX_LANES];
    size_t len[SCRYPT_MAX_LANES], i;
    static uint8_t out[MAX_OUT];
    uint8_t want[8];
    unsigned long long used = address_space_now();
    struct rlimit lim;
    struct scrypt_ctx ctx;
    int rc;

    if (used == 0)
        return 10;
    lim.rlim_cur = lim.rlim_max = (rlim_t)(used + ((unsigned long long)256 << 20));
    if (setrlimit(RLIMIT_AS, &lim) != 0)
        return 11;
    if (scrypt_ctx_init(&ctx, variant) != SCRYPT_OK)
        return 12;
    for (i = 0; i < ctx.lanes; i++) {
        in[i] = (const uint8_t *)"pw";
        len[i] = 2;
    }
    rc = scrypt_hash_batch(&ctx, in, len, ctx.lanes, (const uint8_t *)"salt", 4, &huge, out);
    if (rc != SCRYPT_ENOMEM)
        return 13;
    if (scrypt_ctx_buffer_bytes(&ctx) != 0)
        return 14;
    rc = scrypt_hash_batch(&ctx, in, len, 1, (const uint8_t *)"salt", 4, &small, out);
    if (rc != SCRYPT_OK || !reference(in[0], len[0], "salt", &small, want) || memcmp(out, want, 8) != 0)
        return 15;
    scrypt_ctx_free(&ctx);
    return 0;
}

static void test_out_of_memory(const char *variant)
{
    static const char *const WHY[] = {
        [10] = "cannot read /proc/self/statm", [11] = "setrlimit failed",
        [12] = "context init failed",          [13] = "no SCRYPT_ENOMEM",
        [14] = "buffer held after ENOMEM",     [15] = "wrong answer after ENOMEM",
    };
    int status = 0;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid == 0)
        _exit(child_out_of_memory(variant)); /* _exit: no leak check or atexit work in the child */
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/waitpid failed");
    if (pid <= 0)
        return;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s out of memory: %s (status %#x)", variant,
          WIFEXITED(status) && WEXITSTATUS(status) >= 10 && WEXITSTATUS(status) <= 15 ? WHY[WEXITSTATUS(status)]
                                                                                     : "child crashed",
          (unsigned)status);
}
#endif

#if CAN_LIMIT_MEMORY
/* AddressSanitizer turns mlock into a no-op that succeeds: the locking
 * checks need an unsanitized build (tests/engines/test_native.py has them
 * for the extension). */
#if defined(__SANITIZE_ADDRESS__)
#define MLOCK_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLOCK_WORKS 0
#endif
#endif
#ifndef MLOCK_WORKS
#define MLOCK_WORKS 1
#endif

/* Whether the mapping holding p has the VmFlags token `flag` in /proc/self/smaps. */
static int vm_flag(const void *p, const char *flag)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512], *tok, *save;
    int inside = 0, found = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long lo, hi;
        /* A mapping's header line starts "lo-hi "; its fields follow. */
        if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2) {
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            for (tok = strtok_r(line + 8, " \n", &save); tok != NULL; tok = strtok_r(NULL, " \n", &save))
                found |= strcmp(tok, flag) == 0;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Locked memory of this process (VmLck of /proc/self/status) in kB, or -1. */
static long locked_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/*
 * In a child (it changes its limits and user): both buffers are left out
 * of core dumps; with lock_memory they are locked while held and unlocked
 * when freed; with RLIMIT_MEMLOCK at 0 and no CAP_IPC_LOCK (root gives it
 * up by becoming nobody) a batch fails with SCRYPT_ELOCK, holds nothing,
 * and the context still works unlocked.
 */
static int child_memory_flags(const char *variant)
{
    const struct scrypt_params prm = {1024, 8, 1, 32}, tiny = {16, 1, 1, 32};
    const uint8_t *in[SCRYPT_MAX_LANES];
    size_t len[SCRYPT_MAX_LANES], i, footprint;
    static uint8_t out[MAX_OUT];
    uint8_t want[32];
    struct rlimit none = {0, 0};
    struct scrypt_ctx ctx;
    long before;

    if (scrypt_ctx_init(&ctx, variant) != SCRYPT_OK)
        return 20;
    for (i = 0; i < ctx.lanes; i++) {
        in[i] = (const uint8_t *)"pw";
        len[i] = 2;
    }
    if (scrypt_hash_batch(&ctx, in, len, ctx.lanes, (const uint8_t *)"s", 1, &prm, out) != SCRYPT_OK)
        return 21;
    if (!vm_flag(ctx.buf.p, "dd") || !vm_flag(ctx.scratch.p, "dd"))
        return 22;
    scrypt_ctx_free(&ctx);
    if (!MLOCK_WORKS)
        return 0;

    /* The tiny set locks a few pages, within any default RLIMIT_MEMLOCK. */
    ctx.lock_memory = 1;
    before = locked_kb();
    if (before < 0 || scrypt_ctx_footprint(ctx.variant, &tiny, &footprint) != SCRYPT_OK)
        return 23;
    if (scrypt_hash_batch(&ctx, in, len, ctx.lanes, (const uint8_t *)"s", 1, &tiny, out) != SCRYPT_OK)
        return 24;
    if (locked_kb() < before + (long)(footprint / 1024) || !vm_flag(ctx.buf.p, "lo") ||
        !vm_flag(ctx.scratch.p, "lo"))
        return 25;
    scrypt_ctx_free(&ctx);
    if (locked_kb() != before)
        return 26;

    if (setrlimit(RLIMIT_MEMLOCK, &none) != 0)
        return 27;
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
        return 28;
    if (scrypt_hash_batch(&ctx, in, len, 1, (const uint8_t *)"s", 1, &tiny, out) != SCRYPT_ELOCK)
        return 29;
    if (scrypt_ctx_buffer_bytes(&ctx) != 0 || ctx.buf.p != NULL || ctx.scratch.p != NULL)
        return 30;
    ctx.lock_memory = 0;
    if (scrypt_hash_batch(&ctx, in, len, 1, (const uint8_t *)"s", 1, &tiny, out) != SCRYPT_OK ||
        !reference(in[0], len[0], "s", &tiny, want) || memcmp(out, want, 32) != 0)
        return 31;
    scrypt_ctx_free(&ctx);
    return 0;
}

static void test_memory_flags(const char *variant)
{
    static const char *const WHY[] = {
        [20] = "context init failed",       [21] = "batch failed",
        [22] = "a buffer is in core dumps", [23] = "no VmLck or footprint",
        [24] = "locked batch failed",       [25] = "buffers not locked",
        [26] = "locked memory not released", [27] = "setrlimit failed",
        [28] = "cannot become nobody",      [29] = "no SCRYPT_ELOCK past RLIMIT_MEMLOCK",
        [30] = "buffer held after ELOCK",   [31] = "wrong answer after ELOCK",
    };
    int status = 0;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid == 0)
        _exit(child_memory_flags(variant));
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/waitpid failed");
    if (pid <= 0)
        return;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s memory flags: %s (status %#x)", variant,
          WIFEXITED(status) && WEXITSTATUS(status) >= 20 && WEXITSTATUS(status) <= 31 ? WHY[WEXITSTATUS(status)]
                                                                                     : "child crashed",
          (unsigned)status);
    if (!MLOCK_WORKS)
        printf("skipped: the memory locking checks (AddressSanitizer makes mlock a no-op)\n");
}
#endif

/* --------------------------------------------------------- batch tasks */

/* One variant at one batch size: the known answers and the mixed batches. */
struct task {
    const struct scrypt_variant *v;
    unsigned n;
};

static void run_task(const struct task *t)
{
    struct scrypt_ctx ctx;
    int rc = scrypt_ctx_init(&ctx, t->v->name);

    CHECK(rc == SCRYPT_OK, "cannot open a context for %s: %s", t->v->name, scrypt_strerror(rc));
    if (rc != SCRYPT_OK)
        return;
    test_known(&ctx, t->n);
    test_mixed(&ctx, t->n);
    scrypt_ctx_free(&ctx);
}

#if CAN_FORK
/*
 * Run the tasks in worker processes (the sanitized kernels are slow, and
 * the tasks independent): the parent queues task numbers in a pipe, each
 * worker takes the next one until the pipe is empty, then reports its
 * counts. A worker that crashes or leaks (LeakSanitizer runs at its exit)
 * counts as a failure.
 */
static void run_tasks(const struct task *tasks, size_t n_tasks, unsigned workers)
{
    int queue[2], results[2];
    pid_t pid[MAX_WORKERS];
    unsigned w, counts[2];
    size_t i;

    if (pipe(queue) != 0 || pipe(results) != 0) {
        CHECK(0, "pipe failed");
        return;
    }
    for (i = 0; i < n_tasks; i++) {
        unsigned char id = (unsigned char)i;
        CHECK(write(queue[1], &id, 1) == 1, "cannot queue task %zu", i);
    }
    close(queue[1]);
    fflush(stdout);
    for (w = 0; w < workers; w++) {
        pid[w] = fork();
        if (pid[w] == 0) {
            unsigned char id;
            close(results[0]);
            checks = failures = 0;
            while (read(queue[0], &id, 1) == 1)
                run_task(&tasks[id]);
            counts[0] = checks;
            counts[1] = failures;
            exit(write(results[1], counts, sizeof(counts)) == (ssize_t)sizeof(counts) ? 0 : 1);
        }
        CHECK(pid[w] > 0, "fork failed");
    }
    close(queue[0]);
    close(results[1]);
    while (read(results[0], counts, sizeof(counts)) == (ssize_t)sizeof(counts)) {
        checks += counts[0];
        failures += counts[1];
    }
    close(results[0]);
    for (w = 0; w < workers; w++) {
        int status = 0;
        if (pid[w] <= 0)
            continue;
        CHECK(waitpid(pid[w], &status, 0) == pid[w] && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "worker %u failed (status %#x)", w, (unsigned)status);
    }
}

static unsigned worker_count(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    return cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (unsigned)cpus;
}
#else
static void run_tasks(const struct task *tasks, size_t n_tasks, unsigned workers)
{
    size_t i;

    (void)workers;
    for (i = 0; i < n_tasks; i++)
        run_task(&tasks[i]);
}

static unsigned worker_count(void) { return 1; }
#endif

int main(void)
{
    const struct scrypt_variant *sup[SCRYPT_MAX_VARIANTS];
    size_t n_sup = scrypt_variants_supported(sup, SCRYPT_MAX_VARIANTS), i, n_tasks = 0;
    struct task tasks[SCRYPT_MAX_VARIANTS * SCRYPT_MAX_LANES];
    struct scrypt_ctx ctx;
    unsigned n;

    setvbuf(stdout, NULL, _IOLBF, 0);
    test_variants();
    test_sizes();
    for (i = 0; i < n_sup && i < SCRYPT_MAX_VARIANTS; i++) {
        const struct scrypt_variant *v = sup[i];
        test_planner(v);
        test_footprint(v);
        if (scrypt_ctx_init(&ctx, v->name) != SCRYPT_OK) {
            CHECK(0, "cannot open a context for %s", v->name);
            continue;
        }
        test_buffer(&ctx);
        test_bad_params(&ctx);
        scrypt_ctx_free(&ctx);
        /* Largest batches first, so the slowest tasks do not start last. */
        for (n = ctx.lanes; n >= 1; n--)
            tasks[n_tasks++] = (struct task){v, n};
    }
#if CAN_LIMIT_MEMORY
    test_out_of_memory(sup[0]->name);
    test_memory_flags(sup[0]->name);
#else
    printf("skipped: the allocation failure and memory flag tests (need Linux)\n");
#endif
    run_tasks(tasks, n_tasks, worker_count());
    for (i = 0; i < n_sup; i++)
        printf("variant %s: batches of 1..%u checked\n", sup[i]->name, scrypt_variant_lanes(sup[i]));
    printf("test_driver: %u checks, %u failures\n", checks, failures);
    return failures ? 1 : 0;
}
