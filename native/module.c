/*
 * module.c - the scrypt_helper._native extension: scrypt for many
 * independent inputs at once, with multi-buffer SIMD ROMix kernels chosen
 * at run time (see the module docstring below).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "scrypt_native.h"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define HAVE_MMAP 1
#else
#define HAVE_MMAP 0
#endif

#define MAX_LOG2_N 20
#define MAX_R 32
#define MAX_P 16
#define MAX_BUFLEN 1024
#define MAX_JOBS (SCRYPT_MAX_LANES * MAX_P)
#define HUGE_ALIGN ((size_t)2 << 20)

/* ---------------------------------------------------------------- wiping */

/* Zero memory in a way the compiler may not drop as a dead store. */
static void secure_wipe(void *p, size_t n)
{
    if (p == NULL || n == 0)
        return;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
    explicit_bzero(p, n);
#else
    {
        volatile unsigned char *v = (volatile unsigned char *)p;
        while (n--)
            *v++ = 0;
    }
#endif
}

/* --------------------------------------------------------------- variants */

#if SCRYPT_X86
#if defined(__GNUC__) || defined(__clang__)
static int cpu_has_avx512(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}
static int cpu_has_avx2(void) { return __builtin_cpu_supports("avx2"); }
static int cpu_has_sse2(void) { return __builtin_cpu_supports("sse2"); }
#else
static int cpu_has_avx512(void) { return 0; }
static int cpu_has_avx2(void) { return 0; }
static int cpu_has_sse2(void) { return 0; }
#endif
#endif
static int cpu_any(void) { return 1; }

struct built_variant {
    const struct scrypt_variant *v;
    int (*cpu_ok)(void);
};

/* Every variant this build has, best first. */
static const struct built_variant BUILT[] = {
#if SCRYPT_X86
    {&scrypt_variant_avx512, cpu_has_avx512},
    {&scrypt_variant_avx2, cpu_has_avx2},
    {&scrypt_variant_sse2, cpu_has_sse2},
#endif
    {&scrypt_variant_portable, cpu_any},
};
#define N_BUILT (sizeof(BUILT) / sizeof(BUILT[0]))

static int variant_supported[N_BUILT];
static char built_names[128]; /* "avx512, avx2, sse2, portable" */

static const struct built_variant *find_variant(PyObject *name_obj)
{
    const char *name;
    size_t i;

    if (!PyUnicode_Check(name_obj)) {
        PyErr_Format(PyExc_TypeError, "variant must be str, not %.100s", Py_TYPE(name_obj)->tp_name);
        return NULL;
    }
    name = PyUnicode_AsUTF8(name_obj);
    if (name == NULL)
        return NULL;
    for (i = 0; i < N_BUILT; i++)
        if (strcmp(BUILT[i].v->name, name) == 0)
            return &BUILT[i];
    PyErr_Format(PyExc_ValueError, "unknown scrypt variant %R; this build has: %s", name_obj, built_names);
    return NULL;
}

static unsigned variant_lanes(const struct scrypt_variant *v)
{
    unsigned lanes = 1;
    size_t i;

    for (i = 0; i < v->n_kernels; i++)
        if (v->kernels[i].lanes > lanes)
            lanes = v->kernels[i].lanes;
    return lanes;
}

/* ---------------------------------------------------------------- planner */

struct plan_step {
    const struct scrypt_kernel *kernel;
    unsigned jobs; /* real jobs in this pass (the rest of its lanes are filler) */
};

/*
 * Spread `jobs` ROMix jobs over kernel passes so that the summed pass cost
 * is least (a lone job takes the one-hash kernel; a full batch the widest).
 * Returns the number of steps written (at most `jobs`).
 */
static size_t make_plan(const struct scrypt_variant *v, unsigned jobs, struct plan_step *steps)
{
    unsigned long long best[MAX_JOBS + 1];
    unsigned choice[MAX_JOBS + 1];
    unsigned k, q;
    size_t n = 0;

    best[0] = 0;
    for (k = 1; k <= jobs; k++) {
        best[k] = ~0ULL;
        choice[k] = 0;
        for (q = 0; q < v->n_kernels; q++) {
            unsigned take = k < v->kernels[q].lanes ? k : v->kernels[q].lanes;
            unsigned long long c = v->kernels[q].cost + best[k - take];
            if (c < best[k]) {
                best[k] = c;
                choice[k] = q;
            }
        }
    }
    for (k = jobs; k > 0;) {
        const struct scrypt_kernel *kern = &v->kernels[choice[k]];
        unsigned take = k < kern->lanes ? k : kern->lanes;
        steps[n].kernel = kern;
        steps[n].jobs = take;
        n++;
        k -= take;
    }
    return n;
}

