/*
 * romix_sse2.c - ROMix with SSE2: one hash per 128-bit register (its four
 * diagonal rows in four registers), several hashes interleaved so their
 * independent dependency chains fill the pipeline.
 *
 * Kernels: sse2x4 (4 hashes interleaved), sse2x2, sse2x1 (one hash).
 */
#include "scrypt_native.h"

#if SCRYPT_X86

#include <emmintrin.h>
#include <string.h>

#define SIMD_FENCE() _mm_sfence()
#define SIMD_ATTR __attribute__((target("sse2")))
#define SIMD_VEC __m128i
#define SIMD_W 1
#define SIMD_ADD(a, b) _mm_add_epi32((a), (b))
#define SIMD_XOR(a, b) _mm_xor_si128((a), (b))
#define SIMD_ROTL(a, c) _mm_or_si128(_mm_slli_epi32((a), (c)), _mm_srli_epi32((a), 32 - (c)))
#define SIMD_SHUF(a, imm) _mm_shuffle_epi32((a), (imm))
#define SIMD_LOAD(p) _mm_load_si128((const __m128i *)(const void *)(p))
#define SIMD_STORE(p, v) _mm_store_si128((__m128i *)(void *)(p), (v))
#define SIMD_GATHER(p, off) SIMD_LOAD((p)[0] + (off))
#define SIMD_SCATTER(p, off, v) _mm_stream_si128((__m128i *)(void *)((p)[0] + (off)), (v))

#define SIMD_G 4
#define SIMD_NAME(base) base##_sse2x4
#include "romix_template.h"
#undef SIMD_G
#undef SIMD_NAME

#define SIMD_G 2
#define SIMD_NAME(base) base##_sse2x2
#include "romix_template.h"
#undef SIMD_G
#undef SIMD_NAME

#define SIMD_G 1
#define SIMD_NAME(base) base##_sse2x1
#include "romix_template.h"
#undef SIMD_G
#undef SIMD_NAME

static const struct scrypt_kernel sse2_kernels[] = {
    {"sse2x4", 4, 212000, romix_sse2x4},
    {"sse2x2", 2, 121000, romix_sse2x2},
    {"sse2x1", 1, 94000, romix_sse2x1},
};

const struct scrypt_variant scrypt_variant_sse2 = {
    "sse2",
    1,
    sizeof(sse2_kernels) / sizeof(sse2_kernels[0]),
    sse2_kernels,
};

#else
typedef int scrypt_sse2_not_built; /* ISO C wants a non-empty translation unit */
#endif
