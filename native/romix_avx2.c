/*
 * romix_avx2.c - ROMix with AVX2: two hashes per 256-bit register (128-bit
 * lane h of register k holds diagonal row k of hash h), three such groups
 * interleaved: 6 hashes in flight. AVX2 has no 32-bit rotate, so rotates are
 * shift, shift, or.
 *
 * Kernels: avx2x6 (3 groups of 2), avx2x2 (1 group of 2), avx2x1 (one hash
 * in 128-bit registers, VEX-encoded).
 */
#include "scrypt_native.h"

#if SCRYPT_X86

#include <immintrin.h>
#include <string.h>

#define SIMD_FENCE() _mm_sfence()
#define SIMD_ATTR __attribute__((target("avx2")))

/* --- two hashes per ymm --- */
#define SIMD_VEC __m256i
#define SIMD_W 2
#define SIMD_ADD(a, b) _mm256_add_epi32((a), (b))
#define SIMD_XOR(a, b) _mm256_xor_si256((a), (b))
#define SIMD_ROTL(a, c) _mm256_or_si256(_mm256_slli_epi32((a), (c)), _mm256_srli_epi32((a), 32 - (c)))
#define SIMD_SHUF(a, imm) _mm256_shuffle_epi32((a), (imm))
#define SIMD_LOAD(p) _mm256_load_si256((const __m256i *)(const void *)(p))
#define SIMD_STORE(p, v) _mm256_store_si256((__m256i *)(void *)(p), (v))
#define SIMD_GATHER(p, off)                                                                                 \
    _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_load_si128((const __m128i *)(const void *)((p)[0] + (off)))), \
                            _mm_load_si128((const __m128i *)(const void *)((p)[1] + (off))), 1)
#define SIMD_SCATTER(p, off, v)                                                              \
    do {                                                                                     \
        _mm_stream_si128((__m128i *)(void *)((p)[0] + (off)), _mm256_castsi256_si128(v));     \
        _mm_stream_si128((__m128i *)(void *)((p)[1] + (off)), _mm256_extracti128_si256(v, 1)); \
    } while (0)
/* Rows k and k + 1 of lane 0 are the low halves of a and b; of lane 1, the high halves. */
#define SIMD_SCATTER_PAIR(p, off, a, b)                                                                      \
    do {                                                                                                   \
        _mm256_stream_si256((__m256i *)(void *)((p)[0] + (off)), _mm256_permute2x128_si256((a), (b), 0x20)); \
        _mm256_stream_si256((__m256i *)(void *)((p)[1] + (off)), _mm256_permute2x128_si256((a), (b), 0x31)); \
    } while (0)

#define SIMD_G 3
#define SIMD_NAME(base) base##_avx2x6
#include "romix_template.h"
#undef SIMD_G
#undef SIMD_NAME

#define SIMD_G 1
#define SIMD_NAME(base) base##_avx2x2
#include "romix_template.h"
#undef SIMD_G
#undef SIMD_NAME

#undef SIMD_VEC
#undef SIMD_W
#undef SIMD_ADD
#undef SIMD_XOR
#undef SIMD_ROTL
#undef SIMD_SHUF
#undef SIMD_LOAD
#undef SIMD_STORE
#undef SIMD_GATHER
#undef SIMD_SCATTER
#undef SIMD_SCATTER_PAIR

/* --- one hash in xmm registers --- */
#define SIMD_G 1
#include "simd_xmm.h"
#define SIMD_NAME(base) base##_avx2x1
#include "romix_template.h"

static const struct scrypt_kernel avx2_kernels[] = {
    {"avx2x6", 6, 180000, romix_avx2x6},
    {"avx2x2", 2, 102000, romix_avx2x2},
    {"avx2x1", 1, 91000, romix_avx2x1},
};

const struct scrypt_variant scrypt_variant_avx2 = {
    "avx2",
    1,
    sizeof(avx2_kernels) / sizeof(avx2_kernels[0]),
    avx2_kernels,
};

#else
typedef int scrypt_avx2_not_built; /* ISO C wants a non-empty translation unit */
#endif
