/*
 * scrypt_driver.c - scrypt for a batch of inputs (see scrypt_driver.h):
 * parameter checks, the variant table, the conversion between PBKDF2's
 * bytes and the kernels' words, and PBKDF2 -> ROMix -> PBKDF2.
 */
#include "scrypt_driver.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "scrypt_plan.h"
#include "scrypt_platform.h"

/*
 * What the code below relies on, whatever param_limits.py says: the kernels
 * take N as a uint32_t, and OpenSSL's PBKDF2 takes lengths as int. The
 * second also keeps p within RFC 7914's p <= (2^32 - 1) * 32 / (128 * r).
 */
_Static_assert(SCRYPT_MAX_LOG2_N >= 1 && SCRYPT_MAX_LOG2_N <= 31, "MAX_LOG2_N must be 1..31");
_Static_assert(SCRYPT_MAX_R >= 1 && SCRYPT_MAX_P >= 1 && SCRYPT_MAX_BUFLEN >= 1, "limits must be positive");
_Static_assert((unsigned long long)SCRYPT_MAX_P * 128 * SCRYPT_MAX_R <= INT_MAX,
               "p * 128 * r must fit OpenSSL's int lengths");
_Static_assert(SCRYPT_MAX_BUFLEN <= INT_MAX, "buflen must fit OpenSSL's int lengths");
/* scrypt_batch_sizes casts N (up to UINT32_MAX) and int lengths to size_t. */
_Static_assert(SIZE_MAX >= UINT32_MAX && SIZE_MAX >= INT_MAX, "size_t must hold 32-bit values");

const char *scrypt_strerror(int status)
{
    switch (status) {
    case SCRYPT_OK:
        return "success";
    case SCRYPT_EPARAM:
        return "scrypt parameter out of range";
    case SCRYPT_ENOMEM:
        return "out of memory";
    case SCRYPT_ECRYPTO:
        return "OpenSSL PBKDF2-HMAC-SHA256 failed";
    case SCRYPT_EVARIANT:
        return "unknown scrypt variant";
    case SCRYPT_EUNSUPPORTED:
        return "scrypt variant not supported by this CPU";
    case SCRYPT_ELOCK:
        return "cannot lock the scrypt buffers in memory (RLIMIT_MEMLOCK too low)";
    default:
        return "unknown scrypt status";
    }
}

static int param_error(char *why, size_t why_len, const char *name, uint64_t lo, uint64_t hi)
{
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "%s must be %llu..%llu", name, (unsigned long long)lo, (unsigned long long)hi);
    return SCRYPT_EPARAM;
}

int scrypt_check_params(const struct scrypt_params *prm, char *why, size_t why_len)
{
    /*
     * RFC 7914 section 6: N > 1 and a power of two, p and dkLen positive
     * (their upper bounds there are far above these limits). Its N <
     * 2^(16r) is not imposed, as the service never has: within these limits
     * it only excludes r = 1 with N >= 2^16. The ranges are checked first,
     * the power of two last.
     */
    if (prm->N < 2 || prm->N > SCRYPT_MAX_N)
        return param_error(why, why_len, "N", 2, SCRYPT_MAX_N);
    if (prm->r < 1 || prm->r > SCRYPT_MAX_R)
        return param_error(why, why_len, "r", 1, SCRYPT_MAX_R);
    if (prm->p < 1 || prm->p > SCRYPT_MAX_P)
        return param_error(why, why_len, "p", 1, SCRYPT_MAX_P);
    if (prm->buflen < 1 || prm->buflen > SCRYPT_MAX_BUFLEN)
        return param_error(why, why_len, "buflen", 1, SCRYPT_MAX_BUFLEN);
    if (prm->N & (prm->N - 1)) {
        if (why != NULL && why_len > 0)
            snprintf(why, why_len, "N must be a power of two");
        return SCRYPT_EPARAM;
    }
    return SCRYPT_OK;
}

/* ------------------------------------------------------------------ sizes */

/* *acc += a * b, checked before anything is computed: -1 (and *acc
 * unchanged) when the sum would pass SIZE_MAX. */
static int add_product(size_t *acc, size_t a, size_t b)
{
    if (a != 0 && b > (SIZE_MAX - *acc) / a)
        return -1;
    *acc += a * b;
    return 0;
}

