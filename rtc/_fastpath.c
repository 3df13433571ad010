/*
 * tiaojie.rtc._fastpath: the per-packet system calls and SRTP of the packet media plane.
 *
 * Python (rtc/aiortc_internals.py) keeps every decision: which subscriber gets a packet,
 * its rewritten header, the NACK history, the counters. This module only does what the
 * interpreter is slow at, per packet:
 *
 *   send(items)        SRTP-protect each copy (header + payload) and send them all with
 *                      one sendmmsg(2) per run of copies leaving the same socket (in
 *                      single-port mode every subscriber shares one socket: one system
 *                      call per received packet);
 *   unprotect(s, data) SRTP-unprotect one received RTP packet (None when it fails);
 *   parse(data)        the fixed RTP header fields and the payload bounds.
 *
 * SRTP is libsrtp as pylibsrtp bundles it: Python hands over the addresses of that
 * library's srtp_protect/srtp_unprotect (set_srtp) and each session's srtp_t, so the keys
 * stay where DTLS put them and there is one libsrtp in the process. Nothing here trusts
 * a packet's bytes: lengths are checked before any copy, every buffer is fixed-size.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

/* libsrtp 2: srtp_err_status_t srtp_protect(srtp_t ctx, void *rtp_hdr, int *len_ptr) */
typedef int (*srtp_fn)(void *ctx, void *packet, int *len);

static srtp_fn srtp_protect_fn = NULL;
static srtp_fn srtp_unprotect_fn = NULL;

#define BATCH 64
#define BUFFER 2048
/* SRTP_MAX_TRAILER_LEN (tag + MKI), as pylibsrtp reserves it */
#define TRAILER 144
#define MAX_PLAIN (BUFFER - TRAILER)

static unsigned char buffers[BATCH][BUFFER];
static unsigned char rx_buffer[BUFFER];
static struct mmsghdr messages[BATCH];
static struct iovec vectors[BATCH];
static struct sockaddr_storage addresses[BATCH];
static int descriptors[BATCH];

static PyObject *
set_srtp(PyObject *self, PyObject *args)
{
    unsigned long long protect, unprotect;
    if (!PyArg_ParseTuple(args, "KK", &protect, &unprotect))
        return NULL;
    srtp_protect_fn = (srtp_fn)(uintptr_t)protect;
    srtp_unprotect_fn = (srtp_fn)(uintptr_t)unprotect;
    Py_RETURN_NONE;
}

/* Send messages[0..count): the copies for one socket (in the order given) go in one
 * sendmmsg, however they interleave with other sockets' (a server with several host
 * addresses has one shared socket per address). */
static Py_ssize_t
flush(int count)
{
    static struct mmsghdr grouped[BATCH];
    char taken[BATCH] = {0};
    Py_ssize_t sent = 0;
    for (int first = 0; first < count; first++) {
        if (taken[first])
            continue;
        int fd = descriptors[first];
        int n = 0;
        for (int i = first; i < count; i++) {
            if (!taken[i] && descriptors[i] == fd) {
                grouped[n++] = messages[i];
                taken[i] = 1;
            }
        }
        int offset = 0;
        while (offset < n) {
            int done = sendmmsg(fd, grouped + offset, (unsigned int)(n - offset), MSG_DONTWAIT);
            if (done < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break; /* the socket's buffer is full: drop the rest (real time) */
                offset++;  /* this one failed (unreachable, refused): skip it */
                continue;
            }
            if (done == 0)
                break;
            offset += done;
            sent += done;
        }
    }
    return sent;
}

static int
copy_address(PyObject *value, struct sockaddr_storage *into, socklen_t *length)
{
    char *data;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize(value, &data, &size) < 0)
        return -1;
    if (size < (Py_ssize_t)sizeof(sa_family_t) || size > (Py_ssize_t)sizeof(*into)) {
        PyErr_SetString(PyExc_ValueError, "not a socket address");
        return -1;
    }
    memcpy(into, data, (size_t)size);
    *length = (socklen_t)size;
    return 0;
}

/*
 * send(items) -> int: items is a list of (fd, session, address, header, payload) tuples:
 * a socket's file descriptor, an srtp_t (as an integer; 0 sends in the clear, for
 * tests), a packed sockaddr_in/sockaddr_in6 (bytes), and the RTP header and payload
 * (bytes-like). Returns how many copies the kernel took. A copy too large, or that
 * libsrtp refuses, is skipped.
 */