/* ------------------------------------------------------- block word order */

/* Word that storage position i of a diagonal-order block holds. */
static const unsigned char DIAGONAL[16] = {0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11};

static uint32_t le32dec(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void le32enc(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)x;
    p[1] = (uint8_t)(x >> 8);
    p[2] = (uint8_t)(x >> 16);
    p[3] = (uint8_t)(x >> 24);
}

/* Little-endian bytes -> host words in the kernel's order (nblocks 64-byte blocks). */
static void bytes_to_words(const uint8_t *src, uint32_t *dst, size_t nblocks, int diagonal)
{
    size_t b, i;

    for (b = 0; b < nblocks; b++)
        for (i = 0; i < 16; i++)
            dst[b * 16 + i] = le32dec(src + 64 * b + 4 * (diagonal ? DIAGONAL[i] : i));
}

static void words_to_bytes(const uint32_t *src, uint8_t *dst, size_t nblocks, int diagonal)
{
    size_t b, i;

    for (b = 0; b < nblocks; b++)
        for (i = 0; i < 16; i++)
            le32enc(dst + 64 * b + 4 * (diagonal ? DIAGONAL[i] : i), src[b * 16 + i]);
}

/* ------------------------------------------------------- big buffer memory */

struct bigbuf {
    uint8_t *p;      /* 64-byte aligned start */
    size_t bytes;    /* usable bytes (what buffer_bytes reports) */
    void *map;       /* what to free/munmap */
    size_t map_len;  /* mapping length (mmap) */
};

/* Allocate `bytes` (64-byte aligned; 2 MiB aligned with transparent huge
 * pages requested when large). Returns 0 or -1 (out of memory). */