int scrypt_batch_sizes(const struct scrypt_params *prm, size_t n_inputs, unsigned lanes, struct scrypt_sizes *sz)
{
    struct scrypt_sizes s;

    memset(sz, 0, sizeof(*sz));
    memset(&s, 0, sizeof(s));
    if (lanes < 1 || lanes > SCRYPT_MAX_LANES || n_inputs < 1 || n_inputs > lanes)
        return SCRYPT_EPARAM;
    /* The kernels take N and r as uint32_t, OpenSSL takes lengths as int,
     * and a full batch's jobs must fit the planner's SCRYPT_MAX_JOBS. */
    if (prm->N < 1 || prm->N > UINT32_MAX || prm->r < 1 || prm->r > INT_MAX / 128 || prm->p < 1 ||
        prm->p > SCRYPT_MAX_JOBS / lanes || prm->buflen < 1 || prm->buflen > INT_MAX)
        return SCRYPT_EPARAM;
    s.block = (size_t)128 * (size_t)prm->r;
    if ((size_t)prm->p > (size_t)INT_MAX / s.block)
        return SCRYPT_EPARAM;
    s.input_bytes = (size_t)prm->p * s.block;
    s.jobs = n_inputs * (size_t)prm->p; /* at most SCRYPT_MAX_JOBS */

    /* V: 128r * N bytes per lane, for every lane of the context. */
    if ((size_t)prm->N > SIZE_MAX / lanes / s.block)
        return SCRYPT_ENOMEM;
    s.lane_bytes = s.block * (size_t)prm->N;
    s.big_bytes = s.lane_bytes * lanes;

    /* XY: 256r bytes per lane. Then a full batch's B and its words (lanes *
     * p blocks each) and a filler block. Every part is a multiple of 128r,
     * so each starts 64-byte aligned. */
    if (add_product(&s.xy_bytes, (size_t)2 * lanes, s.block) != 0)
        return SCRYPT_ENOMEM;
    s.scratch_bytes = s.xy_bytes;
    if (add_product(&s.scratch_bytes, 2 * (size_t)lanes * (size_t)prm->p + 1, s.block) != 0)
        return SCRYPT_ENOMEM;

    if ((size_t)prm->buflen > SIZE_MAX / n_inputs)
        return SCRYPT_ENOMEM;
    s.out_bytes = n_inputs * (size_t)prm->buflen;
    *sz = s;
    return SCRYPT_OK;
}

/* --------------------------------------------------------------- variants */

struct built_variant {
    const struct scrypt_variant *v;
    unsigned needs; /* SCRYPT_CPU_* bits the CPU must have */
};

/* Every variant this build has, best first. */
static const struct built_variant BUILT[] = {
#if SCRYPT_X86
    {&scrypt_variant_avx512, SCRYPT_CPU_AVX512},
    {&scrypt_variant_avx2, SCRYPT_CPU_AVX2},
    {&scrypt_variant_sse2, SCRYPT_CPU_SSE2},
#endif
    {&scrypt_variant_portable, 0},
};
#define N_BUILT (sizeof(BUILT) / sizeof(BUILT[0]))
_Static_assert(N_BUILT <= SCRYPT_MAX_VARIANTS, "raise SCRYPT_MAX_VARIANTS");

static const struct built_variant *find_built(const struct scrypt_variant *v)
{
    size_t i;

    for (i = 0; i < N_BUILT; i++)
        if (BUILT[i].v == v)
            return &BUILT[i];
    return NULL;
}

const struct scrypt_variant *scrypt_variant_find(const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < N_BUILT; i++)
        if (strcmp(BUILT[i].v->name, name) == 0)
            return BUILT[i].v;
    return NULL;
}

int scrypt_variant_supported(const struct scrypt_variant *v)
{
    const struct built_variant *bv = find_built(v);

    return bv != NULL && (scrypt_cpu_features() & bv->needs) == bv->needs;
}

unsigned scrypt_variant_lanes(const struct scrypt_variant *v)
{
    unsigned lanes = 1;
    size_t i;

    for (i = 0; i < v->n_kernels; i++)
        if (v->kernels[i].lanes > lanes)
            lanes = v->kernels[i].lanes;
    return lanes;
}

static size_t list_variants(const struct scrypt_variant **out, size_t cap, int only_supported)
{
    unsigned have = scrypt_cpu_features();
    size_t i, n = 0;

    for (i = 0; i < N_BUILT; i++) {
        if (only_supported && (have & BUILT[i].needs) != BUILT[i].needs)
            continue;
        if (n < cap)
            out[n] = BUILT[i].v;
        n++;
    }
    return n;
}

