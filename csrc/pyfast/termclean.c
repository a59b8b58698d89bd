/*
 * termclean.c - SIGTERM cleans up after the pools a program started in a thread other
 * than its main one.  Python sets signal handlers from the main thread only, so such a
 * pool cannot turn SIGTERM into its orderly stop: this C handler unlinks each such
 * pool's segments (the control segment and every channel its table names) and then
 * lets the signal end the process as it would have.  The workers follow by their death
 * signal; the pool's lock is the kernel's to release.  Only unlink() and reads of the
 * mapped channel table: async-signal-safe.  A handler anyone sets later replaces it.
 */
#include "pyfast.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define TERM_POOLS 8
#define SHM_PREFIX "/dev/shm/rtudp."

struct term_pool {
    _Atomic(const struct rtudp_control *) ctl; /* NULL: a free entry */
    char name[RTUDP_NAME_MAX + 1];
};

static struct term_pool term_pools[TERM_POOLS];
static int term_installed;

/* dst = a + b + c (each NUL-terminated), cut to fit `cap` */
static void join3(char *dst, size_t cap, const char *a, const char *b, const char *c)
{
    size_t n = 0;
    for (const char *parts[3] = {a, b, c}, **p = parts; p < parts + 3; p++)
        for (const char *s = *p; *s && n + 1 < cap; s++)
            dst[n++] = *s;
    dst[n] = 0;
}

static void unlink_pool(const struct term_pool *tp, const struct rtudp_control *ctl)
{
    char path[sizeof SHM_PREFIX + 2 * (RTUDP_NAME_MAX + 1)];
    for (uint32_t i = 0; i < RTUDP_MAX_CHANNELS; i++) {
        const struct rtudp_channel_slot *s = &ctl->channels[i];
        if (s->state == RTUDP_CHANNEL_FREE || !s->name[0] ||
            memchr(s->name, 0, sizeof s->name) == NULL)
            continue;
        char ch[RTUDP_NAME_MAX + 2] = ".";
        memcpy(ch + 1, s->name, strnlen(s->name, RTUDP_NAME_MAX));
        join3(path, sizeof path, SHM_PREFIX, tp->name, ch);
        unlink(path);
    }
    join3(path, sizeof path, SHM_PREFIX, tp->name, "");
    unlink(path);
}

static void on_term(int sig)
{
    int saved = errno;
    for (int i = 0; i < TERM_POOLS; i++) {
        const struct rtudp_control *ctl =
            atomic_load_explicit(&term_pools[i].ctl, memory_order_acquire);
        if (ctl)
            unlink_pool(&term_pools[i], ctl);
    }
    signal(sig, SIG_DFL);
    raise(sig); /* blocked until we return: then it ends the process, as with no handler */
    errno = saved;
}

/* term_cleanup(pool, control_address): with an address, SIGTERM unlinks that pool's
 * segments (the handler is installed if SIGTERM has none); 0 forgets the pool.
 * Returns whether the handler is ours (False: someone else's handles SIGTERM). */
static PyObject *term_cleanup(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    const char *name;
    Py_ssize_t len;
    if (nargs != 2 || !(name = PyUnicode_AsUTF8AndSize(args[0], &len))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "term_cleanup(pool: str, control_address: int)");
        return NULL;
    }
    unsigned long long addr = PyLong_AsUnsignedLongLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    if (len < 1 || len > RTUDP_NAME_MAX)
        return PyErr_Format(PyExc_ValueError, "term_cleanup: pool name %R", args[0]);
    struct term_pool *slot = NULL, *free_slot = NULL;
    for (int i = 0; i < TERM_POOLS; i++) {
        struct term_pool *tp = &term_pools[i];
        const struct rtudp_control *ctl = atomic_load(&tp->ctl);
        if (ctl && strcmp(tp->name, name) == 0)
            slot = tp;
        else if (!ctl && !free_slot)
            free_slot = tp;
    }
    if (!addr) {
        if (slot)
            atomic_store_explicit(&slot->ctl, NULL, memory_order_release);
        Py_RETURN_FALSE;
    }
    if (!slot && !(slot = free_slot))
        Py_RETURN_FALSE; /* more pools than entries: as before, no cleanup */
    if (!term_installed) {
        struct sigaction old;
        if (sigaction(SIGTERM, NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
            (old.sa_flags & SA_SIGINFO))
            Py_RETURN_FALSE;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term;
        sigfillset(&sa.sa_mask);
        if (sigaction(SIGTERM, &sa, NULL) != 0)
            return PyErr_SetFromErrno(PyExc_OSError);
        term_installed = 1;
    }
    memcpy(slot->name, name, (size_t)len + 1);
    atomic_store_explicit(&slot->ctl, (const struct rtudp_control *)(uintptr_t)addr,
                          memory_order_release);
    Py_RETURN_TRUE;
}

PyMethodDef pyf_term_methods[] = {
    {"term_cleanup", (PyCFunction)(void (*)(void))term_cleanup, METH_FASTCALL,
     "term_cleanup(pool, control_address) -> bool: SIGTERM unlinks the pool's segments "
     "before it ends the process (for a pool started off the main thread); 0 forgets it."},
    {NULL, NULL, 0, NULL},
};
