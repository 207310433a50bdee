/*
 * romix_portable.c - scrypt's ROMix in plain C11, one hash at a time.
 *
 * Correct on any CPU: words are uint32_t in host byte order (the module
 * converts from and to little-endian bytes), blocks in natural word order.
 */
#include <string.h>

#include "scrypt_native.h"

#define ROTL32(a, b) (((a) << (b)) | ((a) >> (32 - (b))))

/* Salsa20/8 core: B = B + salsa20_8_rounds(B), on one 16-word block. */
static void salsa20_8(uint32_t B[16])
{
    uint32_t x[16];
    int i;

    memcpy(x, B, sizeof(x));
    for (i = 0; i < 8; i += 2) {
        /* Column round. */
        x[4] ^= ROTL32(x[0] + x[12], 7);
        x[8] ^= ROTL32(x[4] + x[0], 9);
        x[12] ^= ROTL32(x[8] + x[4], 13);
        x[0] ^= ROTL32(x[12] + x[8], 18);
        x[9] ^= ROTL32(x[5] + x[1], 7);
        x[13] ^= ROTL32(x[9] + x[5], 9);
        x[1] ^= ROTL32(x[13] + x[9], 13);
        x[5] ^= ROTL32(x[1] + x[13], 18);
        x[14] ^= ROTL32(x[10] + x[6], 7);
        x[2] ^= ROTL32(x[14] + x[10], 9);
        x[6] ^= ROTL32(x[2] + x[14], 13);
        x[10] ^= ROTL32(x[6] + x[2], 18);
        x[3] ^= ROTL32(x[15] + x[11], 7);
        x[7] ^= ROTL32(x[3] + x[15], 9);
        x[11] ^= ROTL32(x[7] + x[3], 13);
        x[15] ^= ROTL32(x[11] + x[7], 18);
        /* Row round. */
        x[1] ^= ROTL32(x[0] + x[3], 7);
        x[2] ^= ROTL32(x[1] + x[0], 9);
        x[3] ^= ROTL32(x[2] + x[1], 13);
        x[0] ^= ROTL32(x[3] + x[2], 18);
        x[6] ^= ROTL32(x[5] + x[4], 7);
        x[7] ^= ROTL32(x[6] + x[5], 9);
        x[4] ^= ROTL32(x[7] + x[6], 13);
        x[5] ^= ROTL32(x[4] + x[7], 18);
        x[11] ^= ROTL32(x[10] + x[9], 7);
        x[8] ^= ROTL32(x[11] + x[10], 9);
        x[9] ^= ROTL32(x[8] + x[11], 13);
        x[10] ^= ROTL32(x[9] + x[8], 18);
        x[12] ^= ROTL32(x[15] + x[14], 7);
        x[13] ^= ROTL32(x[12] + x[15], 9);
        x[14] ^= ROTL32(x[13] + x[12], 13);
        x[15] ^= ROTL32(x[14] + x[13], 18);
    }
    for (i = 0; i < 16; i++)
        B[i] += x[i];
}

/*
 * BlockMix_salsa20/8 of the 2r blocks in[] (xored with vj[] when vj is not
 * NULL, which fuses ROMix's "X xor V_j" step), written to out[]:
 * X = last block; for each block i: X = salsa20_8(X xor block i), Y_i = X;
 * out = (Y_0, Y_2, ..., Y_{2r-2}, Y_1, Y_3, ..., Y_{2r-1}).
 */
static void blockmix_salsa8(const uint32_t *in, const uint32_t *vj, uint32_t *out, size_t r)
{
    uint32_t X[16];
    size_t i, k;

    for (k = 0; k < 16; k++)
        X[k] = in[(2 * r - 1) * 16 + k] ^ (vj ? vj[(2 * r - 1) * 16 + k] : 0);
    for (i = 0; i < 2 * r; i++) {
        for (k = 0; k < 16; k++)
            X[k] ^= in[i * 16 + k] ^ (vj ? vj[i * 16 + k] : 0);
        salsa20_8(X);
        memcpy(out + ((i >> 1) + (i & 1) * r) * 16, X, sizeof(X));
    }
}

/* Integerify: the first word of the last 64-byte block (N <= 2^32). */
static uint32_t integerify(const uint32_t *X, size_t r)
{
    return X[(2 * r - 1) * 16];
}

/*
 * ROMix (one lane): X = B; V_i = X, X = BlockMix(X) for i < N;
 * then N times j = Integerify(X) mod N, X = BlockMix(X xor V_j); B = X.
 * V_{i+1} is written by BlockMix directly; XY holds the working X.
 */
static void romix(uint32_t *const *B, uint32_t r, uint32_t N, uint8_t *Vbytes, uint8_t *XY)
{
    const size_t words = 32 * (size_t)r;
    uint32_t *V = (uint32_t *)(void *)Vbytes;
    uint32_t *X = (uint32_t *)(void *)XY;
    uint32_t *Y = X + words;
    uint32_t *swap;
    uint32_t i;

    memcpy(V, B[0], words * sizeof(uint32_t));
    for (i = 0; i + 1 < N; i++)
        blockmix_salsa8(V + i * words, NULL, V + (i + 1) * words, r);
    blockmix_salsa8(V + (size_t)(N - 1) * words, NULL, X, r);
    for (i = 0; i < N; i++) {
        uint32_t j = integerify(X, r) & (N - 1);
        blockmix_salsa8(X, V + (size_t)j * words, Y, r);
        swap = X;
        X = Y;
        Y = swap;
    }
    memcpy(B[0], X, words * sizeof(uint32_t));
}

static const struct scrypt_kernel portable_kernels[] = {
    {"portable", 1, 172000, romix},
};

const struct scrypt_variant scrypt_variant_portable = {
    "portable",
    0,
    sizeof(portable_kernels) / sizeof(portable_kernels[0]),
    portable_kernels,
};
