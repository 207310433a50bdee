/*
 * romix_template.h - the one multi-lane ROMix loop, instantiated per
 * instruction set and shape by including this file with these macros set:
 *
 *   SIMD_NAME(base)      mangles a function name (e.g. base##_avx512x8)
 *   SIMD_ATTR            attribute that enables the instruction set
 *   SIMD_VEC             vector type; each 128-bit lane h holds one row of
 *                        hash h, so vector k of a group holds row k of
 *                        SIMD_W hashes
 *   SIMD_W               hashes per vector (128-bit lanes per vector)
 *   SIMD_G               independent groups interleaved (lanes = W * G)
 *   SIMD_ADD(a, b)       32-bit lane-wise add
 *   SIMD_XOR(a, b)       xor
 *   SIMD_ROTL(a, c)      32-bit rotate left by constant c
 *   SIMD_SHUF(a, imm)    32-bit shuffle within each 128-bit lane (pshufd)
 *   SIMD_LOAD(p)         aligned load of one vector
 *   SIMD_STORE(p, v)     aligned store of one vector
 *   SIMD_GATHER(p, off)  vector whose 128-bit lane h is the 16 bytes at
 *                        p[h] + off (h < SIMD_W)
 *   SIMD_SCATTER(p, off, v)  store 128-bit lane h of v at p[h] + off; a
 *                        non-temporal store (V is written once, read much
 *                        later at random: skipping the cache saves the
 *                        read-for-ownership traffic)
 *   SIMD_SCATTER_PAIR(p, off, a, b)  optional: rows k and k+1 (a, b) of each
 *                        lane h at p[h] + off, as one 32-byte non-temporal
 *                        store per lane (AVX2: a 64-byte line in two stores
 *                        instead of four, which made the whole kernel
 *                        1.28-1.30x as fast on AMD Zen 3; the first loop's
 *                        writes had cost about as much as its compute)
 *   SIMD_FENCE()         orders the non-temporal stores (sfence)
 *
 * Blocks are in the diagonal word order (see scrypt_native.h): row 0 is
 * (x0, x5, x10, x15), row 1 (x4, x9, x14, x3), row 2 (x8, x13, x2, x7),
 * row 3 (x12, x1, x6, x11). Salsa20's column round then works on whole
 * rows, and rotating rows 1..3 by one, two and three words turns the rows
 * into the row round's quarter-round inputs.
 *
 * ROMix's second loop reads V_j at random: its lines are prefetched as soon
 * as j is known, and the 2-group kernels run their groups a few BlockMix
 * steps apart so one group's fetch overlaps the other's work (romix_loop2).
 *
 * Memory: each lane's V array is its own slice, in the same per-hash layout
 * as B (block i of V at V_l + i*128r, row k of its sub-block b at
 * +b*64 + k*16). The working X of all lanes lives in the scratch XY,
 * interleaved so that one aligned vector load gives row k of block b for
 * the W hashes of group g: offset ((b*G + g)*4 + k) * 16W.
 *
 * The file undefines its own helper macros at the end; the includer
 * undefines the SIMD_* parameters before including it again.
 */

#define TPL_LANES (SIMD_W * SIMD_G)
#define TPL_VBYTES ((size_t)16 * SIMD_W)
#define TPL_OFF(b, g, k) ((((size_t)(b) * SIMD_G + (g)) * 4 + (k)) * TPL_VBYTES)
#define TPL_INLINE static inline __attribute__((always_inline)) SIMD_ATTR
/* __builtin_prefetch locality for V_j: 2 is prefetcht1 (into L2). Fetching
 * the whole block into L1 (3) or non-temporally (0) measured slower than
 * not prefetching at all (AMD Zen 4, N = 65536, r = 8). */
#define TPL_PF_LOCALITY 2
/* Steps each group of a 2-group kernel runs alone in ROMix's second loop
 * (see romix_loop2); r/2 measured best at r = 8 (0, 1..5 and r tried). */
#define TPL_SKEW(r) ((r) / 2)

#if defined(__clang__)
#define TPL_UNROLL _Pragma("unroll")
#else
#define TPL_UNROLL _Pragma("GCC unroll 16")
#endif
#define TPL_FOR_G TPL_UNROLL for (g = 0; g < SIMD_G; g++)
#define TPL_FOR_K TPL_UNROLL for (k = 0; k < 4; k++)

/* One quarter-round step on groups 0..ng-1: w[d] ^= rotl(w[a] + w[b], c). */
#define TPL_STEP(d, a, b, c) \
    TPL_FOR_G if (g < ng) w[g][d] = SIMD_XOR(w[g][d], SIMD_ROTL(SIMD_ADD(w[g][a], w[g][b]), c))

