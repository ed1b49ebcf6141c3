/*
 * ociruntime.linux._kernel: raw Linux system calls for pyrunc, without ctypes.
 *
 * Loading ctypes (libffi, _ctypes, ctypes/__init__) costs ~3-4 ms on every create, run and
 * exec; this module loads in well under a millisecond. It has three functions:
 *
 *   syscall(number, *args) -> int
 *       Up to six arguments, each an int (passed as a machine word; negative ints in two's
 *       complement), None (NULL), or an object with the buffer protocol (bytes, bytearray,
 *       memoryview: its address; bytes are NUL-terminated, so they serve as C strings).
 *       Returns the call's result; raises OSError(errno) when it returns -1.
 *       The GIL is released during the call; the buffers stay held until it returns.
 *
 *   address(buffer) -> int
 *       The address of a buffer's first byte, for structures that point at other buffers
 *       (the caller keeps the buffer alive and unresized while the address is in use).
 *
 *   fork_into_cgroup(cgroup_fd) -> int
 *       os.fork(), but the child is born in the cgroup v2 directory `cgroup_fd`
 *       (clone3 with CLONE_INTO_CGROUP): no migration, so no wait for the RCU grace period
 *       that the first cgroup.procs write after an idle spell costs (5-15 ms here). Only for
 *       a single-threaded caller: glibc is bypassed, so the child's copy of glibc's cached
 *       thread id stays the parent's (pyrunc's child runs its own code and then execs).
 *       Python's fork hooks run as for os.fork. OSError when the kernel refuses (ENOSYS
 *       before 5.3, E2BIG/EINVAL without CLONE_INTO_CGROUP, EACCES/EPERM, ...).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sched.h>

#define MAX_ARGS 6

static int
to_word(PyObject *arg, long *word, Py_buffer *view, int *held)
{
    *held = 0;
    if (arg == Py_None) {
        *word = 0;
        return 0;
    }
    if (PyLong_Check(arg)) {
        unsigned long value = PyLong_AsUnsignedLongMask(arg);
        if (value == (unsigned long)-1 && PyErr_Occurred())
            return -1;
        *word = (long)value;
        return 0;
    }
    if (PyObject_GetBuffer(arg, view, PyBUF_SIMPLE) == 0) {
        *held = 1;
        *word = (long)view->buf;
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "syscall argument must be int, None or a buffer, not %.100s",
                 Py_TYPE(arg)->tp_name);
    return -1;
}

static PyObject *
kernel_syscall(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long words[MAX_ARGS] = {0};
    Py_buffer views[MAX_ARGS];
    int held[MAX_ARGS] = {0};
    long number, result;
    int saved_errno = 0;
    Py_ssize_t i, count = nargs - 1;

    (void)module;
    if (nargs < 1 || count > MAX_ARGS) {
        PyErr_SetString(PyExc_TypeError, "syscall(number, *args) takes 1 to 7 arguments");
        return NULL;
    }
    number = PyLong_AsLong(args[0]);
    if (number == -1 && PyErr_Occurred())
        return NULL;
    for (i = 0; i < count; i++) {
        if (to_word(args[i + 1], &words[i], &views[i], &held[i]) < 0)
            goto release;
    }
    Py_BEGIN_ALLOW_THREADS
    result = syscall(number, words[0], words[1], words[2], words[3], words[4], words[5]);
    saved_errno = errno;
    Py_END_ALLOW_THREADS
    for (i = 0; i < count; i++) {
        if (held[i])
            PyBuffer_Release(&views[i]);
    }
    if (result == -1) {
        errno = saved_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(result);

release:
    for (i = 0; i < count; i++) {
        if (held[i])
            PyBuffer_Release(&views[i]);
    }
    return NULL;
}

static PyObject *
kernel_address(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    void *buf;

    (void)module;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    buf = view.buf;
    PyBuffer_Release(&view);
    return PyLong_FromVoidPtr(buf);
}

static PyObject *
kernel_fork_into_cgroup(PyObject *module, PyObject *arg)
{
#if defined(SYS_clone3) && defined(CLONE_INTO_CGROUP)
    struct clone_args args;
    long fd, pid;
    int saved_errno;

    (void)module;
    fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = (unsigned long long)fd;
    PyOS_BeforeFork();
    pid = syscall(SYS_clone3, &args, sizeof args);
    saved_errno = errno;
    if (pid == 0) {
        PyOS_AfterFork_Child();
        return PyLong_FromLong(0);
    }
    PyOS_AfterFork_Parent();
    if (pid < 0) {
        errno = saved_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(pid);
#else
    (void)module;
    (void)arg;
    errno = ENOSYS;
    return PyErr_SetFromErrno(PyExc_OSError);
#endif
}

static PyMethodDef kernel_methods[] = {
    {"syscall", (PyCFunction)(void (*)(void))kernel_syscall, METH_FASTCALL,
     "syscall(number, *args) -> int: a raw system call; OSError when it returns -1."},
    {"address", kernel_address, METH_O,
     "address(buffer) -> int: the address of a buffer's first byte."},
    {"fork_into_cgroup", kernel_fork_into_cgroup, METH_O,
     "fork_into_cgroup(cgroup_fd) -> int: os.fork() with the child born in a cgroup v2."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT, "_kernel", "Raw Linux system calls for pyrunc.", 0, kernel_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__kernel(void)
{
    return PyModuleDef_Init(&kernel_module);
}
