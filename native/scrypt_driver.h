/*
 * scrypt_driver.h - scrypt (RFC 7914) for a batch of independent inputs,
 * in plain C: PBKDF2 from OpenSSL's libcrypto, ROMix in the SIMD kernels
 * of one variant (see scrypt_native.h), reusable buffers per context (kept
 * out of core dumps, locked in RAM on request). It validates every
 * parameter itself, and bounds every size before computing it, so any
 * caller (the Python binding in module.c, the C tests) gets the same
 * limits.
 *
 * A context is not thread-safe: one thread at a time per context. Several
 * contexts may run at once.
 */
#ifndef SCRYPT_HELPER_DRIVER_H
#define SCRYPT_HELPER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "scrypt_native.h"
#include "scrypt_platform.h"

/*
 * The parameter limits are defined once, in
 * src/scrypt_helper/engines/param_limits.py; setup.py (through
 * native/limit_macros.py) passes each as -DSCRYPT_<NAME>=<value>.
 */
#ifndef SCRYPT_MAX_LOG2_N
#error "SCRYPT_MAX_LOG2_N is undefined: build with setup.py, which reads it from src/scrypt_helper/engines/param_limits.py"
#endif
#ifndef SCRYPT_MAX_R
#error "SCRYPT_MAX_R is undefined: build with setup.py, which reads it from src/scrypt_helper/engines/param_limits.py"
#endif
#ifndef SCRYPT_MAX_P
#error "SCRYPT_MAX_P is undefined: build with setup.py, which reads it from src/scrypt_helper/engines/param_limits.py"
#endif
#ifndef SCRYPT_MAX_BUFLEN
#error "SCRYPT_MAX_BUFLEN is undefined: build with setup.py, which reads it from src/scrypt_helper/engines/param_limits.py"
#endif

#define SCRYPT_MAX_N ((uint64_t)1 << SCRYPT_MAX_LOG2_N)
/* Most ROMix jobs one batch holds: p of them per input. */
#define SCRYPT_MAX_JOBS (SCRYPT_MAX_LANES * SCRYPT_MAX_P)
/* Every variant any build has (portable, sse2, avx2, avx512). */
#define SCRYPT_MAX_VARIANTS 4

/* Result of the driver's calls. */
enum scrypt_status {
    SCRYPT_OK = 0,
    SCRYPT_EPARAM,       /* a parameter or the batch size is out of range */
    SCRYPT_ENOMEM,       /* a buffer could not be allocated */
    SCRYPT_ECRYPTO,      /* OpenSSL's PBKDF2-HMAC-SHA256 failed */
    SCRYPT_EVARIANT,     /* no variant of that name in this build */
    SCRYPT_EUNSUPPORTED, /* the variant is built but this CPU lacks its instructions */
    SCRYPT_ELOCK,        /* the context locks its memory, and mlock refused (RLIMIT_MEMLOCK) */
};

/* A short English description of a status code. */
const char *scrypt_strerror(int status);

/* One batch's parameters. 64-bit so that a caller can pass whatever it was
 * given (saturated) and leave the range checks to the driver. */
struct scrypt_params {
    uint64_t N;      /* CPU/memory cost: a power of two, 2..SCRYPT_MAX_N */
    uint64_t r;      /* block size: 1..SCRYPT_MAX_R */
    uint64_t p;      /* parallelism: 1..SCRYPT_MAX_P */
    uint64_t buflen; /* output bytes (dkLen): 1..SCRYPT_MAX_BUFLEN */
};

/*
 * SCRYPT_OK when the parameters are within the limits, else SCRYPT_EPARAM
 * with a message naming the first bad one (e.g. "r must be 1..32") written
 * to why (why may be NULL).
 */
int scrypt_check_params(const struct scrypt_params *prm, char *why, size_t why_len);

/* The sizes of one batch, each bounded before it is computed. */
struct scrypt_sizes {
    size_t jobs;          /* ROMix jobs of the batch: n_inputs * p */
    size_t block;         /* one job's block, B_i: 128 * r bytes */
    size_t input_bytes;   /* one input's B: p * 128 * r bytes (an int, for OpenSSL) */
    size_t lane_bytes;    /* one lane's V: 128 * r * N bytes */
    size_t big_bytes;     /* V for every lane of the context: lanes * 128 * r * N bytes */
    size_t xy_bytes;      /* the widest kernel's scratch: SCRYPT_SCRATCH_BYTES(lanes, r) */
    size_t scratch_bytes; /* a full batch's small state: B and its words (lanes * p jobs each), a filler block, XY */
    size_t out_bytes;     /* the outputs: n_inputs * buflen */
};