size_t scrypt_variants_built(const struct scrypt_variant **out, size_t cap)
{
    return list_variants(out, cap, 0);
}

size_t scrypt_variants_supported(const struct scrypt_variant **out, size_t cap)
{
    return list_variants(out, cap, 1);
}

/* ------------------------------------------------------- block word order */

/* Word that storage position i of a diagonal-order block holds (see
 * scrypt_native.h). */
static const unsigned char DIAGONAL[16] = {0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11};

static uint32_t le32dec(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void le32enc(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)x;
    p[1] = (uint8_t)(x >> 8);
    p[2] = (uint8_t)(x >> 16);
    p[3] = (uint8_t)(x >> 24);
}

/* Little-endian bytes -> host words in the kernel's order (nblocks 64-byte blocks). */
static void bytes_to_words(const uint8_t *src, uint32_t *dst, size_t nblocks, int diagonal)
{
    size_t b, i;

    for (b = 0; b < nblocks; b++)
        for (i = 0; i < 16; i++)
            dst[b * 16 + i] = le32dec(src + 64 * b + 4 * (diagonal ? DIAGONAL[i] : i));
}

static void words_to_bytes(const uint32_t *src, uint8_t *dst, size_t nblocks, int diagonal)
{
    size_t b, i;

    for (b = 0; b < nblocks; b++)
        for (i = 0; i < 16; i++)
            le32enc(dst + 64 * b + 4 * (diagonal ? DIAGONAL[i] : i), src[b * 16 + i]);
}

/* ---------------------------------------------------------------- context */

int scrypt_ctx_init(struct scrypt_ctx *ctx, const char *variant_name)
{
    const struct scrypt_variant *v = scrypt_variant_find(variant_name);

    memset(ctx, 0, sizeof(*ctx));
    if (v == NULL)
        return SCRYPT_EVARIANT;
    if (!scrypt_variant_supported(v))
        return SCRYPT_EUNSUPPORTED;
    ctx->variant = v;
    ctx->lanes = scrypt_variant_lanes(v);
    return SCRYPT_OK;
}

void scrypt_ctx_wipe(struct scrypt_ctx *ctx)
{
    if (ctx->dirty)
        scrypt_secure_wipe(ctx->buf.p, ctx->buf.bytes);
    ctx->dirty = 0;
}

void scrypt_ctx_free(struct scrypt_ctx *ctx)
{
    scrypt_bigbuf_free(&ctx->buf, ctx->dirty);
    scrypt_bigbuf_free(&ctx->scratch, 1);
    ctx->dirty = 0;
}

size_t scrypt_ctx_buffer_bytes(const struct scrypt_ctx *ctx)
{
    return ctx->buf.p != NULL ? ctx->buf.bytes : 0;
}

int scrypt_ctx_buffer_is_zero(const struct scrypt_ctx *ctx)
{
    const size_t len = scrypt_ctx_buffer_bytes(ctx);
    unsigned char acc = 0;
    size_t i;

    for (i = 0; i < len; i++)
        acc |= ctx->buf.p[i];
    return acc == 0;
}

int scrypt_ctx_footprint(const struct scrypt_variant *v, const struct scrypt_params *prm, size_t *bytes)
{
    const unsigned lanes = scrypt_variant_lanes(v);
    struct scrypt_sizes sz;
    size_t big, scratch;
    int rc;

    *bytes = 0;
    rc = scrypt_check_params(prm, NULL, 0);
    if (rc == SCRYPT_OK)
        rc = scrypt_batch_sizes(prm, lanes, lanes, &sz);
    if (rc != SCRYPT_OK)
        return rc;
    big = scrypt_bigbuf_footprint(sz.big_bytes);
    scratch = scrypt_bigbuf_footprint(sz.scratch_bytes);
    if (big == 0 || scratch == 0 || scratch > SIZE_MAX - big)
        return SCRYPT_ENOMEM;
    *bytes = big + scratch;
    return SCRYPT_OK;
}

/*
 * Make *bb hold `need` bytes. A buffer more than four times what a full
 * batch (`full` bytes) of these parameters uses is given back, so one
 * large batch does not pin its memory for good. `holds_state`: wipe the
 * old buffer before it goes.
 */
