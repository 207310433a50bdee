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
 *   SIMD_FENCE()         orders the non-temporal stores (sfence)
 *
 * Blocks are in the diagonal word order (see scrypt_native.h): row 0 is
 * (x0, x5, x10, x15), row 1 (x4, x9, x14, x3), row 2 (x8, x13, x2, x7),
 * row 3 (x12, x1, x6, x11). Salsa20's column round then works on whole
 * rows, and rotating rows 1..3 by one, two and three words turns the rows
 * into the row round's quarter-round inputs.
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

#if defined(__clang__)
#define TPL_UNROLL _Pragma("unroll")
#else
#define TPL_UNROLL _Pragma("GCC unroll 16")
#endif
#define TPL_FOR_G TPL_UNROLL for (g = 0; g < SIMD_G; g++)
#define TPL_FOR_K TPL_UNROLL for (k = 0; k < 4; k++)

/* One quarter-round step on every group: w[d] ^= rotl(w[a] + w[b], c). */
#define TPL_STEP(d, a, b, c) \
    TPL_FOR_G w[g][d] = SIMD_XOR(w[g][d], SIMD_ROTL(SIMD_ADD(w[g][a], w[g][b]), c))

/* Salsa20/8 core on G groups of W hashes: x = x + rounds(x). */
TPL_INLINE void SIMD_NAME(salsa20_8)(SIMD_VEC x[SIMD_G][4])
{
    SIMD_VEC w[SIMD_G][4];
    int g, k, i;

    TPL_FOR_G TPL_FOR_K w[g][k] = x[g][k];
    TPL_UNROLL for (i = 0; i < 8; i += 2) {
        /* Column round: rows are (a, b, c, d) of the four columns. */
        TPL_STEP(1, 0, 3, 7);
        TPL_STEP(2, 1, 0, 9);
        TPL_STEP(3, 2, 1, 13);
        TPL_STEP(0, 3, 2, 18);
        /* Rotate rows so that the row round's quarters line up. */
        TPL_FOR_G {
            w[g][1] = SIMD_SHUF(w[g][1], 0x93);
            w[g][2] = SIMD_SHUF(w[g][2], 0x4E);
            w[g][3] = SIMD_SHUF(w[g][3], 0x39);
        }
        /* Row round. */
        TPL_STEP(3, 0, 1, 7);
        TPL_STEP(2, 3, 0, 9);
        TPL_STEP(1, 2, 3, 13);
        TPL_STEP(0, 1, 2, 18);
        TPL_FOR_G {
            w[g][1] = SIMD_SHUF(w[g][1], 0x39);
            w[g][2] = SIMD_SHUF(w[g][2], 0x4E);
            w[g][3] = SIMD_SHUF(w[g][3], 0x93);
        }
    }
    TPL_FOR_G TPL_FOR_K x[g][k] = SIMD_ADD(x[g][k], w[g][k]);
}

/* Block b of the interleaved X, xored with block b of each lane's V_j when vj is not NULL. */
TPL_INLINE void SIMD_NAME(load_block)(SIMD_VEC t[SIMD_G][4], const uint8_t *in, size_t b,
                                      const uint8_t *const *vj)
{
    int g, k;

    TPL_FOR_G TPL_FOR_K {
        t[g][k] = SIMD_LOAD(in + TPL_OFF(b, g, k));
        if (vj)
            t[g][k] = SIMD_XOR(t[g][k], SIMD_GATHER(vj + g * SIMD_W, b * 64 + (size_t)k * 16));
    }
}

/*
 * BlockMix_salsa20/8 on all lanes: in (interleaved X, xored with V_j when
 * vj is not NULL) -> out (interleaved), also stored to each lane's vo[l]
 * (ROMix's next V_i) when vo is not NULL. Output order: Y_0, Y_2, ...,
 * Y_{2r-2}, Y_1, Y_3, ..., Y_{2r-1}.
 */
TPL_INLINE void SIMD_NAME(blockmix_salsa8)(const uint8_t *in, uint8_t *out, size_t r,
                                           const uint8_t *const *vj, uint8_t *const *vo)
{
    SIMD_VEC x[SIMD_G][4], t[SIMD_G][4];
    size_t b, ob;
    int g, k;

    SIMD_NAME(load_block)(x, in, 2 * r - 1, vj);
    for (b = 0; b < 2 * r; b++) {
        SIMD_NAME(load_block)(t, in, b, vj);
        TPL_FOR_G TPL_FOR_K x[g][k] = SIMD_XOR(x[g][k], t[g][k]);
        SIMD_NAME(salsa20_8)(x);
        ob = (b >> 1) + (b & 1) * r;
        TPL_FOR_G TPL_FOR_K {
            SIMD_STORE(out + TPL_OFF(ob, g, k), x[g][k]);
            if (vo)
                SIMD_SCATTER(vo + g * SIMD_W, ob * 64 + (size_t)k * 16, x[g][k]);
        }
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
    const uint8_t *vj[TPL_LANES];
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

    for (i = 0; i < N; i++) {
        for (l = 0; l < TPL_LANES; l++)
            vj[l] = vl[l] + (size_t)(SIMD_NAME(integerify)(X, r, l) & (N - 1)) * blk;
        SIMD_NAME(blockmix_salsa8)(X, Y, r, vj, NULL);
        swap = X, X = Y, Y = swap;
    }

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
#undef TPL_UNROLL
#undef TPL_FOR_G
#undef TPL_FOR_K
#undef TPL_STEP
