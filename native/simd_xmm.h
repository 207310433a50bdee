/*
 * simd_xmm.h - the template's vector operations on 128-bit registers: one hash
 * per register (its four diagonal rows in four registers). Shared by every
 * variant's one-hash kernel and by the SSE2 kernels; each includes it inside
 * its own target attribute, so the same source compiles to SSE2, VEX or EVEX.
 * Define SIMD_ROTL first to use a rotate instruction; otherwise rotates are
 * shift, shift, or.
 */
#define SIMD_VEC __m128i
#define SIMD_W 1
#define SIMD_ADD(a, b) _mm_add_epi32((a), (b))
#define SIMD_XOR(a, b) _mm_xor_si128((a), (b))
#ifndef SIMD_ROTL
#define SIMD_ROTL(a, c) _mm_or_si128(_mm_slli_epi32((a), (c)), _mm_srli_epi32((a), 32 - (c)))
#endif
#define SIMD_SHUF(a, imm) _mm_shuffle_epi32((a), (imm))
#define SIMD_LOAD(p) _mm_load_si128((const __m128i *)(const void *)(p))
#define SIMD_STORE(p, v) _mm_store_si128((__m128i *)(void *)(p), (v))
#define SIMD_GATHER(p, off) SIMD_LOAD((p)[0] + (off))
#define SIMD_SCATTER(p, off, v) _mm_stream_si128((__m128i *)(void *)((p)[0] + (off)), (v))
