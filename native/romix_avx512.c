/*
 * romix_avx512.c - ROMix with AVX-512F/VL: four hashes per 512-bit register
 * (128-bit lane h of register k holds diagonal row k of hash h, so the
 * per-lane pshufd rotates every hash's rows at once), two such groups
 * interleaved: 8 hashes in flight. Rotates are single vprold instructions.
 *
 * Kernels: avx512x8 (2 groups of 4), avx512x4 (1 group of 4), avx512x1 (one
 * hash in 128-bit registers with the VL form of vprold: the fast path for a
 * lone request).
 */
#include "scrypt_native.h"

#if SCRYPT_X86

#include <immintrin.h>
#include <string.h>

#define SIMD_FENCE() _mm_sfence()
#define SIMD_ATTR __attribute__((target("avx512f,avx512vl")))

/* --- four hashes per zmm --- */
#define SIMD_VEC __m512i
#define SIMD_W 4
#define SIMD_ADD(a, b) _mm512_add_epi32((a), (b))
#define SIMD_XOR(a, b) _mm512_xor_si512((a), (b))
#define SIMD_ROTL(a, c) _mm512_rol_epi32((a), (c))
#define SIMD_SHUF(a, imm) _mm512_shuffle_epi32((a), (_MM_PERM_ENUM)(imm))
#define SIMD_LOAD(p) _mm512_load_si512((const void *)(p))
#define SIMD_STORE(p, v) _mm512_store_si512((void *)(p), (v))
#define AVX512_ROW(p, off, h) _mm_load_si128((const __m128i *)(const void *)((p)[h] + (off)))
#define SIMD_GATHER(p, off)                                                                             \
    _mm512_inserti64x4(                                                                                 \
        _mm512_castsi256_si512(                                                                         \
            _mm256_inserti128_si256(_mm256_castsi128_si256(AVX512_ROW(p, off, 0)), AVX512_ROW(p, off, 1), 1)), \
        _mm256_inserti128_si256(_mm256_castsi128_si256(AVX512_ROW(p, off, 2)), AVX512_ROW(p, off, 3), 1), 1)
#define SIMD_SCATTER(p, off, v)                                                                   \
    do {                                                                                          \
        _mm_stream_si128((__m128i *)(void *)((p)[0] + (off)), _mm512_castsi512_si128(v));          \
        _mm_stream_si128((__m128i *)(void *)((p)[1] + (off)), _mm512_extracti32x4_epi32(v, 1));    \
        _mm_stream_si128((__m128i *)(void *)((p)[2] + (off)), _mm512_extracti32x4_epi32(v, 2));    \
        _mm_stream_si128((__m128i *)(void *)((p)[3] + (off)), _mm512_extracti32x4_epi32(v, 3));    \
    } while (0)

#define SIMD_G 2
#define SIMD_NAME(base) base##_avx512x8
#include "romix_template.h"
#undef SIMD_G
#undef SIMD_NAME

#define SIMD_G 1
#define SIMD_NAME(base) base##_avx512x4
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

/* --- one hash in xmm registers, vprold --- */
#define SIMD_G 1
#define SIMD_ROTL(a, c) _mm_rol_epi32((a), (c))
#include "simd_xmm.h"
#define SIMD_NAME(base) base##_avx512x1
#include "romix_template.h"

static const struct scrypt_kernel avx512_kernels[] = {
    {"avx512x8", 8, 177000, romix_avx512x8},
    {"avx512x4", 4, 126000, romix_avx512x4},
    {"avx512x1", 1, 89000, romix_avx512x1},
};

const struct scrypt_variant scrypt_variant_avx512 = {
    "avx512",
    1,
    sizeof(avx512_kernels) / sizeof(avx512_kernels[0]),
    avx512_kernels,
};

#else
typedef int scrypt_avx512_not_built; /* ISO C wants a non-empty translation unit */
#endif
