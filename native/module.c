/*
 * module.c - the scrypt_helper._native extension: binds the batch driver
 * (scrypt_driver.h) to Python. It turns arguments into C values, copies the
 * inputs out of Python objects so the driver can run without the GIL, and
 * maps the driver's status codes to Python exceptions.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "scrypt_driver.h"
#include "scrypt_plan.h"

/* ---------------------------------------------------------------- helpers */

/* The value of a limit macro as a string literal, for docstrings. */
#define STR_(x) #x
#define STR(x) STR_(x)

/* "avx512, avx2, sse2, portable": every variant this build has. */
static void built_names(char *buf, size_t len)
{
    const struct scrypt_variant *v[SCRYPT_MAX_VARIANTS];
    size_t n = scrypt_variants_built(v, SCRYPT_MAX_VARIANTS), i;

    buf[0] = '\0';
    for (i = 0; i < n && i < SCRYPT_MAX_VARIANTS; i++) {
        if (i > 0)
            strncat(buf, ", ", len - strlen(buf) - 1);
        strncat(buf, v[i]->name, len - strlen(buf) - 1);
    }
}

static PyObject *unknown_variant(PyObject *name_obj)
{
    char names[128];

    built_names(names, sizeof(names));
    PyErr_Format(PyExc_ValueError, "unknown scrypt variant %R; this build has: %s", name_obj, names);
    return NULL;
}

/* The built variant a str names; NULL with TypeError or ValueError set. */
static const struct scrypt_variant *find_variant(PyObject *name_obj)
{
    const struct scrypt_variant *v;
    const char *name;
    Py_ssize_t len;

    if (!PyUnicode_Check(name_obj)) {
        PyErr_Format(PyExc_TypeError, "variant must be str, not %.100s", Py_TYPE(name_obj)->tp_name);
        return NULL;
    }
    name = PyUnicode_AsUTF8AndSize(name_obj, &len);
    if (name == NULL)
        return NULL;
    /* "avx512\0junk" must not pass as "avx512". */
    v = strlen(name) == (size_t)len ? scrypt_variant_find(name) : NULL;
    if (v == NULL)
        unknown_variant(name_obj);
    return v;
}

/*
 * Read an int argument into *out for the driver to range-check: negative
 * and oversized values become UINT64_MAX, which no limit admits. A bool is
 * refused: True is no block size.
 */
static int get_int_arg(PyObject *obj, const char *name, uint64_t *out)
{
    int overflow = 0;
    long long v;

    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be int, not %.100s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = overflow || v < 0 ? UINT64_MAX : (uint64_t)v;
    return 0;
}

/*
 * N, r and p of a memory-sizing call (reserve, footprint) into *prm, checked
 * as the driver checks a hash's (buflen 1: no output is made). -1 with an
 * exception set on a bad value.
 */
