/*
 * pyfast.c - rtudp.shmring._fast: the rings' per-call and batch paths, and a channel's
 * send() and recv(), as CPython methods (psutil style: thin C, the API lives in
 * Python above it).
 *
 * Everything else is bound through cffi (rtudp.shmring._native).  These paths are
 * not, because a cffi call converts its arguments, releases and re-takes the GIL
 * and cannot return a bytes object; measured here that costs ~220 ns per call,
 * several times the ring operation itself.  As METH_FASTCALL methods of C base
 * types they cost tens of ns, and a batch becomes one loop in C that builds the
 * list[bytes] directly.
 *
 * Non-blocking calls keep the GIL (they take nanoseconds); a call that may wait
 * releases it around the wait.  A closed ring is "unbound": every method checks.
 *
 * The module's files (csrc/pyfast/, one job each; pyfast.h is what they share):
 *   pyfast.c           this: the module, its types and the error classes it raises
 *   pyfast/args.c      arguments in (positional or keyword, ints, flags, counts),
 *                      errors out (closed, too big, a ring's error code)
 *   pyfast/port.c      what the ring ports share: binding to a mapped ring, records
 *   pyfast/mpsc.c      MpscPort, C base of shmring's MpscRing: put / get, batches
 *   pyfast/bcast.c     BcastPort, C base of BroadcastRing: the writer
 *   pyfast/cursor.c    BcastCursor, C base of BroadcastReader: reads, waits, and
 *                      RX records as packet tuples
 *   pyfast/rtpframe.c  a jitter-buffered rtp channel's RX records as frame tuples
 *   pyfast/batch.c     packets as columns: recv_batch / send_batch (numpy arrays)
 *   pyfast/channel.c   ChannelBase, C base of rtudp.Channel: send() / recv() in C
 *                      for the common case (the rest in the subclass's Python), and
 *                      direct sends on the channel socket (../direct_send.h)
 *   pyfast/rtwait.c    the module's functions: a thread that waits at real-time
 *                      priority (../rt_wait.h)
 *   pyfast/liveness.c  whether a channel handle may still send and receive
 *   pyfast/termclean.c SIGTERM unlinks the segments of pools started off the main thread
 *   pyfast/drx.c       direct receive's functions: a reader joining, a test's stop
 * They are in a folder of their own because the C unit tests (tests/c/Makefile)
 * link every .c directly in csrc/ but this file into each test program, without Python.
 */
#include "pyfast/pyfast.h"

static struct PyModuleDef fast_module = {
    PyModuleDef_HEAD_INIT, "rtudp.shmring._fast",
    "The rings' per-call and batch paths and Channel's send/recv as CPython methods "
    "(see csrc/pyfast.c).", -1, pyf_rtwait_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fast(void)
{
    PyObject *errors = PyImport_ImportModule("rtudp.shmring.errors");
    if (!errors)
        return NULL;
    pyf_RtUdpError = PyObject_GetAttrString(errors, "RtUdpError");
    pyf_BadSegmentError = PyObject_GetAttrString(errors, "BadSegmentError");
    pyf_BackPressureError = PyObject_GetAttrString(errors, "BackPressureError");
    Py_DECREF(errors);
    if (!pyf_RtUdpError || !pyf_BadSegmentError || !pyf_BackPressureError)
        return NULL;
    if (PyType_Ready(&pyf_MpscPortType) < 0 || PyType_Ready(&pyf_BcastPortType) < 0 ||
        PyType_Ready(&pyf_BcastCursorType) < 0 || pyf_channel_ready() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fast_module);
    if (!m)
        return NULL;
    if (PyModule_AddFunctions(m, pyf_term_methods) < 0 ||
        PyModule_AddFunctions(m, pyf_drx_methods) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (pyf_rtwait_constants(m) < 0 ||
        PyModule_AddObjectRef(m, "MpscPort", (PyObject *)&pyf_MpscPortType) < 0 ||
        PyModule_AddObjectRef(m, "BcastPort", (PyObject *)&pyf_BcastPortType) < 0 ||
        PyModule_AddObjectRef(m, "BcastCursor", (PyObject *)&pyf_BcastCursorType) < 0 ||
        PyModule_AddObjectRef(m, "ChannelBase", (PyObject *)&pyf_ChannelBaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
