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
#include "simd_xmm.h"

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
