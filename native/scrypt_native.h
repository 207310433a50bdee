/*
 * scrypt_native.h - what the ROMix kernels and the batch driver share.
 *
 * scrypt(P, S, N, r, p, dkLen) (Percival, "Stronger key derivation via
 * sequential memory-hard functions"; RFC 7914) is
 *
 *     B = PBKDF2-HMAC-SHA256(P, S, 1, p * 128 * r)
 *     B_i = ROMix(B_i, N, r) for each of the p 128*r-byte blocks B_i
 *     DK = PBKDF2-HMAC-SHA256(P, B, 1, dkLen)
 *
 * The driver (scrypt_driver.c) does both PBKDF2 steps with OpenSSL and hands
 * the ROMix jobs to a "kernel", which runs `lanes` independent ROMix jobs at
 * once.
 */
#ifndef SCRYPT_HELPER_NATIVE_H
#define SCRYPT_HELPER_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#define SCRYPT_X86 1
#else
#define SCRYPT_X86 0
#endif

/* Largest lane count of any kernel (AVX-512: 4 hashes per zmm, 2 groups). */
#define SCRYPT_MAX_LANES 8

/*
 * A ROMix kernel runs `lanes` independent ROMix jobs.
 *
 *   B[l]  for l < lanes: 32*r words (128*r bytes), 64-byte aligned, host
 *         byte order, in the variant's word order (see `diagonal` below).
 *         Read as the job's input, overwritten by its output. Two lanes may
 *         point to the same memory only if they carry the same input (the
 *         planner's filler lanes); every kernel reads all inputs before it
 *         writes any output.
 *   V     lanes * 128*r*N bytes, 64-byte aligned: lane l uses the slice
 *         V + l*128*r*N.
 *   XY    SCRYPT_SCRATCH_BYTES(lanes, r) bytes, 64-byte aligned.
 */
typedef void (*scrypt_romix_fn)(uint32_t *const *B, uint32_t r, uint32_t N, uint8_t *V, uint8_t *XY);

#define SCRYPT_SCRATCH_BYTES(lanes, r) ((size_t)256 * (size_t)(r) * (size_t)(lanes))

struct scrypt_kernel {
    const char *name;
    unsigned lanes;
    /* Relative wall time of one pass (microseconds at N=65536, r=8 on the
     * development machine); the batch planner minimises the sum. */
    unsigned cost;
    scrypt_romix_fn romix;
};

struct scrypt_variant {
    const char *name;
    /*
     * Nonzero: each 16-word Salsa20 block is kept in the diagonal order that
     * SIMD code uses (rows (x0,x5,x10,x15), (x4,x9,x14,x3), (x8,x13,x2,x7),
     * (x12,x1,x6,x11)); zero: natural order x0..x15. Word 0 stays word 0
     * either way, so Integerify reads the same position.
     */
    int diagonal;
    size_t n_kernels;
    const struct scrypt_kernel *kernels;
};

extern const struct scrypt_variant scrypt_variant_portable;
#if SCRYPT_X86
extern const struct scrypt_variant scrypt_variant_sse2;
extern const struct scrypt_variant scrypt_variant_avx2;
extern const struct scrypt_variant scrypt_variant_avx512;
#endif

#endif /* SCRYPT_HELPER_NATIVE_H */