static int bigbuf_alloc(struct bigbuf *bb, size_t bytes)
{
    memset(bb, 0, sizeof(*bb));
#if HAVE_MMAP
    {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t align = bytes >= HUGE_ALIGN ? HUGE_ALIGN : page;
        size_t len, map_len;
        uint8_t *m, *a;

        if (page == 0 || page > HUGE_ALIGN || (page & (page - 1)))
            page = 4096;
        if (bytes > SIZE_MAX - 2 * align)
            return -1;
        len = (bytes + align - 1) & ~(align - 1);
        map_len = len + (align > page ? align : 0);
        m = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return -1;
        a = (uint8_t *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
        if (a > m)
            munmap(m, (size_t)(a - m));
        if (m + map_len > a + len)
            munmap(a + len, (size_t)(m + map_len - (a + len)));
#if defined(MADV_HUGEPAGE)
        if (align == HUGE_ALIGN)
            (void)madvise(a, len, MADV_HUGEPAGE);
#endif
        bb->p = a;
        bb->bytes = bytes;
        bb->map = a;
        bb->map_len = len;
        return 0;
    }
#else
    {
        void *m = NULL;
        if (posix_memalign(&m, 64, bytes ? bytes : 64) != 0)
            return -1;
        bb->p = m;
        bb->bytes = bytes;
        bb->map = m;
        return 0;
    }
#endif
}

/* Free the buffer, zeroing it first when it may hold hash state. */
static void bigbuf_free(struct bigbuf *bb, int dirty)
{
    if (bb->map == NULL)
        return;
    if (dirty)
        secure_wipe(bb->p, bb->bytes);
#if HAVE_MMAP
    munmap(bb->map, bb->map_len);
#else
    free(bb->map);
#endif
    memset(bb, 0, sizeof(*bb));
}

/* ---------------------------------------------------------------- Context */

typedef struct {
    PyObject_HEAD
    const struct scrypt_variant *variant;
    unsigned lanes;
    struct bigbuf buf;
    int dirty;  /* buf may hold hash state */
    int closed;
    int busy;   /* a call is running with the GIL released */
} ContextObject;

static int context_enter(ContextObject *self)
{
    if (self->closed) {
        PyErr_SetString(PyExc_ValueError, "scrypt context is closed");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "scrypt context busy: it is in use by another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static PyObject *Context_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"variant", NULL};
    PyObject *name_obj;
    const struct built_variant *bv;
    ContextObject *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Context", kwlist, &name_obj))
        return NULL;
    bv = find_variant(name_obj);
    if (bv == NULL)
        return NULL;
    if (!variant_supported[bv - BUILT]) {
        PyErr_Format(PyExc_ValueError, "scrypt variant %R is not supported by this CPU", name_obj);
        return NULL;
    }
    self = (ContextObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->variant = bv->v;
    self->lanes = variant_lanes(bv->v);
    memset(&self->buf, 0, sizeof(self->buf));
    return (PyObject *)self;
}

static void Context_dealloc(ContextObject *self)
{
    bigbuf_free(&self->buf, self->dirty);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Read an int argument into *out, checking lo <= value <= hi. */
static int get_int_arg(PyObject *obj, const char *name, long lo, long hi, long *out)
{
    int overflow = 0;
    long v;

    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be int, not %.100s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    v = PyLong_AsLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s must be %ld..%ld", name, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The work of one hash_batch call, all in C memory (wiped and freed after). */
struct batch {
    unsigned n_inputs, jobs;
    uint32_t N, r, p, buflen;
    const uint8_t *input[SCRYPT_MAX_LANES];
    size_t input_len[SCRYPT_MAX_LANES];
    const uint8_t *salt;
    size_t salt_len;
    uint8_t *Bbytes;  /* jobs * 128r: PBKDF2 output, ROMix input/output as bytes */
    uint32_t *words;  /* jobs * 32r words, 64-byte aligned: kernel layout */
    uint32_t *filler; /* 32r words: input of a pass's unused lanes */
    uint8_t *XY;      /* kernel scratch */
    uint8_t *out;     /* n_inputs * buflen */
    uint8_t *mem;     /* the one allocation holding all of the above */
    size_t mem_len;
};

enum { BATCH_OK = 0, BATCH_NOMEM = 1, BATCH_CRYPTO = 2 };

/* The heavy part of hash_batch; runs without the GIL. */
static int run_batch(ContextObject *self, struct batch *bt)
{
    const struct scrypt_variant *v = self->variant;
    const size_t blk = (size_t)128 * bt->r;
    const size_t words_per_job = blk / 4;
    const size_t per_lane = blk * bt->N;
    struct plan_step steps[MAX_JOBS];
    size_t n_steps, s, i, job;
    unsigned widest = 1;
    size_t need, full;

    n_steps = make_plan(v, bt->jobs, steps);
    for (s = 0; s < n_steps; s++)
        if (steps[s].kernel->lanes > widest)
            widest = steps[s].kernel->lanes;

    /* Big buffer: grow when this plan needs more; give back a buffer far
     * larger than a full batch of these parameters would use. */
    if (per_lane > SIZE_MAX / SCRYPT_MAX_LANES)
        return BATCH_NOMEM;
    need = per_lane * widest;
    full = per_lane * self->lanes;
    if (self->buf.p == NULL || self->buf.bytes < need || self->buf.bytes / 4 > full) {
        bigbuf_free(&self->buf, self->dirty);
        self->dirty = 0;
        if (bigbuf_alloc(&self->buf, need) != 0)
            return BATCH_NOMEM;
    }
    self->dirty = 1;

    /* B = PBKDF2-HMAC-SHA256(P, S, 1, p * 128r) for each input. */
    for (i = 0; i < bt->n_inputs; i++) {
        if (PKCS5_PBKDF2_HMAC((const char *)bt->input[i], (int)bt->input_len[i], bt->salt, (int)bt->salt_len, 1,
                              EVP_sha256(), (int)(bt->p * blk), bt->Bbytes + i * bt->p * blk) != 1)
            return BATCH_CRYPTO;
    }
    bytes_to_words(bt->Bbytes, bt->words, (size_t)bt->jobs * 2 * bt->r, v->diagonal);

    /* ROMix every job, pass by pass. */
    for (s = 0, job = 0; s < n_steps; s++) {
        const struct scrypt_kernel *k = steps[s].kernel;
        uint32_t *lane_B[SCRYPT_MAX_LANES];
        unsigned l;

        if (steps[s].jobs < k->lanes)
            memcpy(bt->filler, bt->words + job * words_per_job, blk);
        for (l = 0; l < k->lanes; l++)
            lane_B[l] = l < steps[s].jobs ? bt->words + (job + l) * words_per_job : bt->filler;
        k->romix(lane_B, bt->r, bt->N, self->buf.p, bt->XY);
        job += steps[s].jobs;
    }

    /* DK = PBKDF2-HMAC-SHA256(P, B, 1, dkLen). */
    words_to_bytes(bt->words, bt->Bbytes, (size_t)bt->jobs * 2 * bt->r, v->diagonal);
    for (i = 0; i < bt->n_inputs; i++) {
        if (PKCS5_PBKDF2_HMAC((const char *)bt->input[i], (int)bt->input_len[i], bt->Bbytes + i * bt->p * blk,
                              (int)(bt->p * blk), 1, EVP_sha256(), (int)bt->buflen, bt->out + i * bt->buflen) != 1)
            return BATCH_CRYPTO;
    }
    return BATCH_OK;
}

PyDoc_STRVAR(Context_hash_batch_doc,
"hash_batch(inputs, salt, N, r, p, buflen) -> list[bytes]\n"
"\n"
"Return scrypt(input, salt, N, r, p, buflen) for each input, in order.\n"
"\n"
"inputs: a sequence of 1..lanes bytes-like passwords; salt: bytes-like;\n"
"N: power of two, 2..2**20; r: 1..32; p: 1..16; buflen: 1..1024.\n"
"The p * len(inputs) ROMix jobs are spread over the kernel's lanes. Runs\n"
"with the GIL released. Raises TypeError on wrong types, ValueError on\n"
"bad values or a closed context, MemoryError when the buffers cannot be\n"
"allocated, RuntimeError when the context is busy in another thread.");

static PyObject *Context_hash_batch(ContextObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"inputs", "salt", "N", "r", "p", "buflen", NULL};
    PyObject *inputs_obj, *salt_obj, *N_obj, *r_obj, *p_obj, *buflen_obj;
    PyObject *seq = NULL, *result = NULL;
    Py_buffer views[SCRYPT_MAX_LANES];
    Py_buffer salt_view;
    int n_views = 0, have_salt = 0;
    long N, r, p, buflen;
    struct batch bt;
    size_t total_in, blk, off_in, off_salt, off_B, off_words, off_filler, off_XY, off_out;
    Py_ssize_t n, i;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO:hash_batch", kwlist, &inputs_obj, &salt_obj, &N_obj,
                                     &r_obj, &p_obj, &buflen_obj))
        return NULL;
    if (context_enter(self) < 0)
        return NULL;
    memset(&bt, 0, sizeof(bt));

    if (get_int_arg(N_obj, "N", 2, 1L << MAX_LOG2_N, &N) < 0 || get_int_arg(r_obj, "r", 1, MAX_R, &r) < 0 ||
        get_int_arg(p_obj, "p", 1, MAX_P, &p) < 0 || get_int_arg(buflen_obj, "buflen", 1, MAX_BUFLEN, &buflen) < 0)
        goto done;
    if (N & (N - 1)) {
        PyErr_SetString(PyExc_ValueError, "N must be a power of two");
        goto done;
    }
    if (PyUnicode_Check(inputs_obj) || PyBytes_Check(inputs_obj) || PyByteArray_Check(inputs_obj) ||
        PyMemoryView_Check(inputs_obj)) {
        PyErr_SetString(PyExc_TypeError, "inputs must be a sequence of bytes objects, not a single bytes/str");
        goto done;
    }
    seq = PySequence_Fast(inputs_obj, "inputs must be a sequence of bytes objects");
    if (seq == NULL)
        goto done;
    n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > (Py_ssize_t)self->lanes) {
        PyErr_Format(PyExc_ValueError, "hash_batch takes 1..%u inputs, got %zd", self->lanes, n);
        goto done;
    }
    if (PyUnicode_Check(salt_obj)) {
        PyErr_SetString(PyExc_TypeError, "salt must be bytes, not str");
        goto done;
    }
    if (PyObject_GetBuffer(salt_obj, &salt_view, PyBUF_SIMPLE) < 0)
        goto done;
    have_salt = 1;
    if (salt_view.len > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "salt is too long");
        goto done;
    }
    total_in = 0;
    for (i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "inputs[%zd] must be bytes, not str", i);
            goto done;
        }
        if (PyObject_GetBuffer(item, &views[n_views], PyBUF_SIMPLE) < 0)
            goto done;
        n_views++;
        if (views[i].len > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "inputs[%zd] is too long", i);
            goto done;
        }
        total_in += (size_t)views[i].len;
    }

    /* Copy everything into one C allocation so the GIL can be released. */
    bt.n_inputs = (unsigned)n;
    bt.N = (uint32_t)N;
    bt.r = (uint32_t)r;
    bt.p = (uint32_t)p;
    bt.buflen = (uint32_t)buflen;
    bt.jobs = bt.n_inputs * bt.p;
    blk = (size_t)128 * bt.r;
    off_in = 0;
    off_salt = align64(off_in + total_in);
    off_B = align64(off_salt + (size_t)salt_view.len);
    off_words = align64(off_B + bt.jobs * blk);
    off_filler = align64(off_words + bt.jobs * blk);
    off_XY = align64(off_filler + blk);
    off_out = align64(off_XY + SCRYPT_SCRATCH_BYTES(self->lanes, bt.r));
    bt.mem_len = align64(off_out + (size_t)bt.n_inputs * bt.buflen);
    {
        void *m = NULL;
        if (posix_memalign(&m, 64, bt.mem_len) != 0) {
            PyErr_NoMemory();
            goto done;
        }
        bt.mem = m;
    }
    memset(bt.mem, 0, bt.mem_len);
    {
        size_t pos = off_in;
        for (i = 0; i < n; i++) {
            if (views[i].len)
                memcpy(bt.mem + pos, views[i].buf, (size_t)views[i].len);
            bt.input[i] = bt.mem + pos;
            bt.input_len[i] = (size_t)views[i].len;
            pos += (size_t)views[i].len;
        }
    }
    if (salt_view.len)
        memcpy(bt.mem + off_salt, salt_view.buf, (size_t)salt_view.len);
    bt.salt = bt.mem + off_salt;
    bt.salt_len = (size_t)salt_view.len;
    bt.Bbytes = bt.mem + off_B;
    bt.words = (uint32_t *)(void *)(bt.mem + off_words);
    bt.filler = (uint32_t *)(void *)(bt.mem + off_filler);
    bt.XY = bt.mem + off_XY;
    bt.out = bt.mem + off_out;
    for (i = 0; i < n_views; i++)
        PyBuffer_Release(&views[i]);
    n_views = 0;
    PyBuffer_Release(&salt_view);
    have_salt = 0;

    Py_BEGIN_ALLOW_THREADS
    rc = run_batch(self, &bt);
    Py_END_ALLOW_THREADS

    if (rc == BATCH_NOMEM) {
        PyErr_Format(PyExc_MemoryError, "cannot allocate the scrypt buffer for N=%lu, r=%lu (128*r*N bytes per lane)",
                     (unsigned long)bt.N, (unsigned long)bt.r);
        goto done;
    }
    if (rc == BATCH_CRYPTO) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL PBKDF2-HMAC-SHA256 failed");
        goto done;
    }
    result = PyList_New(n);
    if (result == NULL)
        goto done;
    for (i = 0; i < n; i++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)bt.out + i * bt.buflen, bt.buflen);
        if (b == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, b);
    }

