/*
 * scrypt_platform.c - secure wipe, CPU feature detection and the buffers
 * that hold hash state (huge pages, kept out of core dumps, optionally
 * locked in RAM): the parts of the driver that depend on the C library,
 * the operating system or the compiler.
 */
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* glibc: explicit_bzero, MAP_ANONYMOUS, madvise under -std=c11 */
#endif

#include "scrypt_platform.h"

#include <stdlib.h>
#include <string.h>

#include "scrypt_native.h" /* SCRYPT_X86 */

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define HAVE_MMAP 1
#else
#define HAVE_MMAP 0
#endif

/* Transparent huge page size on x86-64 (and the alignment that lets the
 * kernel back a mapping with them). */
#define HUGE_ALIGN ((size_t)2 << 20)

void scrypt_secure_wipe(void *p, size_t n)
{
    if (p == NULL || n == 0)
        return;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
    explicit_bzero(p, n);
#else
    {
        /* Stores through a volatile pointer must all happen. */
        volatile unsigned char *v = (volatile unsigned char *)p;
        while (n--)
            *v++ = 0;
    }
#endif
}

unsigned scrypt_cpu_features(void)
{
    unsigned f = 0;

#if SCRYPT_X86 && (defined(__GNUC__) || defined(__clang__))
    /* Idempotent; needed when this runs before libgcc's own constructor. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse2"))
        f |= SCRYPT_CPU_SSE2;
    if (__builtin_cpu_supports("avx2"))
        f |= SCRYPT_CPU_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        f |= SCRYPT_CPU_AVX512;
#endif
    return f;
}

#if HAVE_MMAP
static size_t page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);

    if (page <= 0 || (size_t)page > HUGE_ALIGN || ((size_t)page & ((size_t)page - 1)))
        return 4096;
    return (size_t)page;
}

/* Huge pages for a large buffer, whole pages for any other. */
static size_t alignment(size_t bytes)
{
    return bytes >= HUGE_ALIGN ? HUGE_ALIGN : page_size();
}

int scrypt_bigbuf_alloc(struct scrypt_bigbuf *bb, size_t bytes, unsigned flags)
{
    size_t page = page_size();
    size_t align = alignment(bytes);
    size_t len = scrypt_bigbuf_footprint(bytes), extra = align > page ? align : 0, map_len;
    uint8_t *m, *a;

    memset(bb, 0, sizeof(*bb));
    if (len == 0 || len > SIZE_MAX - extra)
        return SCRYPT_BIGBUF_ENOMEM;
    /* Over-allocate by one alignment unit, then trim both ends so the
     * mapping starts on a huge-page boundary. */
    map_len = len + extra;
    m = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return SCRYPT_BIGBUF_ENOMEM;
    a = (uint8_t *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
    if (a > m)
        munmap(m, (size_t)(a - m));
    if (m + map_len > a + len)
        munmap(a + len, (size_t)(m + map_len - (a + len)));
#if defined(MADV_HUGEPAGE)
    /* ROMix reads V at random: 4 KiB pages would miss the TLB on most reads. */
    if (align == HUGE_ALIGN)
        (void)madvise(a, len, MADV_HUGEPAGE);
#endif
#if defined(MADV_DONTDUMP)
    /* Never in a core dump, even one that RLIMIT_CORE does not stop: a
     * core_pattern that pipes dumps to a helper ignores that limit. */
    (void)madvise(a, len, MADV_DONTDUMP);
#endif
    /* mlock also faults every page in (after MADV_HUGEPAGE, as huge pages). */
    if ((flags & SCRYPT_BIGBUF_LOCK) && mlock(a, len) != 0) {
        munmap(a, len);
        return SCRYPT_BIGBUF_ELOCK;
    }
    bb->p = a;
    bb->bytes = bytes;
    bb->map = a;
    bb->map_len = len;
    return SCRYPT_BIGBUF_OK;
}

/* munmap also unlocks. */
static void release(struct scrypt_bigbuf *bb)
{
    munmap(bb->map, bb->map_len);
}
#else
static size_t alignment(size_t bytes)
{
    (void)bytes;
    return 64;
}

int scrypt_bigbuf_alloc(struct scrypt_bigbuf *bb, size_t bytes, unsigned flags)
{
    size_t len = scrypt_bigbuf_footprint(bytes);
    void *m;

    memset(bb, 0, sizeof(*bb));
    if (flags & SCRYPT_BIGBUF_LOCK)
        return SCRYPT_BIGBUF_ELOCK; /* no mlock here */
    if (len == 0)
        return SCRYPT_BIGBUF_ENOMEM;
    /* aligned_alloc wants a nonzero multiple of the alignment: len is one. */
    m = aligned_alloc(64, len);
    if (m == NULL)
        return SCRYPT_BIGBUF_ENOMEM;
    bb->p = m;
    bb->bytes = bytes;
    bb->map = m;
    bb->map_len = len;
    return SCRYPT_BIGBUF_OK;
}

static void release(struct scrypt_bigbuf *bb)
{
    free(bb->map);
}
#endif

size_t scrypt_bigbuf_footprint(size_t bytes)
{
    size_t align = alignment(bytes);

    if (bytes == 0)
        bytes = 1;
    /* Checked before rounding up, which would wrap past SIZE_MAX. */
    if (bytes > SIZE_MAX - (align - 1))
        return 0;
    return (bytes + align - 1) & ~(align - 1);
}

void scrypt_bigbuf_free(struct scrypt_bigbuf *bb, int wipe)
{
    if (bb->map == NULL)
        return;
    if (wipe)
        scrypt_secure_wipe(bb->p, bb->bytes);
    release(bb);
    memset(bb, 0, sizeof(*bb));
}
