/*
 * scrypt_platform.h - what the driver needs from the operating system and
 * the CPU: a wipe the compiler cannot drop, CPU feature detection, and the
 * buffers that hold hash state (huge-page backed where the system offers
 * it, never in a core dump, locked in RAM on request).
 */
#ifndef SCRYPT_HELPER_PLATFORM_H
#define SCRYPT_HELPER_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Zero n bytes at p in a way the compiler may not drop as a dead store. */
void scrypt_secure_wipe(void *p, size_t n);

/* CPU features the SIMD variants need (bits of scrypt_cpu_features()). */
enum {
    SCRYPT_CPU_SSE2 = 1u << 0,
    SCRYPT_CPU_AVX2 = 1u << 1,
    SCRYPT_CPU_AVX512 = 1u << 2, /* AVX-512F and AVX-512VL */
};

/* Features of the CPU this runs on; 0 off x86 or without compiler support. */
unsigned scrypt_cpu_features(void);

/* A 64-byte aligned buffer for hash state; all zero when nothing is allocated. */
struct scrypt_bigbuf {
    uint8_t *p;     /* aligned start */
    size_t bytes;   /* usable bytes */
    void *map;      /* what to munmap/free */
    size_t map_len; /* mapping length (mmap) */
};

/* Flags of scrypt_bigbuf_alloc. */
enum {
    SCRYPT_BIGBUF_LOCK = 1u << 0, /* mlock the buffer: it is never written to swap */
};

/* Results of scrypt_bigbuf_alloc. */
enum {
    SCRYPT_BIGBUF_OK = 0,
    SCRYPT_BIGBUF_ENOMEM = -1, /* out of memory, or a size past SIZE_MAX */
    SCRYPT_BIGBUF_ELOCK = -2,  /* SCRYPT_BIGBUF_LOCK asked for, and mlock refused (RLIMIT_MEMLOCK) */
};

/*
 * Allocate `bytes` into *bb: 64-byte aligned, whole pages, 2 MiB aligned
 * with transparent huge pages requested when large, and left out of core
 * dumps (MADV_DONTDUMP) where the system offers it. Returns
 * SCRYPT_BIGBUF_OK, or SCRYPT_BIGBUF_ENOMEM / SCRYPT_BIGBUF_ELOCK leaving
 * *bb empty.
 */
int scrypt_bigbuf_alloc(struct scrypt_bigbuf *bb, size_t bytes, unsigned flags);

/*
 * Bytes that scrypt_bigbuf_alloc maps (and with SCRYPT_BIGBUF_LOCK locks)
 * for a buffer of `bytes`: the size rounded up to its alignment. 0 when
 * that is past SIZE_MAX.
 */
size_t scrypt_bigbuf_footprint(size_t bytes);

/* Release the buffer, wiping it first when `wipe` is nonzero; leaves *bb
 * empty. Does nothing to an empty buffer. */
void scrypt_bigbuf_free(struct scrypt_bigbuf *bb, int wipe);

#endif /* SCRYPT_HELPER_PLATFORM_H */