/* Salsa20/8 core on groups 0..ng-1 of x (ng <= G): x = x + rounds(x). */
TPL_INLINE void SIMD_NAME(salsa20_8)(SIMD_VEC (*x)[4], int ng)
{
    SIMD_VEC w[SIMD_G][4];
    int g, k, i;

    TPL_FOR_G TPL_FOR_K if (g < ng) w[g][k] = x[g][k];
    TPL_UNROLL for (i = 0; i < 8; i += 2) {
        /* Column round: rows are (a, b, c, d) of the four columns. */
        TPL_STEP(1, 0, 3, 7);
        TPL_STEP(2, 1, 0, 9);
        TPL_STEP(3, 2, 1, 13);
        TPL_STEP(0, 3, 2, 18);
        /* Rotate rows so that the row round's quarters line up. */
        TPL_FOR_G if (g < ng) {
            w[g][1] = SIMD_SHUF(w[g][1], 0x93);
            w[g][2] = SIMD_SHUF(w[g][2], 0x4E);
            w[g][3] = SIMD_SHUF(w[g][3], 0x39);
        }
        /* Row round. */
        TPL_STEP(3, 0, 1, 7);
        TPL_STEP(2, 3, 0, 9);
        TPL_STEP(1, 2, 3, 13);
        TPL_STEP(0, 1, 2, 18);
        TPL_FOR_G if (g < ng) {
            w[g][1] = SIMD_SHUF(w[g][1], 0x39);
            w[g][2] = SIMD_SHUF(w[g][2], 0x4E);
            w[g][3] = SIMD_SHUF(w[g][3], 0x93);
        }
    }
    TPL_FOR_G TPL_FOR_K if (g < ng) x[g][k] = SIMD_ADD(x[g][k], w[g][k]);
}

/* Row k of block b of group g of the interleaved X, xored with block b of V_j when vj is not NULL. */
TPL_INLINE SIMD_VEC SIMD_NAME(load_row)(const uint8_t *in, size_t b, int g, int k, const uint8_t *const *vj)
{
    SIMD_VEC t = SIMD_LOAD(in + TPL_OFF(b, g, k));

    if (vj)
        t = SIMD_XOR(t, SIMD_GATHER(vj + g * SIMD_W, b * 64 + (size_t)k * 16));
    return t;
}

/*
 * BlockMix_salsa20/8 is 2r steps; these run them for groups g0..g0+ng-1,
 * group g at its own step bs[g] and with its own input in[g] and output
 * out[g] (interleaved X; in xored with V_j when vj is not NULL), so that
 * groups can be at different points of their BlockMix. Output order:
 * Y_0, Y_2, ..., Y_{2r-2}, Y_1, Y_3, ..., Y_{2r-1}; each output block is
 * also stored to each lane's vo[l] (ROMix's next V_i) when vo is not NULL.
 */
TPL_INLINE void SIMD_NAME(blockmix_begin)(SIMD_VEC x[SIMD_G][4], uint8_t *const *in, size_t r,
                                          const uint8_t *const *vj, int g0, int ng)
{
    int g, k;

    TPL_FOR_G TPL_FOR_K if (g >= g0 && g < g0 + ng)
        x[g][k] = SIMD_NAME(load_row)(in[g], 2 * r - 1, g, k, vj);
}

TPL_INLINE void SIMD_NAME(blockmix_step)(SIMD_VEC x[SIMD_G][4], uint8_t *const *in, uint8_t *const *out,
                                         const size_t *bs, size_t r, const uint8_t *const *vj,
                                         uint8_t *const *vo, int g0, int ng)
{
    size_t ob;
    int g, k;

    TPL_FOR_G TPL_FOR_K if (g >= g0 && g < g0 + ng)
        x[g][k] = SIMD_XOR(x[g][k], SIMD_NAME(load_row)(in[g], bs[g], g, k, vj));
    SIMD_NAME(salsa20_8)(x + g0, ng);
    TPL_FOR_G if (g >= g0 && g < g0 + ng) {
        ob = (bs[g] >> 1) + (bs[g] & 1) * r;
        TPL_FOR_K SIMD_STORE(out[g] + TPL_OFF(ob, g, k), x[g][k]);
        if (vo) {
#ifdef SIMD_SCATTER_PAIR
            SIMD_SCATTER_PAIR(vo + g * SIMD_W, ob * 64, x[g][0], x[g][1]);
            SIMD_SCATTER_PAIR(vo + g * SIMD_W, ob * 64 + 32, x[g][2], x[g][3]);
#else
            TPL_FOR_K SIMD_SCATTER(vo + g * SIMD_W, ob * 64 + (size_t)k * 16, x[g][k]);
#endif
        }
    }
}

