/*
 * kernel_bound.c - what bounds the avx2x6 ROMix kernel on this machine: its
 * own parts timed alone, beside what the core and the memory can do.
 *
 *   kernel_bound [N]     (default 65536; r = 8; one thread)
 *
 * It includes romix_avx2.c, so the kernel measured is the one that ships.
 * Figures, one per line, "name value unit":
 *   clock_ghz            a chain of dependent scalar adds (1 per cycle)
 *   mix_ops_per_cycle    independent 256-bit ops in the kernel's proportions
 *                        (per register per Salsa20/8: 36 add, 64 shifts,
 *                        32 or, 38 xor, 24 shuffles)
 *   salsa_cycles         one Salsa20/8 on 3 registers (6 hashes), alone
 *   loop1_ms, loop1_compute_ms, loop2_ms, loop2_compute_ms
 *                        ROMix's loops for 6 hashes: writing V / without
 *                        writing it; reading V_j / with every V_j one block
 *                        already in L1
 *   stream_gbs, random_block_gbs
 *                        non-temporal store bandwidth; reads of random
 *                        1 KiB blocks (V_j's access pattern) per second
 *   hashes_per_second    the whole kernel, one thread
 */
#define _GNU_SOURCE
#include "../romix_avx2.c"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#if SCRYPT_X86

#define BOUND_ATTR __attribute__((target("avx2")))

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double clock_ghz(void)
{
    unsigned long n = 400000000UL, x = 1, i;
    double t = now();

    for (i = 0; i < n; i += 4)
        __asm__ volatile("add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0" : "+r"(x));
    return (double)n / (now() - t) / 1e9;
}

#define R8(op) op(a0) op(a1) op(a2) op(a3) op(a4) op(a5) op(a6) op(a7) \
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7), "+x"(k));
#define OP_ADD(a) a = _mm256_add_epi32(a, k);
#define OP_SHL(a) a = _mm256_slli_epi32(a, 7);
#define OP_SHR(a) a = _mm256_srli_epi32(a, 25);
#define OP_OR(a) a = _mm256_or_si256(a, k);
#define OP_XOR(a) a = _mm256_xor_si256(a, k);
#define OP_SHUF(a) a = _mm256_shuffle_epi32(a, 0x93);

/* 8 independent chains of 36 add, 32 + 32 shifts, 32 or, 36 xor, 24 shuffles (per 192). */
static BOUND_ATTR double mix_ops_per_second(void)
{
    __m256i k = _mm256_set1_epi32(3), a0 = k, a1 = k, a2 = k, a3 = k, a4 = k, a5 = k, a6 = k, a7 = k;
    const long n = 2000000;
    long i;
    int j;
    double t = now();

    for (i = 0; i < n; i++)
        for (j = 0; j < 4; j++) {
            R8(OP_ADD) R8(OP_SHL) R8(OP_SHR) R8(OP_OR) R8(OP_XOR) R8(OP_SHUF)
            R8(OP_ADD) R8(OP_SHL) R8(OP_SHR) R8(OP_OR) R8(OP_XOR) R8(OP_SHUF)
            R8(OP_ADD) R8(OP_SHL) R8(OP_SHR) R8(OP_OR) R8(OP_XOR) R8(OP_SHUF) R8(OP_ADD) R8(OP_XOR)
            R8(OP_ADD) R8(OP_SHL) R8(OP_SHR) R8(OP_OR) R8(OP_XOR) R8(OP_ADD) R8(OP_ADD) R8(OP_XOR)
        }
    t = now() - t;
    if (_mm256_extract_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)), 0) ==
        _mm256_extract_epi32(_mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)), 1) + 1)
        puts("");
    return (double)n * 4 * 32 * 8 / t;
}

static BOUND_ATTR __attribute__((noinline)) double salsa_seconds(void)
{
    __m256i x[3][4];
    const long n = 400000;
    long i;
    double t;

    memset(x, 1, sizeof(x));
    t = now();
    for (i = 0; i < n; i++) {
        salsa20_8_avx2x6(x, 3);
        __asm__ volatile("" : : "r"(x) : "memory");
    }
    return (now() - t) / (double)n;
}

