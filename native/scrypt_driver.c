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

/*
 * Make the big buffer hold `need` bytes. A buffer more than four times what
 * a full batch (`full` bytes) of these parameters uses is given back, so one
 * large batch does not pin its memory for good.
 */
static int fit_buffer(struct scrypt_ctx *ctx, size_t need, size_t full)
{
    struct scrypt_bigbuf *bb = &ctx->buf;

    if (bb->p != NULL && bb->bytes >= need && bb->bytes / 4 <= full)
        return SCRYPT_OK;
    scrypt_ctx_free(ctx);
    if (scrypt_bigbuf_alloc(bb, need) != 0)
        return SCRYPT_ENOMEM;
    return SCRYPT_OK;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* One batch's small working memory: a single allocation, wiped after use. */
struct scratch {
    uint8_t *B;       /* jobs * 128r bytes: PBKDF2 output, ROMix input/output */
    uint32_t *words;  /* the same jobs in the kernels' word layout */
    uint32_t *filler; /* 32r words: input of a pass's unused lanes */
    uint8_t *XY;      /* kernel scratch for the widest kernel */
    uint8_t *mem;
    size_t mem_len;
};

static int scratch_alloc(struct scratch *s, size_t jobs, size_t blk, size_t xy_bytes)
{
    size_t off_words = align64(jobs * blk);
    size_t off_filler = off_words + align64(jobs * blk);
    size_t off_XY = off_filler + align64(blk);

    memset(s, 0, sizeof(*s));
    s->mem_len = off_XY + align64(xy_bytes);
    /* A multiple of 64, as aligned_alloc wants; 64 bytes suit every kernel. */
    s->mem = aligned_alloc(64, s->mem_len);
    if (s->mem == NULL)
        return SCRYPT_ENOMEM;
    memset(s->mem, 0, s->mem_len);
    s->B = s->mem;
    s->words = (uint32_t *)(void *)(s->mem + off_words);
    s->filler = (uint32_t *)(void *)(s->mem + off_filler);
    s->XY = s->mem + off_XY;
    return SCRYPT_OK;
}

static void scratch_free(struct scratch *s)
{
    if (s->mem != NULL) {
        scrypt_secure_wipe(s->mem, s->mem_len);
        free(s->mem);
    }
    memset(s, 0, sizeof(*s));
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
                      struct scratch *s, uint32_t r, uint32_t N)
{
    const size_t blk = (size_t)128 * r;
    const size_t words_per_job = blk / 4;
    size_t st, job = 0;

    for (st = 0; st < n_steps; st++) {
        const struct scrypt_kernel *k = steps[st].kernel;
        uint32_t *lane_B[SCRYPT_MAX_LANES];
        unsigned l;

        /* Unused lanes of a pass repeat its first job's input from a copy,
         * so they do harmless work and write nothing that is read back. */
        if (steps[st].jobs < k->lanes)
            memcpy(s->filler, s->words + job * words_per_job, blk);
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
    struct scratch s;
    const uint8_t *pw[SCRYPT_MAX_LANES];
    uint32_t N, r, p, buflen;
    size_t blk, per_lane, n_steps, i, jobs;
    unsigned widest = 1;
    int rc;

    rc = check_batch(ctx, inputs, input_lens, n_inputs, salt, salt_len, prm);
    if (rc != SCRYPT_OK)
        return rc;
    N = (uint32_t)prm->N;
    r = (uint32_t)prm->r;
    p = (uint32_t)prm->p;
    buflen = (uint32_t)prm->buflen;
    if (salt == NULL)
        salt = EMPTY;
    for (i = 0; i < n_inputs; i++)
        pw[i] = inputs[i] != NULL ? inputs[i] : EMPTY;

    /* Each input is p ROMix jobs of one 128r-byte block each. */
    blk = (size_t)128 * r;
    jobs = n_inputs * p;
    n_steps = scrypt_plan(ctx->variant, (unsigned)jobs, steps);
    for (i = 0; i < n_steps; i++)
        if (steps[i].kernel->lanes > widest)
            widest = steps[i].kernel->lanes;

    /* ROMix's V: 128r * N bytes for each lane of the widest pass. */
    per_lane = blk * N;
    if (per_lane / N != blk || per_lane > SIZE_MAX / SCRYPT_MAX_LANES)
        return SCRYPT_ENOMEM;
    rc = fit_buffer(ctx, per_lane * widest, per_lane * ctx->lanes);
    if (rc != SCRYPT_OK)
        return rc;
    rc = scratch_alloc(&s, jobs, blk, SCRYPT_SCRATCH_BYTES(ctx->lanes, r));
    if (rc != SCRYPT_OK)
        return rc;
    ctx->dirty = 1;

    /* RFC 7914 section 6, step 1: B = PBKDF2-HMAC-SHA256(P, S, 1, p * 128r),
     * the input's p blocks side by side. */
    for (i = 0; i < n_inputs; i++) {
        if (PKCS5_PBKDF2_HMAC((const char *)pw[i], (int)input_lens[i], salt, (int)salt_len, 1, EVP_sha256(),
                              (int)(p * blk), s.B + i * p * blk) != 1) {
            rc = SCRYPT_ECRYPTO;
            goto done;
        }
    }

    /* Step 2: B_i = ROMix(B_i, N, r) for every block of every input. */
    bytes_to_words(s.B, s.words, jobs * 2 * r, ctx->variant->diagonal);
    romix_all(ctx, steps, n_steps, &s, r, N);
    words_to_bytes(s.words, s.B, jobs * 2 * r, ctx->variant->diagonal);

    /* Step 3: DK = PBKDF2-HMAC-SHA256(P, B, 1, dkLen). */
    for (i = 0; i < n_inputs; i++) {
        if (PKCS5_PBKDF2_HMAC((const char *)pw[i], (int)input_lens[i], s.B + i * p * blk, (int)(p * blk), 1,
                              EVP_sha256(), (int)buflen, out + i * buflen) != 1) {
            rc = SCRYPT_ECRYPTO;
            goto done;
        }
    }
    rc = SCRYPT_OK;
done:
    scratch_free(&s);
    return rc;
}