done:
    for (i = 0; i < n_views; i++)
        PyBuffer_Release(&views[i]);
    if (have_salt)
        PyBuffer_Release(&salt_view);
    Py_XDECREF(seq);
    if (bt.mem != NULL) {
        secure_wipe(bt.mem, bt.mem_len);
        free(bt.mem);
    }
    self->busy = 0;
    return result;
}

PyDoc_STRVAR(Context_wipe_doc,
"wipe() -> None\n"
"\n"
"Zero the ROMix buffer (kept allocated for the next batch). Called when\n"
"the worker idles; hash_batch itself leaves the buffer as it is.");

static PyObject *Context_wipe(ContextObject *self, PyObject *Py_UNUSED(ignored))
{
    if (context_enter(self) < 0)
        return NULL;
    if (self->dirty) {
        Py_BEGIN_ALLOW_THREADS
        secure_wipe(self->buf.p, self->buf.bytes);
        Py_END_ALLOW_THREADS
        self->dirty = 0;
    }
    self->busy = 0;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Context_close_doc,
"close() -> None\n"
"\n"
"Wipe and free the ROMix buffer. Idempotent; any later use of the\n"
"context raises ValueError.");

static PyObject *Context_close(ContextObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->closed)
        Py_RETURN_NONE;
    if (context_enter(self) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    bigbuf_free(&self->buf, self->dirty);
    Py_END_ALLOW_THREADS
    self->dirty = 0;
    self->closed = 1;
    self->busy = 0;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Context_buffer_is_zero_doc,
"buffer_is_zero() -> bool\n"
"\n"
"True when every byte of the ROMix buffer is zero (or none is allocated).\n"
"For tests of wiping.");