static int fit_buffer(struct scrypt_bigbuf *bb, size_t need, size_t full, int holds_state, int lock)
{
    if (bb->p != NULL && bb->bytes >= need && bb->bytes / 4 <= full)
        return SCRYPT_OK;
    scrypt_bigbuf_free(bb, holds_state);
    switch (scrypt_bigbuf_alloc(bb, need, lock ? SCRYPT_BIGBUF_LOCK : 0)) {
    case SCRYPT_BIGBUF_OK:
        return SCRYPT_OK;
    case SCRYPT_BIGBUF_ELOCK:
        return SCRYPT_ELOCK;
    default:
        return SCRYPT_ENOMEM;
    }
}

/* Both buffers for a batch of these sizes: ROMix's V holding `need` bytes
 * (a full batch's is sz->big_bytes), and the small state. */
static int fit_buffers(struct scrypt_ctx *ctx, const struct scrypt_sizes *sz, size_t need)
{
    int rc = fit_buffer(&ctx->buf, need, sz->big_bytes, ctx->dirty, ctx->lock_memory);

    if (ctx->buf.p == NULL)
        ctx->dirty = 0;
    if (rc == SCRYPT_OK)
        rc = fit_buffer(&ctx->scratch, sz->scratch_bytes, sz->scratch_bytes, 1, ctx->lock_memory);
    return rc;
}

int scrypt_ctx_reserve(struct scrypt_ctx *ctx, const struct scrypt_params *prm)
{
    struct scrypt_sizes sz;
    int rc;

    if (ctx->variant == NULL || scrypt_check_params(prm, NULL, 0) != SCRYPT_OK)
        return SCRYPT_EPARAM;
    rc = scrypt_batch_sizes(prm, ctx->lanes, ctx->lanes, &sz);
    if (rc != SCRYPT_OK)
        return rc;
    rc = fit_buffers(ctx, &sz, sz.big_bytes);
    if (rc != SCRYPT_OK)
        return rc;
    /* Writing every byte maps every page now, and leaves nothing of an earlier batch. */
    scrypt_secure_wipe(ctx->buf.p, ctx->buf.bytes);
    scrypt_secure_wipe(ctx->scratch.p, ctx->scratch.bytes);
    ctx->dirty = 0;
    return SCRYPT_OK;
}

/* One batch's small working memory, laid out in the context's scratch
 * buffer (every part 64-byte aligned, see scrypt_batch_sizes). */
struct scratch {
    uint8_t *B;       /* jobs * 128r bytes: PBKDF2 output, ROMix input/output */
    uint32_t *words;  /* the same jobs in the kernels' word layout */
    uint32_t *filler; /* 32r words: input of a pass's unused lanes */
    uint8_t *XY;      /* kernel scratch for the widest kernel */
};

/* The batch's jobs take no more than a full batch's, for which
 * scrypt_batch_sizes bounded every offset below. */
static void scratch_layout(struct scratch *s, uint8_t *mem, const struct scrypt_sizes *sz)
{
    s->B = mem;
    s->words = (uint32_t *)(void *)(mem + sz->jobs * sz->block);
    s->filler = (uint32_t *)(void *)(mem + 2 * sz->jobs * sz->block);
    s->XY = mem + (2 * sz->jobs + 1) * sz->block;
}

static const uint8_t EMPTY[1];

static int check_batch(const struct scrypt_ctx *ctx, const uint8_t *const *inputs, const size_t *input_lens,
                       size_t n_inputs, const uint8_t *salt, size_t salt_len, const struct scrypt_params *prm)
{
    size_t i;

    if (ctx->variant == NULL || n_inputs < 1 || n_inputs > ctx->lanes)
        return SCRYPT_EPARAM;
    if (scrypt_check_params(prm, NULL, 0) != SCRYPT_OK)
        return SCRYPT_EPARAM;
    /* OpenSSL takes password and salt lengths as int. */
    if (salt_len > INT_MAX || (salt == NULL && salt_len != 0))
        return SCRYPT_EPARAM;
    for (i = 0; i < n_inputs; i++)
        if (input_lens[i] > INT_MAX || (inputs[i] == NULL && input_lens[i] != 0))
            return SCRYPT_EPARAM;
    return SCRYPT_OK;
}

/* Run the planned kernel passes over all jobs (RFC 7914 section 6, step 2). */
static void romix_all(struct scrypt_ctx *ctx, const struct scrypt_plan_step *steps, size_t n_steps,
                      struct scratch *s, const struct scrypt_sizes *sz, uint32_t r, uint32_t N)
{
    const size_t words_per_job = sz->block / 4;
    size_t st, job = 0;