/*
 * Fill *sz for a batch of n_inputs (1..lanes) on a context of `lanes`
 * (1..SCRYPT_MAX_LANES). Checks only what the code's types can hold, not
 * the SCRYPT_MAX_* limits (scrypt_check_params does that), so that no
 * size can wrap whatever the limits are: SCRYPT_EPARAM when a value is
 * zero or past what the kernels (uint32_t N, r), OpenSSL (int lengths) or
 * the planner (SCRYPT_MAX_JOBS) take; SCRYPT_ENOMEM when a size would pass
 * SIZE_MAX. *sz is zeroed unless SCRYPT_OK.
 */
int scrypt_batch_sizes(const struct scrypt_params *prm, size_t n_inputs, unsigned lanes, struct scrypt_sizes *sz);

/* ------------------------------------------------------------- variants */

/* The variant of that name in this build, or NULL. */
const struct scrypt_variant *scrypt_variant_find(const char *name);

/* Nonzero when this CPU can run the variant. */
int scrypt_variant_supported(const struct scrypt_variant *v);

/* Most inputs one batch of the variant takes (its widest kernel's lanes). */
unsigned scrypt_variant_lanes(const struct scrypt_variant *v);

/* Store up to `cap` variants, best first, in out[]; return how many there
 * are. _built: every variant this build has; _supported: those this CPU
 * can run (portable always). */
size_t scrypt_variants_built(const struct scrypt_variant **out, size_t cap);
size_t scrypt_variants_supported(const struct scrypt_variant **out, size_t cap);

/* -------------------------------------------------------------- context */

/* Per-thread state: a variant and its reusable buffers. */
struct scrypt_ctx {
    const struct scrypt_variant *variant;
    unsigned lanes;               /* scrypt_variant_lanes(variant) */
    struct scrypt_bigbuf buf;     /* ROMix's V: up to lanes * 128*r*N bytes, kept between batches */
    struct scrypt_bigbuf scratch; /* a full batch's small state, wiped after every batch */
    int dirty;                    /* buf may hold hash state */
    int lock_memory;              /* nonzero: mlock both buffers (set it after scrypt_ctx_init) */
};

/* Set up *ctx for the named variant (no memory is allocated yet): SCRYPT_OK,
 * SCRYPT_EVARIANT or SCRYPT_EUNSUPPORTED (*ctx is then left empty). */
int scrypt_ctx_init(struct scrypt_ctx *ctx, const char *variant_name);

/*
 * *bytes = what a context of variant v maps (and with lock_memory locks)
 * for a full batch of these parameters: its ROMix buffer and its small
 * state, rounded up as they are allocated. SCRYPT_OK, or the error of
 * scrypt_check_params or scrypt_batch_sizes.
 */
int scrypt_ctx_footprint(const struct scrypt_variant *v, const struct scrypt_params *prm, size_t *bytes);

/*
 * out + i*buflen = scrypt(inputs[i], salt, N, r, p, buflen) for each
 * i < n_inputs (1..ctx->lanes); out holds n_inputs * buflen bytes. Returns
 * SCRYPT_OK, SCRYPT_EPARAM (out untouched), SCRYPT_ENOMEM, SCRYPT_ELOCK or
 * SCRYPT_ECRYPTO. The big buffer is grown or shrunk to fit and left holding
 * hash state until scrypt_ctx_wipe; all other working memory is wiped
 * before return.
 */
int scrypt_hash_batch(struct scrypt_ctx *ctx, const uint8_t *const *inputs, const size_t *input_lens,
                      size_t n_inputs, const uint8_t *salt, size_t salt_len, const struct scrypt_params *prm,
                      uint8_t *out);

/*
 * Allocate now what a full batch (ctx->lanes inputs) of these parameters
 * uses, and write every page of it, so that no batch waits for the
 * memory: the cost of the page faults without the cost of a batch. The
 * buffers hold zeros afterwards. SCRYPT_OK, SCRYPT_EPARAM, SCRYPT_ENOMEM
 * or SCRYPT_ELOCK.
 */
int scrypt_ctx_reserve(struct scrypt_ctx *ctx, const struct scrypt_params *prm);

/* Zero the big buffer, keeping it allocated for the next batch. */
void scrypt_ctx_wipe(struct scrypt_ctx *ctx);

/* Wipe and release the buffers; the context stays usable. */
void scrypt_ctx_free(struct scrypt_ctx *ctx);

/* Bytes held for the big buffer (0 when none is allocated). */
size_t scrypt_ctx_buffer_bytes(const struct scrypt_ctx *ctx);

/* Nonzero when every byte of the big buffer is zero (or none is held). */
int scrypt_ctx_buffer_is_zero(const struct scrypt_ctx *ctx);

#endif /* SCRYPT_HELPER_DRIVER_H */