/* BlockMix_salsa20/8 on all lanes at once: in -> out (see blockmix_step). */
TPL_INLINE void SIMD_NAME(blockmix_salsa8)(uint8_t *in, uint8_t *out, size_t r, const uint8_t *const *vj,
                                           uint8_t *const *vo)
{
    SIMD_VEC x[SIMD_G][4];
    uint8_t *ins[SIMD_G], *outs[SIMD_G];
    size_t bs[SIMD_G], b;
    int g;

    TPL_FOR_G ins[g] = in, outs[g] = out;
    SIMD_NAME(blockmix_begin)(x, ins, r, vj, 0, SIMD_G);
    for (b = 0; b < 2 * r; b++) {
        TPL_FOR_G bs[g] = b;
        SIMD_NAME(blockmix_step)(x, ins, outs, bs, r, vj, vo, 0, SIMD_G);
    }
}

/* Integerify for lane l: the first word of the last 64-byte block of X (row 0 starts with x0). */
TPL_INLINE uint32_t SIMD_NAME(integerify)(const uint8_t *X, size_t r, size_t l)
{
    uint32_t j;

    memcpy(&j, X + TPL_OFF(2 * r - 1, l / SIMD_W, 0) + (l % SIMD_W) * 16, sizeof(j));
    return j;
}

/*
 * Ask for V_j of lanes l0..l0+n-1 as soon as j is known: all 2r 64-byte
 * lines of each lane's block, in the order BlockMix reads them (the last
 * line first, then from the start), so that the lines of a block arrive
 * together instead of one demand miss after another. V_j is at a random
 * place, so the hardware prefetcher cannot guess it.
 */
TPL_INLINE void SIMD_NAME(prefetch_vj)(const uint8_t *const *vj, size_t r, size_t l0, size_t n)
{
    size_t l, b;

    for (l = l0; l < l0 + n; l++)
        __builtin_prefetch(vj[l] + (2 * r - 1) * 64, 0, TPL_PF_LOCALITY);
    for (b = 0; b < 2 * r - 1; b++)
        for (l = l0; l < l0 + n; l++)
            __builtin_prefetch(vj[l] + b * 64, 0, TPL_PF_LOCALITY);
}

/* V_j of lane l for the next loop-2 step: j = Integerify(X_l) mod N. */
TPL_INLINE const uint8_t *SIMD_NAME(select_vj)(const uint8_t *X, uint8_t *const *vl, size_t r, uint32_t N,
                                               size_t l)
{
    return vl[l] + (size_t)(SIMD_NAME(integerify)(X, r, l) & (N - 1)) * 128 * r;
}

#if SIMD_G == 2
/*
 * ROMix's second loop with the two groups w = TPL_SKEW(r) BlockMix steps
 * apart, so that V_j is fetched while the other group computes. Each
 * iteration: group 0 runs the first w steps of its BlockMix alone, both
 * groups run 2r - w steps together (group 0 its last ones, group 1 its
 * first ones), group 1 runs its last w steps alone. When a group finishes
 * its BlockMix its next V_j is known and requested; it is read only after
 * the other group's w lone steps. Lone steps have less parallelism than
 * joint ones, hence a small w. X (both groups) -> returned pointer (X or Y).
 */