static PyObject *Context_buffer_is_zero(ContextObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned char acc = 0;
    const uint8_t *q;
    size_t len, j;

    if (context_enter(self) < 0)
        return NULL;
    q = self->buf.p;
    len = self->buf.bytes;
    Py_BEGIN_ALLOW_THREADS
    for (j = 0; j < len; j++)
        acc |= q[j];
    Py_END_ALLOW_THREADS
    self->busy = 0;
    return PyBool_FromLong(acc == 0);
}

static PyObject *Context_get_buffer_bytes(ContextObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(self->buf.p ? self->buf.bytes : 0);
}

static PyObject *Context_get_lanes(ContextObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->lanes);
}

static PyObject *Context_get_variant(ContextObject *self, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString(self->variant->name);
}

static PyObject *Context_get_closed(ContextObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->closed);
}

static PyMethodDef Context_methods[] = {
    {"hash_batch", (PyCFunction)(void (*)(void))Context_hash_batch, METH_VARARGS | METH_KEYWORDS,
     Context_hash_batch_doc},
    {"wipe", (PyCFunction)Context_wipe, METH_NOARGS, Context_wipe_doc},
    {"close", (PyCFunction)Context_close, METH_NOARGS, Context_close_doc},
    {"buffer_is_zero", (PyCFunction)Context_buffer_is_zero, METH_NOARGS, Context_buffer_is_zero_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Context_getset[] = {
    {"lanes", (getter)Context_get_lanes, NULL, "Most inputs one hash_batch call takes.", NULL},
    {"variant", (getter)Context_get_variant, NULL, "Name of the instruction-set variant.", NULL},
    {"buffer_bytes", (getter)Context_get_buffer_bytes, NULL,
     "Bytes currently allocated for ROMix buffers (0 before the first batch and after close).", NULL},
    {"closed", (getter)Context_get_closed, NULL, "True after close().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Context_doc,
"Context(variant: str)\n"
"\n"
"Per-worker-thread scrypt state for one variant (see variants()).\n"
"\n"
"Attributes: lanes (most inputs per batch), variant, buffer_bytes\n"
"(bytes held for ROMix buffers), closed.\n"
"\n"
"The ROMix buffer (up to lanes * 128 * r * N bytes, 64-byte aligned) is\n"
"allocated on first use and reused across batches; it grows when a batch\n"
"needs more and is given back when it is over four times what a full\n"
"batch of the current parameters needs. It is not wiped after each batch:\n"
"call wipe() when idle and close() at shutdown. All small per-batch state\n"
"is wiped after every batch. A context must not be used by two threads at\n"
"once: a second concurrent call raises RuntimeError.");

static PyTypeObject ContextType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scrypt_helper._native.Context",
    .tp_basicsize = sizeof(ContextObject),
    .tp_dealloc = (destructor)Context_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Context_doc,
    .tp_methods = Context_methods,
    .tp_getset = Context_getset,
    .tp_new = Context_new,
};

/* --------------------------------------------------------- module functions */

PyDoc_STRVAR(variants_doc,
"variants() -> tuple[str, ...]\n"
"\n"
"Variants that this build and this CPU support, best first, e.g.\n"
"('avx512', 'avx2', 'sse2', 'portable').");

static PyObject *mod_variants(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *names[N_BUILT];
    Py_ssize_t n = 0, i;
    PyObject *t;
    size_t b;

    for (b = 0; b < N_BUILT; b++)
        if (variant_supported[b])
            names[n++] = PyUnicode_FromString(BUILT[b].v->name);
    for (i = 0; i < n; i++)
        if (names[i] == NULL)
            goto fail;
    t = PyTuple_New(n);
    if (t == NULL)
        goto fail;
    for (i = 0; i < n; i++)
        PyTuple_SET_ITEM(t, i, names[i]);
    return t;
fail:
    for (i = 0; i < n; i++)
        Py_XDECREF(names[i]);
    return NULL;
}

PyDoc_STRVAR(lanes_doc,
"lanes(variant: str) -> int\n"
"\n"
"Most inputs one hash_batch call of that variant takes (avx512: 8,\n"
"avx2: 6, sse2: 4, portable: 1). ValueError for a variant this build\n"
"does not have.");

static PyObject *mod_lanes(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const struct built_variant *bv = find_variant(arg);
    if (bv == NULL)
        return NULL;
    return PyLong_FromUnsignedLong(variant_lanes(bv->v));
}

PyDoc_STRVAR(kernels_doc,
"_kernels(variant: str) -> tuple[tuple[str, int], ...]\n"
"\n"
"Diagnostics: the ROMix kernels of a variant as (name, lanes), widest\n"
"first. A batch is planned as passes of these kernels.");

static PyObject *mod_kernels(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const struct built_variant *bv = find_variant(arg);
    PyObject *t;
    size_t i;

    if (bv == NULL)
        return NULL;
    t = PyTuple_New((Py_ssize_t)bv->v->n_kernels);
    if (t == NULL)
        return NULL;
    for (i = 0; i < bv->v->n_kernels; i++) {
        PyObject *e = Py_BuildValue("(sI)", bv->v->kernels[i].name, bv->v->kernels[i].lanes);
        if (e == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, e);
    }
    return t;
}

PyDoc_STRVAR(plan_doc,
"_plan(variant: str, jobs: int) -> tuple[tuple[str, int], ...]\n"
"\n"
"Diagnostics: the passes (kernel name, real jobs) that ROMix jobs\n"
"(p * len(inputs)) are spread over.");

static PyObject *mod_plan(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *name_obj, *t;
    const struct built_variant *bv;
    struct plan_step steps[MAX_JOBS];
    int jobs;
    size_t n, i;

    if (!PyArg_ParseTuple(args, "Oi:_plan", &name_obj, &jobs))
        return NULL;
    bv = find_variant(name_obj);
    if (bv == NULL)
        return NULL;
    if (jobs < 1 || jobs > MAX_JOBS) {
        PyErr_Format(PyExc_ValueError, "jobs must be 1..%d", MAX_JOBS);
        return NULL;
    }
    n = make_plan(bv->v, (unsigned)jobs, steps);
    t = PyTuple_New((Py_ssize_t)n);
    if (t == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *e = Py_BuildValue("(sI)", steps[i].kernel->name, steps[i].jobs);
        if (e == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, e);
    }
    return t;
}

static PyMethodDef module_methods[] = {
    {"variants", mod_variants, METH_NOARGS, variants_doc},
    {"lanes", mod_lanes, METH_O, lanes_doc},
    {"_kernels", mod_kernels, METH_O, kernels_doc},
    {"_plan", mod_plan, METH_VARARGS, plan_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(module_doc,
"Native multi-buffer scrypt (RFC 7914) for many independent inputs.\n"
"\n"
"PBKDF2-HMAC-SHA256 comes from OpenSSL's libcrypto; ROMix runs in SIMD\n"
"kernels that push several independent hashes through the same\n"
"instructions, chosen at run time from what the CPU supports:\n"
"\n"
"  avx512    8 lanes: 4 hashes per zmm register, 2 groups interleaved\n"
"  avx2      6 lanes: 2 hashes per ymm register, 3 groups interleaved\n"
"  sse2      4 lanes: 4 hashes interleaved in xmm registers\n"
"  portable  1 lane: plain C, any CPU and byte order\n"
"\n"
"A batch's p * len(inputs) ROMix jobs are spread over passes of each\n"
"variant's kernels so that a lone input takes a one-hash kernel.\n"
"\n"
"Functions: variants() -> tuple[str, ...]; lanes(variant) -> int.\n"
"Class: Context(variant) with hash_batch(inputs, salt, N, r, p, buflen),\n"
"wipe(), close(), buffer_is_zero(), and attributes lanes, variant,\n"
"buffer_bytes, closed.");

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native", module_doc, -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m;
    size_t b;

#if SCRYPT_X86 && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
#endif
    built_names[0] = '\0';
    for (b = 0; b < N_BUILT; b++) {
        variant_supported[b] = BUILT[b].cpu_ok();
        if (b > 0)
            strncat(built_names, ", ", sizeof(built_names) - strlen(built_names) - 1);
        strncat(built_names, BUILT[b].v->name, sizeof(built_names) - strlen(built_names) - 1);
    }
    if (PyType_Ready(&ContextType) < 0)
        return NULL;
    m = PyModule_Create(&native_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ContextType);
    if (PyModule_AddObject(m, "Context", (PyObject *)&ContextType) < 0) {
        Py_DECREF(&ContextType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
