/*
 * drx.c - the module's functions for direct receive (../direct_recv.h) that belong to
 * no handle: a new reader joining a channel, and the tests' stop after a receive.
 */
#include "pyfast.h"

#include "../direct_recv.h"

/* drx_reader_joined(block_address): wait until a read of the channel socket that
 * another process is making now is published (../direct_recv.h) */
static PyObject *drx_reader_joined(PyObject *mod, PyObject *arg)
{
    (void)mod;
    void *block = PyLong_AsVoidPtr(arg);
    if (!block) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "drx_reader_joined: a block address, not 0");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rtudp_drx_reader_joined((struct rtudp_channel_block *)block);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* drx_stop_after_receive(on): tests only */
static PyObject *drx_stop_after_receive(PyObject *mod, PyObject *arg)
{
    (void)mod;
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    rtudp_drx_stop_after_receive(on);
    Py_RETURN_NONE;
}

PyMethodDef pyf_drx_methods[] = {
    {"drx_reader_joined", drx_reader_joined, METH_O,
     "drx_reader_joined(block_address): wait until another process's read of the channel "
     "socket in progress is published (a new reader's cursor starts after it)"},
    {"drx_stop_after_receive", drx_stop_after_receive, METH_O,
     "drx_stop_after_receive(on): for tests, a direct reader stops itself (SIGSTOP) after "
     "each receive from the socket, before it publishes"},
    {NULL, NULL, 0, NULL},
};