static SIMD_ATTR uint8_t *SIMD_NAME(romix_loop2)(uint8_t *X, uint8_t *Y, uint8_t *const *vl, size_t r, uint32_t N)
{
    SIMD_VEC x[SIMD_G][4];
    uint8_t *in[SIMD_G] = {X, X}, *out[SIMD_G] = {Y, Y}, *swap;
    const uint8_t *vj[TPL_LANES];
    const size_t w = TPL_SKEW(r);
    size_t bs[SIMD_G] = {0, 0}, b, l;
    uint32_t i;

    for (l = 0; l < TPL_LANES; l++)
        vj[l] = SIMD_NAME(select_vj)(X, vl, r, N, l);
    SIMD_NAME(prefetch_vj)(vj, r, 0, TPL_LANES);
    for (i = 0; i < N; i++) {
        SIMD_NAME(blockmix_begin)(x, in, r, vj, 0, 1);
        for (b = 0; b < w; b++) {
            bs[0] = b;
            SIMD_NAME(blockmix_step)(x, in, out, bs, r, vj, NULL, 0, 1);
        }
        SIMD_NAME(blockmix_begin)(x, in, r, vj, 1, 1);
        for (b = w; b < 2 * r; b++) {
            bs[0] = b;
            bs[1] = b - w;
            SIMD_NAME(blockmix_step)(x, in, out, bs, r, vj, NULL, 0, 2);
        }
        swap = in[0], in[0] = out[0], out[0] = swap;
        if (i + 1 < N) {
            for (l = 0; l < SIMD_W; l++)
                vj[l] = SIMD_NAME(select_vj)(in[0], vl, r, N, l);
            SIMD_NAME(prefetch_vj)(vj, r, 0, SIMD_W);
        }
        for (b = 2 * r - w; b < 2 * r; b++) {
            bs[1] = b;
            SIMD_NAME(blockmix_step)(x, in, out, bs, r, vj, NULL, 1, 1);
        }
        swap = in[1], in[1] = out[1], out[1] = swap;
        if (i + 1 < N) {
            for (l = SIMD_W; l < 2 * SIMD_W; l++)
                vj[l] = SIMD_NAME(select_vj)(in[1], vl, r, N, l);
            SIMD_NAME(prefetch_vj)(vj, r, SIMD_W, SIMD_W);
        }
    }
    return in[0];
}
#else
/* ROMix's second loop, all groups in step: X -> returned pointer (X or Y). */
static SIMD_ATTR uint8_t *SIMD_NAME(romix_loop2)(uint8_t *X, uint8_t *Y, uint8_t *const *vl, size_t r, uint32_t N)
{
    const uint8_t *vj[TPL_LANES];
    uint8_t *swap;
    size_t l;
    uint32_t i;

    for (i = 0; i < N; i++) {
        for (l = 0; l < TPL_LANES; l++)
            vj[l] = SIMD_NAME(select_vj)(X, vl, r, N, l);
        SIMD_NAME(prefetch_vj)(vj, r, 0, TPL_LANES);
        SIMD_NAME(blockmix_salsa8)(X, Y, r, vj, NULL);
        swap = X, X = Y, Y = swap;
    }
    return X;
}
#endif

/*
 * ROMix on TPL_LANES lanes at once. Lane l = g*W + h is hash h of group g.
 * Loop 1: V_0 = B; X = BlockMix(X) stored to both X and V_{i+1}.
 * Loop 2: j_l = Integerify(X_l) mod N; X = BlockMix(X xor V_j) with each
 * lane reading its own j.
 */
static SIMD_ATTR void SIMD_NAME(romix)(uint32_t *const *B, uint32_t r, uint32_t N, uint8_t *V, uint8_t *XY)
{
    const size_t blk = (size_t)128 * r;
    uint8_t *X = XY;
    uint8_t *Y = XY + blk * TPL_LANES;
    uint8_t *swap;
    uint8_t *vl[TPL_LANES];
    uint8_t *vo[TPL_LANES];
    size_t b, l;
    uint32_t i;
    int k;

    for (l = 0; l < TPL_LANES; l++) {
        const uint8_t *src = (const uint8_t *)B[l];
        size_t g = l / SIMD_W, h = l % SIMD_W;

        vl[l] = V + l * blk * N;
        for (b = 0; b < 2 * (size_t)r; b++)
            for (k = 0; k < 4; k++)
                memcpy(X + TPL_OFF(b, g, k) + h * 16, src + b * 64 + (size_t)k * 16, 16);
    }
    /* All inputs are read before the copies to V (B may alias among filler lanes). */
    for (l = 0; l < TPL_LANES; l++)
        memcpy(vl[l], B[l], blk);

    for (i = 1; i < N; i++) {
        for (l = 0; l < TPL_LANES; l++)
            vo[l] = vl[l] + i * blk;
        SIMD_NAME(blockmix_salsa8)(X, Y, r, NULL, vo);
        swap = X, X = Y, Y = swap;
    }
    SIMD_NAME(blockmix_salsa8)(X, Y, r, NULL, NULL);
    swap = X, X = Y, Y = swap;
    SIMD_FENCE();

    X = SIMD_NAME(romix_loop2)(X, Y, vl, r, N);

    for (l = 0; l < TPL_LANES; l++) {
        uint8_t *dst = (uint8_t *)B[l];
        size_t g = l / SIMD_W, h = l % SIMD_W;

        for (b = 0; b < 2 * (size_t)r; b++)
            for (k = 0; k < 4; k++)
                memcpy(dst + b * 64 + (size_t)k * 16, X + TPL_OFF(b, g, k) + h * 16, 16);
    }
}

#undef TPL_LANES
#undef TPL_VBYTES
#undef TPL_OFF
#undef TPL_INLINE
#undef TPL_PF_LOCALITY
#undef TPL_SKEW
#undef TPL_UNROLL
#undef TPL_FOR_G
#undef TPL_FOR_K
#undef TPL_STEP
