/*
 * scrypt_platform.h - what the driver needs from the operating system and
 * the CPU: a wipe the compiler cannot drop, CPU feature detection, and the
 * big ROMix buffer (huge-page backed where the system offers it).
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

/* A large 64-byte aligned buffer; all zero when nothing is allocated. */
struct scrypt_bigbuf {
    uint8_t *p;     /* aligned start */
    size_t bytes;   /* usable bytes */
    void *map;      /* what to munmap/free */
    size_t map_len; /* mapping length (mmap) */
};

/*
 * Allocate `bytes` into *bb (64-byte aligned; 2 MiB aligned with
 * transparent huge pages requested when large). Returns 0, or -1 when out
 * of memory (leaving *bb empty).
 */
int scrypt_bigbuf_alloc(struct scrypt_bigbuf *bb, size_t bytes);

/* Release the buffer, wiping it first when `wipe` is nonzero; leaves *bb
 * empty. Does nothing to an empty buffer. */
void scrypt_bigbuf_free(struct scrypt_bigbuf *bb, int wipe);

#endif /* SCRYPT_HELPER_PLATFORM_H */