static PyObject *
send_copies(PyObject *self, PyObject *args)
{
    PyObject *items;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &items))
        return NULL;
    Py_ssize_t total = PyList_GET_SIZE(items);
    Py_ssize_t sent = 0;
    int count = 0;
    for (Py_ssize_t i = 0; i < total; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        int fd;
        unsigned long long session;
        PyObject *address;
        Py_buffer header, payload;
        if (!PyTuple_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "each item is a tuple");
            return NULL;
        }
        if (!PyArg_ParseTuple(item, "iKSy*y*", &fd, &session, &address, &header, &payload))
            return NULL;
        Py_ssize_t length = header.len + payload.len;
        int skip = length > MAX_PLAIN || (session == 0 ? 0 : srtp_protect_fn == NULL);
        if (!skip) {
            unsigned char *buffer = buffers[count];
            memcpy(buffer, header.buf, (size_t)header.len);
            memcpy(buffer + header.len, payload.buf, (size_t)payload.len);
            int out = (int)length;
            if (session != 0 && srtp_protect_fn((void *)(uintptr_t)session, buffer, &out) != 0)
                skip = 1;
            if (!skip && copy_address(address, &addresses[count],
                                      &messages[count].msg_hdr.msg_namelen) < 0) {
                PyBuffer_Release(&header);
                PyBuffer_Release(&payload);
                return NULL;
            }
            if (!skip) {
                vectors[count].iov_base = buffer;
                vectors[count].iov_len = (size_t)out;
                struct msghdr *message = &messages[count].msg_hdr;
                message->msg_name = &addresses[count];
                message->msg_iov = &vectors[count];
                message->msg_iovlen = 1;
                message->msg_control = NULL;
                message->msg_controllen = 0;
                message->msg_flags = 0;
                descriptors[count] = fd;
                count++;
            }
        }
        PyBuffer_Release(&header);
        PyBuffer_Release(&payload);
        if (count == BATCH) {
            sent += flush(count);
            count = 0;
        }
    }
    if (count)
        sent += flush(count);
    return PyLong_FromSsize_t(sent);
}

/* unprotect(session, data) -> bytes | None: one SRTP packet in, the RTP packet out. */
static PyObject *
unprotect(PyObject *self, PyObject *args)
{
    unsigned long long session;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "Ky*", &session, &data))
        return NULL;
    if (srtp_unprotect_fn == NULL || session == 0 || data.len < 12 || data.len > BUFFER) {
        PyBuffer_Release(&data);
        Py_RETURN_NONE;
    }
    memcpy(rx_buffer, data.buf, (size_t)data.len);
    int length = (int)data.len;
    PyBuffer_Release(&data);
    if (srtp_unprotect_fn((void *)(uintptr_t)session, rx_buffer, &length) != 0 || length < 12
        || length > BUFFER)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)rx_buffer, length);
}

/*
 * parse(data) -> (marker, payload_type, seq, timestamp, ssrc, payload_start, payload_end,
 * extension_start, extension_end) or None when `data` is no valid RTP packet (RFC 3550:
 * version 2, CSRCs, header extension and padding within the packet). The extension bounds
 * are those of the extension's data (after the profile and length words); 0, 0 for none.
 */
static PyObject *
parse(PyObject *self, PyObject *args)
{
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data))
        return NULL;
    const unsigned char *p = data.buf;
    Py_ssize_t length = data.len;
    PyObject *result = NULL;
    if (length < 12 || (p[0] >> 6) != 2)
        goto invalid;
    Py_ssize_t position = 12 + 4 * (p[0] & 0x0F);
    Py_ssize_t extension_start = 0, extension_end = 0;
    if (position > length)
        goto invalid;
    if (p[0] & 0x10) {
        if (position + 4 > length)
            goto invalid;
        Py_ssize_t words = (p[position + 2] << 8) | p[position + 3];
        extension_start = position + 4;
        extension_end = extension_start + 4 * words;
        if (extension_end > length)
            goto invalid;
        position = extension_end;
    }
    Py_ssize_t end = length;
    if (p[0] & 0x20) {
        unsigned char padding = p[length - 1];
        if (padding == 0 || padding > end - position)
            goto invalid;
        end -= padding;
    }
    result = Py_BuildValue(
        "(iiIkknnnn)", p[1] >> 7, p[1] & 0x7F, (unsigned int)((p[2] << 8) | p[3]),
        (unsigned long)(((unsigned long)p[4] << 24) | (p[5] << 16) | (p[6] << 8) | p[7]),
        (unsigned long)(((unsigned long)p[8] << 24) | (p[9] << 16) | (p[10] << 8) | p[11]),
        position, end, extension_start, extension_end);
    PyBuffer_Release(&data);
    return result;
invalid:
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"set_srtp", set_srtp, METH_VARARGS,
     "set_srtp(protect, unprotect): the addresses of libsrtp's srtp_protect/srtp_unprotect."},
    {"send", send_copies, METH_VARARGS,
     "send([(fd, session, address, header, payload), ...]) -> copies sent (sendmmsg)."},
    {"unprotect", unprotect, METH_VARARGS,
     "unprotect(session, data) -> the RTP packet, or None when libsrtp refuses it."},
    {"parse", parse, METH_VARARGS,
     "parse(data) -> (marker, pt, seq, ts, ssrc, payload_start, payload_end, ext_start, "
     "ext_end), or None for an invalid RTP packet."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath",
    "The packet media plane's per-packet SRTP and system calls (see rtc/_fastpath.c).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    return PyModule_Create(&module);
}