static int get_memory_params(PyObject *N_obj, PyObject *r_obj, PyObject *p_obj, struct scrypt_params *prm)
{
    char why[80];

    prm->buflen = 1;
    if (get_int_arg(N_obj, "N", &prm->N) < 0 || get_int_arg(r_obj, "r", &prm->r) < 0 ||
        get_int_arg(p_obj, "p", &prm->p) < 0)
        return -1;
    if (scrypt_check_params(prm, why, sizeof(why)) != SCRYPT_OK) {
        PyErr_SetString(PyExc_ValueError, why);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- Context */

typedef struct {
    PyObject_HEAD
    struct scrypt_ctx ctx;
    int closed;
    int busy; /* a call is running with the GIL released */
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
    static char *kwlist[] = {"variant", "lock_memory", NULL};
    PyObject *name_obj, *lock_obj = Py_False;
    const struct scrypt_variant *v;
    struct scrypt_ctx ctx;
    ContextObject *self;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O!:Context", kwlist, &name_obj, &PyBool_Type, &lock_obj))
        return NULL;
    v = find_variant(name_obj);
    if (v == NULL)
        return NULL;
    rc = scrypt_ctx_init(&ctx, v->name);
    if (rc == SCRYPT_EUNSUPPORTED) {
        PyErr_Format(PyExc_ValueError, "scrypt variant %R is not supported by this CPU", name_obj);
        return NULL;
    }
    if (rc != SCRYPT_OK)
        return unknown_variant(name_obj);
    ctx.lock_memory = lock_obj == Py_True;
    self = (ContextObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->ctx = ctx;
    return (PyObject *)self;
}

static void Context_dealloc(ContextObject *self)
{
    scrypt_ctx_free(&self->ctx);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/*
 * A contiguous bytes-like view of obj, for `what` (e.g. "inputs[2]"): a
 * str, or an object with no buffer or only a strided one, is a TypeError.
 */
static int get_bytes(PyObject *obj, Py_buffer *view, const char *what)
{
    if (PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes, not str", what);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0)
        return 0;
    if (PyErr_ExceptionMatches(PyExc_BufferError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous bytes-like object", what);
    }
    return -1;
}

/*
 * A batch's inputs and salt copied out of their Python objects (another
 * thread may change a bytearray while the GIL is released), with room for
 * the outputs: one allocation, wiped when freed.
 */
struct batch_copy {
    const uint8_t *input[SCRYPT_MAX_LANES];
    size_t input_len[SCRYPT_MAX_LANES];
    const uint8_t *salt;
    size_t salt_len;
    uint8_t *out;
    uint8_t *mem;
    size_t mem_len;
};

static int batch_copy_fill(struct batch_copy *bc, const Py_buffer *views, Py_ssize_t n, const Py_buffer *salt,
                           size_t out_len)
{
    size_t pos = 0, total = out_len;
    Py_ssize_t i;

    /* Each length is at most INT_MAX (checked by the caller) and there are
     * at most SCRYPT_MAX_LANES + 1 of them, but a 32-bit size_t may wrap:
     * each sum is checked before it is made. */
    for (i = 0; i < n; i++) {
        if ((size_t)views[i].len > SIZE_MAX - total)
            return -1;
        total += (size_t)views[i].len;
    }
    if ((size_t)salt->len > SIZE_MAX - total)
        return -1;
    total += (size_t)salt->len;
    bc->mem_len = total;
    bc->mem = malloc(total ? total : 1);
    if (bc->mem == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        if (views[i].len)
            memcpy(bc->mem + pos, views[i].buf, (size_t)views[i].len);
        bc->input[i] = bc->mem + pos;
        bc->input_len[i] = (size_t)views[i].len;
        pos += (size_t)views[i].len;
    }
    if (salt->len)
        memcpy(bc->mem + pos, salt->buf, (size_t)salt->len);
    bc->salt = bc->mem + pos;
    bc->salt_len = (size_t)salt->len;
    bc->out = bc->mem + pos + (size_t)salt->len;
    return 0;
}

static void batch_copy_free(struct batch_copy *bc)
{
    if (bc->mem != NULL) {
        scrypt_secure_wipe(bc->mem, bc->mem_len);
        free(bc->mem);
    }
    bc->mem = NULL;
}

/* Raise the exception for a driver status other than SCRYPT_OK. */
static void raise_status(int rc, const struct scrypt_params *prm)
{
    switch (rc) {
    case SCRYPT_ENOMEM:
        PyErr_Format(PyExc_MemoryError, "cannot allocate the scrypt buffer for N=%llu, r=%llu (128*r*N bytes per lane)",
                     (unsigned long long)prm->N, (unsigned long long)prm->r);
        break;
    case SCRYPT_ELOCK:
        PyErr_Format(PyExc_MemoryError,
                     "cannot lock the scrypt buffer for N=%llu, r=%llu in memory: RLIMIT_MEMLOCK is too low "
                     "(raise it, or grant CAP_IPC_LOCK)",
                     (unsigned long long)prm->N, (unsigned long long)prm->r);
        break;
    case SCRYPT_ECRYPTO:
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL PBKDF2-HMAC-SHA256 failed");
        break;
    case SCRYPT_EPARAM:
        PyErr_SetString(PyExc_ValueError, scrypt_strerror(rc));
        break;
    default:
        PyErr_SetString(PyExc_RuntimeError, scrypt_strerror(rc));
        break;
    }
}

PyDoc_STRVAR(Context_hash_batch_doc,
"hash_batch(inputs, salt, N, r, p, buflen) -> list[bytes]\n"
"\n"
"Return scrypt(input, salt, N, r, p, buflen) for each input, in order.\n"
"\n"
"inputs: a sequence of 1..lanes bytes-like passwords; salt: bytes-like;\n"
"N: power of two, 2..2**" STR(SCRYPT_MAX_LOG2_N) "; r: 1.." STR(SCRYPT_MAX_R) "; p: 1.." STR(SCRYPT_MAX_P)
"; buflen: 1.." STR(SCRYPT_MAX_BUFLEN) ".\n"
"The p * len(inputs) ROMix jobs are spread over the kernel's lanes. Runs\n"
"with the GIL released. Raises TypeError on wrong types (a bool is no\n"
"int here), ValueError on bad values or a closed context, MemoryError\n"
"when the buffers cannot be allocated (or locked), RuntimeError when the\n"
"context is busy in another thread.");

static PyObject *Context_hash_batch(ContextObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"inputs", "salt", "N", "r", "p", "buflen", NULL};
    PyObject *inputs_obj, *salt_obj, *N_obj, *r_obj, *p_obj, *buflen_obj;
    PyObject *seq = NULL, *result = NULL;
    Py_buffer views[SCRYPT_MAX_LANES];
    Py_buffer salt_view;
    int n_views = 0, have_salt = 0;
    struct scrypt_params prm;
    struct scrypt_sizes sz;
    struct batch_copy bc;
    char why[80];
    Py_ssize_t n = 0, i;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO:hash_batch", kwlist, &inputs_obj, &salt_obj, &N_obj,
                                     &r_obj, &p_obj, &buflen_obj))
        return NULL;
    if (context_enter(self) < 0)
        return NULL;
    memset(&bc, 0, sizeof(bc));

    if (get_int_arg(N_obj, "N", &prm.N) < 0 || get_int_arg(r_obj, "r", &prm.r) < 0 ||
        get_int_arg(p_obj, "p", &prm.p) < 0 || get_int_arg(buflen_obj, "buflen", &prm.buflen) < 0)
        goto done;
    if (scrypt_check_params(&prm, why, sizeof(why)) != SCRYPT_OK) {
        PyErr_SetString(PyExc_ValueError, why);
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
    if (n < 1 || n > (Py_ssize_t)self->ctx.lanes) {
        PyErr_Format(PyExc_ValueError, "hash_batch takes 1..%u inputs, got %zd", self->ctx.lanes, n);
        goto done;
    }
    if (get_bytes(salt_obj, &salt_view, "salt") < 0)
        goto done;
    have_salt = 1;
    if (salt_view.len > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "salt is too long");
        goto done;
    }
    for (i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        char what[40];
        snprintf(what, sizeof(what), "inputs[%zd]", i);
        if (get_bytes(item, &views[n_views], what) < 0)
            goto done;
        n_views++;
        if (views[i].len > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "inputs[%zd] is too long", i);
            goto done;
        }
    }

    /* The outputs' size (and every size the driver uses), bounded before it is computed. */
    rc = scrypt_batch_sizes(&prm, (size_t)n, self->ctx.lanes, &sz);
    if (rc != SCRYPT_OK) {
        raise_status(rc, &prm);
        goto done;
    }
    if (batch_copy_fill(&bc, views, n, &salt_view, sz.out_bytes) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < n_views; i++)
        PyBuffer_Release(&views[i]);
    n_views = 0;
    PyBuffer_Release(&salt_view);
    have_salt = 0;

    Py_BEGIN_ALLOW_THREADS
    rc = scrypt_hash_batch(&self->ctx, bc.input, bc.input_len, (size_t)n, bc.salt, bc.salt_len, &prm, bc.out);
    Py_END_ALLOW_THREADS

    if (rc != SCRYPT_OK) {
        raise_status(rc, &prm);
        goto done;
    }
    result = PyList_New(n);
    if (result == NULL)
        goto done;
    for (i = 0; i < n; i++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)bc.out + (size_t)i * prm.buflen,
                                                (Py_ssize_t)prm.buflen);
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
    batch_copy_free(&bc);
    self->busy = 0;
    return result;
}

PyDoc_STRVAR(Context_reserve_doc,
"reserve(N, r, p) -> None\n"
"\n"
"Allocate the buffers a full batch (lanes inputs) of these parameters\n"
"uses and write every page of them, so that the first hash_batch waits\n"
"for no page fault. They hold zeros afterwards. Raises like hash_batch.");

static PyObject *Context_reserve(ContextObject *self, PyObject *args)
{
    PyObject *N_obj, *r_obj, *p_obj;
    struct scrypt_params prm;
    int rc;

    if (!PyArg_ParseTuple(args, "OOO:reserve", &N_obj, &r_obj, &p_obj))
        return NULL;
    if (context_enter(self) < 0)
        return NULL;
    if (get_memory_params(N_obj, r_obj, p_obj, &prm) < 0)
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    rc = scrypt_ctx_reserve(&self->ctx, &prm);
    Py_END_ALLOW_THREADS
    if (rc != SCRYPT_OK) {
        raise_status(rc, &prm);
        goto fail;
    }
    self->busy = 0;
    Py_RETURN_NONE;
fail:
    self->busy = 0;
    return NULL;
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
    if (self->ctx.dirty) {
        Py_BEGIN_ALLOW_THREADS
        scrypt_ctx_wipe(&self->ctx);
        Py_END_ALLOW_THREADS
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
    scrypt_ctx_free(&self->ctx);
    Py_END_ALLOW_THREADS
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
    int zero;

    if (context_enter(self) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    zero = scrypt_ctx_buffer_is_zero(&self->ctx);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    return PyBool_FromLong(zero);
}

static PyObject *Context_get_buffer_bytes(ContextObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(scrypt_ctx_buffer_bytes(&self->ctx));
}

static PyObject *Context_get_lanes(ContextObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->ctx.lanes);
}

static PyObject *Context_get_variant(ContextObject *self, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString(self->ctx.variant->name);
}

static PyObject *Context_get_closed(ContextObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *Context_get_lock_memory(ContextObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->ctx.lock_memory);
}

static PyMethodDef Context_methods[] = {
    {"hash_batch", (PyCFunction)(void (*)(void))Context_hash_batch, METH_VARARGS | METH_KEYWORDS,
     Context_hash_batch_doc},
    {"reserve", (PyCFunction)Context_reserve, METH_VARARGS, Context_reserve_doc},
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
    {"lock_memory", (getter)Context_get_lock_memory, NULL, "True when the buffers are locked in RAM (mlock).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Context_doc,
"Context(variant: str, *, lock_memory: bool = False)\n"
"\n"
"Per-worker-thread scrypt state for one variant (see variants()).\n"
"\n"
"Attributes: lanes (most inputs per batch), variant, buffer_bytes\n"
"(bytes held for ROMix buffers), closed, lock_memory.\n"
"\n"
"The ROMix buffer (up to lanes * 128 * r * N bytes, 64-byte aligned) is\n"
"allocated on first use and reused across batches; it grows when a batch\n"
"needs more and is given back when it is over four times what a full\n"
"batch of the current parameters needs. It is not wiped after each batch:\n"
"call wipe() when idle and close() at shutdown. The small per-batch state\n"
"is kept too, and wiped after every batch. Both are left out of core\n"
"dumps; with lock_memory they are locked in RAM (mlock), and a batch whose\n"
"buffers cannot be locked raises MemoryError (footprint() says how much a\n"
"context locks). A context must not be used by two threads at once: a\n"
"second concurrent call raises RuntimeError.");

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
    const struct scrypt_variant *v[SCRYPT_MAX_VARIANTS];
    size_t n = scrypt_variants_supported(v, SCRYPT_MAX_VARIANTS), i;
    PyObject *t = PyTuple_New((Py_ssize_t)n);

    if (t == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *name = PyUnicode_FromString(v[i]->name);
        if (name == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, name);
    }
    return t;
}

PyDoc_STRVAR(lanes_doc,
"lanes(variant: str) -> int\n"
"\n"
"Most inputs one hash_batch call of that variant takes (avx512: 8,\n"
"avx2: 6, sse2: 4, portable: 1). ValueError for a variant this build\n"
"does not have.");

static PyObject *mod_lanes(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const struct scrypt_variant *v = find_variant(arg);

    if (v == NULL)
        return NULL;
    return PyLong_FromUnsignedLong(scrypt_variant_lanes(v));
}

PyDoc_STRVAR(kernels_doc,
"_kernels(variant: str) -> tuple[tuple[str, int], ...]\n"
"\n"
"Diagnostics: the ROMix kernels of a variant as (name, lanes), widest\n"
"first. A batch is planned as passes of these kernels.");

static PyObject *mod_kernels(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const struct scrypt_variant *v = find_variant(arg);
    PyObject *t;
    size_t i;

    if (v == NULL)
        return NULL;
    t = PyTuple_New((Py_ssize_t)v->n_kernels);
    if (t == NULL)
        return NULL;
    for (i = 0; i < v->n_kernels; i++) {
        PyObject *e = Py_BuildValue("(sI)", v->kernels[i].name, v->kernels[i].lanes);
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
    const struct scrypt_variant *v;
    struct scrypt_plan_step steps[SCRYPT_MAX_JOBS];
    int jobs;
    size_t n, i;

    if (!PyArg_ParseTuple(args, "Oi:_plan", &name_obj, &jobs))
        return NULL;
    v = find_variant(name_obj);
    if (v == NULL)
        return NULL;
    if (jobs < 1 || jobs > SCRYPT_MAX_JOBS) {
        PyErr_Format(PyExc_ValueError, "jobs must be 1..%d", SCRYPT_MAX_JOBS);
        return NULL;
    }
    n = scrypt_plan(v, (unsigned)jobs, steps);
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

PyDoc_STRVAR(footprint_doc,
"footprint(variant: str, N: int, r: int, p: int) -> int\n"
"\n"
"Bytes one context of the variant maps for a full batch of these\n"
"parameters (its ROMix buffer and its small state, rounded up as they are\n"
"allocated): what it locks with lock_memory. ValueError for parameters\n"
"out of range, as hash_batch.");

static PyObject *mod_footprint(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"variant", "N", "r", "p", NULL};
    PyObject *name_obj, *N_obj, *r_obj, *p_obj;
    const struct scrypt_variant *v;
    struct scrypt_params prm;
    size_t bytes;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO:footprint", kwlist, &name_obj, &N_obj, &r_obj, &p_obj))
        return NULL;
    v = find_variant(name_obj);
    if (v == NULL)
        return NULL;
    if (get_memory_params(N_obj, r_obj, p_obj, &prm) < 0)
        return NULL;
    rc = scrypt_ctx_footprint(v, &prm, &bytes);
    if (rc != SCRYPT_OK) {
        raise_status(rc, &prm);
        return NULL;
    }
    return PyLong_FromSize_t(bytes);
}

static PyMethodDef module_methods[] = {
    {"variants", mod_variants, METH_NOARGS, variants_doc},
    {"footprint", (PyCFunction)(void (*)(void))mod_footprint, METH_VARARGS | METH_KEYWORDS, footprint_doc},
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
"Functions: variants() -> tuple[str, ...]; lanes(variant) -> int;\n"
"footprint(variant, N, r, p) -> int.\n"
"Class: Context(variant, *, lock_memory=False) with hash_batch(inputs,\n"
"salt, N, r, p, buflen), wipe(), close(), buffer_is_zero(), and\n"
"attributes lanes, variant, buffer_bytes, closed, lock_memory.");

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native", module_doc, -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m;

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