static BOUND_ATTR double random_block_gbs(const uint8_t *p, size_t bytes)
{
    const size_t blocks = bytes / 1024, reads = 200000;
    __m256i acc = _mm256_setzero_si256();
    unsigned x = 12345;
    size_t i, l;
    double t = now();

    for (i = 0; i < reads; i++) {
        const uint8_t *b;
        x = x * 1103515245u + 12345u;
        b = p + (size_t)(x >> 4) % blocks * 1024;
        for (l = 0; l < 1024; l += 32)
            acc = _mm256_xor_si256(acc, _mm256_load_si256((const __m256i *)(const void *)(b + l)));
    }
    t = now() - t;
    if (_mm256_extract_epi32(acc, 0) == 0x12345)
        puts("");
    return (double)reads * 1024 / t / 1e9;
}

static BOUND_ATTR double stream_gbs(uint8_t *p, size_t bytes)
{
    __m256i v = _mm256_set1_epi8(3);
    size_t i;
    double t = now();

    for (i = 0; i < bytes; i += 32)
        _mm256_stream_si256((__m256i *)(void *)(p + i), v);
    _mm_sfence();
    return (double)bytes / (now() - t) / 1e9;
}

static BOUND_ATTR int run(uint32_t N)
{
    const uint32_t r = 8;
    const size_t blk = (size_t)128 * r, lanes = 6, vbytes = blk * N * lanes;
    uint8_t *V, *XY, *X, *Y, *swap, *vl[6], *vo[6];
    const uint8_t *hot[6];
    uint32_t *B[6];
    double t, loop1, loop1_compute, loop2, loop2_compute, whole;
    size_t l;
    uint32_t i;
    int reps, rep;

    V = mmap(NULL, vbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    XY = aligned_alloc(64, blk * 2 * lanes);
    if (V == MAP_FAILED || XY == NULL)
        return 1;
    (void)madvise(V, vbytes, MADV_HUGEPAGE);
    memset(V, 0, vbytes);
    memset(XY, 5, blk * 2 * lanes);
    for (l = 0; l < lanes; l++) {
        B[l] = aligned_alloc(64, blk);
        memset(B[l], (int)l + 1, blk);
        vl[l] = V + l * blk * N;
        hot[l] = XY + (l % 2) * blk; /* a block that stays in L1 */
    }
    printf("clock_ghz %.2f GHz\n", clock_ghz());
    printf("mix_ops_per_cycle %.2f ops\n", mix_ops_per_second() / 1e9 / clock_ghz());
    printf("salsa_cycles %.0f cycles\n", salsa_seconds() * clock_ghz() * 1e9);

    X = XY;
    Y = XY + blk * lanes;
    t = now();
    for (i = 1; i < N; i++) {
        for (l = 0; l < lanes; l++)
            vo[l] = vl[l] + (size_t)i * blk;
        blockmix_salsa8_avx2x6(X, Y, r, NULL, vo);
        swap = X, X = Y, Y = swap;
    }
    _mm_sfence();
    loop1 = now() - t;
    t = now();
    for (i = 1; i < N; i++) {
        blockmix_salsa8_avx2x6(X, Y, r, NULL, NULL);
        swap = X, X = Y, Y = swap;
    }
    loop1_compute = now() - t;
    t = now();
    X = romix_loop2_avx2x6(X, Y, vl, r, N);
    loop2 = now() - t;
    Y = X == XY ? XY + blk * lanes : XY;
    t = now();
    for (i = 0; i < N; i++) {
        blockmix_salsa8_avx2x6(X, Y, r, hot, NULL);
        swap = X, X = Y, Y = swap;
    }
    loop2_compute = now() - t;
    printf("loop1_ms %.1f ms\nloop1_compute_ms %.1f ms\nloop2_ms %.1f ms\nloop2_compute_ms %.1f ms\n",
           loop1 * 1e3, loop1_compute * 1e3, loop2 * 1e3, loop2_compute * 1e3);
    printf("stream_gbs %.1f GB/s\n", stream_gbs(V, vbytes));
    printf("random_block_gbs %.2f GB/s\n", random_block_gbs(V, vbytes));

    reps = N >= 65536 ? 3 : (int)(3 * 65536 / N);
    t = now();
    for (rep = 0; rep < reps; rep++)
        romix_avx2x6(B, r, N, V, XY);
    whole = now() - t;
    printf("hashes_per_second %.1f h/s\n", (double)reps * lanes * N / 65536 / whole);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t N = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 65536;

    if (!__builtin_cpu_supports("avx2") || N < 2 || (N & (N - 1))) {
        fprintf(stderr, "kernel_bound: needs AVX2 and N a power of two\n");
        return 2;
    }
    return run(N);
}

#else
int main(void)
{
    fprintf(stderr, "kernel_bound: x86 only\n");
    return 2;
}
#endif