    for (st = 0; st < n_steps; st++) {
        const struct scrypt_kernel *k = steps[st].kernel;
        uint32_t *lane_B[SCRYPT_MAX_LANES];
        unsigned l;

        /* Unused lanes of a pass repeat its first job's input from a copy,
         * so they do harmless work and write nothing that is read back. */
        if (steps[st].jobs < k->lanes)
            memcpy(s->filler, s->words + job * words_per_job, sz->block);
        for (l = 0; l < k->lanes; l++)
            lane_B[l] = l < steps[st].jobs ? s->words + (job + l) * words_per_job : s->filler;
        k->romix(lane_B, r, N, ctx->buf.p, s->XY);
        job += steps[st].jobs;
    }
}

int scrypt_hash_batch(struct scrypt_ctx *ctx, const uint8_t *const *inputs, const size_t *input_lens,
                      size_t n_inputs, const uint8_t *salt, size_t salt_len, const struct scrypt_params *prm,
                      uint8_t *out)
{
    struct scrypt_plan_step steps[SCRYPT_MAX_JOBS];
    struct scrypt_sizes sz;
    struct scratch s;
    const uint8_t *pw[SCRYPT_MAX_LANES];
    size_t n_steps, i;
    unsigned widest = 1;
    int rc;

    rc = check_batch(ctx, inputs, input_lens, n_inputs, salt, salt_len, prm);
    if (rc != SCRYPT_OK)
        return rc;
    /* Every size and offset below is bounded here, before any is computed. */
    rc = scrypt_batch_sizes(prm, n_inputs, ctx->lanes, &sz);
    if (rc != SCRYPT_OK)
        return rc;
    if (salt == NULL)
        salt = EMPTY;
    for (i = 0; i < n_inputs; i++)
        pw[i] = inputs[i] != NULL ? inputs[i] : EMPTY;

    /* Each input is p ROMix jobs of one 128r-byte block each. */
    n_steps = scrypt_plan(ctx->variant, (unsigned)sz.jobs, steps);
    for (i = 0; i < n_steps; i++)
        if (steps[i].kernel->lanes > widest)
            widest = steps[i].kernel->lanes;

    /* ROMix's V: 128r * N bytes for each lane of the widest pass (at most
     * ctx->lanes, so within sz.big_bytes). */
    rc = fit_buffers(ctx, &sz, sz.lane_bytes * widest);
    if (rc != SCRYPT_OK)
        return rc;
    scratch_layout(&s, ctx->scratch.p, &sz);
    ctx->dirty = 1;

    /* RFC 7914 section 6, step 1: B = PBKDF2-HMAC-SHA256(P, S, 1, p * 128r),
     * the input's p blocks side by side. */
    for (i = 0; i < n_inputs; i++) {
        if (PKCS5_PBKDF2_HMAC((const char *)pw[i], (int)input_lens[i], salt, (int)salt_len, 1, EVP_sha256(),
                              (int)sz.input_bytes, s.B + i * sz.input_bytes) != 1) {
            rc = SCRYPT_ECRYPTO;
            goto done;
        }
    }

    /* Step 2: B_i = ROMix(B_i, N, r) for every block of every input. */
    bytes_to_words(s.B, s.words, sz.jobs * sz.block / 64, ctx->variant->diagonal);
    romix_all(ctx, steps, n_steps, &s, &sz, (uint32_t)prm->r, (uint32_t)prm->N);
    words_to_bytes(s.words, s.B, sz.jobs * sz.block / 64, ctx->variant->diagonal);

    /* Step 3: DK = PBKDF2-HMAC-SHA256(P, B, 1, dkLen). */
    for (i = 0; i < n_inputs; i++) {
        if (PKCS5_PBKDF2_HMAC((const char *)pw[i], (int)input_lens[i], s.B + i * sz.input_bytes,
                              (int)sz.input_bytes, 1, EVP_sha256(), (int)prm->buflen,
                              out + i * (size_t)prm->buflen) != 1) {
            rc = SCRYPT_ECRYPTO;
            goto done;
        }
    }
    rc = SCRYPT_OK;
done:
    /* The small state (B holds the input's PBKDF2) never outlives the batch. */
    scrypt_secure_wipe(ctx->scratch.p, ctx->scratch.bytes);
    return rc;
}
