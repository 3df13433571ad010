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
 *   unprotect_rtcp(..) the same for one received SRTCP packet;
 *   parse(data)        the fixed RTP header fields and the payload bounds;
 *   recv(fd, most)     every datagram waiting on a socket, with one recvmmsg(2);
 *   forward(routes,..) one received packet to each running subscription (Route, below);
 *   BitrateEstimator   aiortc's remote bitrate estimator (REMB to publishers), in
 *                      rtc/_remb.c;
 *   Reception, Nacks   a receiver's reception statistics and NACK generator, in
 *                      rtc/_reception.c;
 *   pump, Ingress, Sink the whole receive step (recvmmsg, unprotect, parse, the receiver's
 *                      bookkeeping, the copies) for the streams Python armed, in
 *                      rtc/_ingress.c.
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
#include <arpa/inet.h>

#include "_fastpath.h"

/* libsrtp 2: srtp_err_status_t srtp_protect(srtp_t ctx, void *rtp_hdr, int *len_ptr) */
typedef int (*srtp_fn)(void *ctx, void *packet, int *len);

static srtp_fn srtp_protect_fn = NULL;
static srtp_fn srtp_unprotect_fn = NULL;
static srtp_fn srtp_unprotect_rtcp_fn = NULL;

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
    unsigned long long protect, unprotect, unprotect_rtcp = 0;
    if (!PyArg_ParseTuple(args, "KK|K", &protect, &unprotect, &unprotect_rtcp))
        return NULL;
    srtp_protect_fn = (srtp_fn)(uintptr_t)protect;
    srtp_unprotect_fn = (srtp_fn)(uintptr_t)unprotect;
    srtp_unprotect_rtcp_fn = (srtp_fn)(uintptr_t)unprotect_rtcp;
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

/* unprotect_rtcp(session, data) -> bytes | None: one SRTCP packet in, the RTCP compound
 * packet out (libsrtp checks the tag and the index; None when it refuses). */
static PyObject *
unprotect_rtcp(PyObject *self, PyObject *args)
{
    unsigned long long session;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "Ky*", &session, &data))
        return NULL;
    if (srtp_unprotect_rtcp_fn == NULL || session == 0 || data.len < 8 || data.len > BUFFER) {
        PyBuffer_Release(&data);
        Py_RETURN_NONE;
    }
    memcpy(rx_buffer, data.buf, (size_t)data.len);
    int length = (int)data.len;
    PyBuffer_Release(&data);
    if (srtp_unprotect_rtcp_fn((void *)(uintptr_t)session, rx_buffer, &length) != 0
        || length < 8 || length > BUFFER)
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

/* -- Route: one subscription's steady state, forwarded without the interpreter ---------- */

#define HISTORY 128      /* aiortc's RTP_HISTORY_SIZE: the NACK cache */
#define LATE_WINDOW 4096 /* rtc/rewrite.py LATE_WINDOW */
#define MAX_HEADER 64

typedef struct {
    int used;
    uint16_t seq;
    int header_len;
    unsigned char header[MAX_HEADER];
    PyObject *payload; /* bytes, one reference */
} Entry;

/*
 * What rtc/rewrite.py StreamMapping and PacketSender.send do for one subscription once
 * it runs (past its keyframe wait, connected, not VP8): the sequence number and
 * timestamp offsets of the current run, the header (SSRC, payload type, MID,
 * abs-send-time, audio level), the NACK cache and the sender-report counters. Python
 * starts it with the mapping's state (`start`) and stops it on any change (`stop`
 * returns the state back), so each decision stays in Python.
 */
typedef struct {
    PyObject_HEAD
    int active;
    uint16_t seq_offset, base, in_high, last_seq;
    uint32_t ts_offset, last_ts;
    int has_last;
    double last_time;
    uint32_t ssrc;
    int configured, payload_type, abs_id, level_id;
    unsigned char mid[17];
    int mid_len;
    int fd;
    unsigned long long srtp;
    struct sockaddr_storage address;
    socklen_t address_len;
    /* sender report: every packet sent for the subscription (both paths) */
    unsigned long long packets, octets, ntp;
    uint32_t rtp;
    /* what this path forwarded (Python adds its own) and dropped as too late */
    unsigned long long forwarded, frames, bytes, late;
    Entry history[HISTORY];
} Route;

static void
Route_dealloc(Route *self)
{
    for (int i = 0; i < HISTORY; i++)
        Py_CLEAR(self->history[i].payload);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Route_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    unsigned long ssrc;
    if (!PyArg_ParseTuple(args, "k", &ssrc))
        return NULL;
    Route *self = (Route *)type->tp_alloc(type, 0); /* zeroed */
    if (self == NULL)
        return NULL;
    self->ssrc = (uint32_t)ssrc;
    self->fd = -1;
    return (PyObject *)self;
}

/* configure(payload_type, mid_element, abs_send_time_id, audio_level_id) */
static PyObject *
Route_configure(Route *self, PyObject *args)
{
    int pt, abs_id, level_id;
    Py_buffer mid;
    if (!PyArg_ParseTuple(args, "iy*ii", &pt, &mid, &abs_id, &level_id))
        return NULL;
    if (mid.len > 17 || pt < 0 || pt > 127 || abs_id < 0 || abs_id > 14 || level_id < 0
        || level_id > 14) {
        PyBuffer_Release(&mid);
        PyErr_SetString(PyExc_ValueError, "bad header parameters");
        return NULL;
    }
    memcpy(self->mid, mid.buf, (size_t)mid.len);
    self->mid_len = (int)mid.len;
    PyBuffer_Release(&mid);
    self->payload_type = pt;
    self->configured = 1;
    self->abs_id = abs_id;
    self->level_id = level_id;
    Py_RETURN_NONE;
}

/* aim(fd, srtp, address): where the copies go */
static PyObject *
Route_aim(Route *self, PyObject *args)
{
    int fd;
    unsigned long long srtp;
    PyObject *address;
    if (!PyArg_ParseTuple(args, "iKS", &fd, &srtp, &address))
        return NULL;
    if (copy_address(address, &self->address, &self->address_len) < 0)
        return NULL;
    self->fd = fd;
    self->srtp = srtp;
    Py_RETURN_NONE;
}

/* start(seq_offset, ts_offset, base, in_high, last_seq, last_ts, last_time) */
static PyObject *
Route_start(Route *self, PyObject *args)
{
    unsigned int seq_offset, base, in_high, last_seq;
    unsigned long ts_offset, last_ts;
    double last_time;
    if (!PyArg_ParseTuple(args, "IkIIIkd", &seq_offset, &ts_offset, &base, &in_high, &last_seq,
                          &last_ts, &last_time))
        return NULL;
    if (self->fd < 0 || !self->configured) {
        PyErr_SetString(PyExc_ValueError, "configure and aim the route first");
        return NULL;
    }
    self->seq_offset = (uint16_t)seq_offset;
    self->ts_offset = (uint32_t)ts_offset;
    self->base = (uint16_t)base;
    self->in_high = (uint16_t)in_high;
    self->last_seq = (uint16_t)last_seq;
    self->last_ts = (uint32_t)last_ts;
    self->last_time = last_time;
    self->has_last = 1;
    self->active = 1;
    Py_RETURN_NONE;
}

/* stop() -> (base, in_high, last_seq, last_ts, last_time): the run's state, for Python */
static PyObject *
Route_stop(Route *self, PyObject *unused)
{
    self->active = 0;
    return Py_BuildValue("(IIIkd)", (unsigned int)self->base, (unsigned int)self->in_high,
                         (unsigned int)self->last_seq, (unsigned long)self->last_ts,
                         self->last_time);
}

static void
remember(Route *self, uint16_t seq, const unsigned char *header, int header_len,
         PyObject *payload)
{
    Entry *entry = &self->history[seq % HISTORY];
    entry->used = 1;
    entry->seq = seq;
    entry->header_len = header_len;
    memcpy(entry->header, header, (size_t)header_len);
    Py_INCREF(payload);
    Py_XSETREF(entry->payload, payload);
}

/* sent(seq, rtp_timestamp, ntp, newest, header, payload): Python sent a packet itself */
static PyObject *
Route_sent(Route *self, PyObject *args)
{
    unsigned int seq;
    unsigned long ts;
    unsigned long long ntp;
    int newest;
    Py_buffer header;
    PyObject *payload;
    if (!PyArg_ParseTuple(args, "IkKpy*S", &seq, &ts, &ntp, &newest, &header, &payload))
        return NULL;
    if (header.len > MAX_HEADER) {
        PyBuffer_Release(&header);
        PyErr_SetString(PyExc_ValueError, "header too long");
        return NULL;
    }
    remember(self, (uint16_t)seq, header.buf, (int)header.len, payload);
    PyBuffer_Release(&header);
    self->packets++;
    self->octets += (unsigned long long)PyBytes_GET_SIZE(payload);
    if (newest) {
        self->ntp = ntp;
        self->rtp = (uint32_t)ts;
    }
    Py_RETURN_NONE;
}

/* entry(index) -> (header, payload) of the NACK cache's slot `index` (a sequence
 * number modulo 128, as aiortc looks its history up), or None when empty */
static PyObject *
Route_entry(Route *self, PyObject *args)
{
    unsigned int index;
    if (!PyArg_ParseTuple(args, "I", &index))
        return NULL;
    Entry *entry = &self->history[index % HISTORY];
    if (!entry->used || entry->payload == NULL)
        Py_RETURN_NONE;
    return Py_BuildValue("(y#O)", entry->header, (Py_ssize_t)entry->header_len, entry->payload);
}

static PyMethodDef Route_methods[] = {
    {"configure", (PyCFunction)Route_configure, METH_VARARGS, NULL},
    {"aim", (PyCFunction)Route_aim, METH_VARARGS, NULL},
    {"start", (PyCFunction)Route_start, METH_VARARGS, NULL},
    {"stop", (PyCFunction)Route_stop, METH_NOARGS, NULL},
    {"sent", (PyCFunction)Route_sent, METH_VARARGS, NULL},
    {"entry", (PyCFunction)Route_entry, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

#include <structmember.h>
static PyMemberDef Route_members[] = {
    {"active", T_INT, offsetof(Route, active), READONLY, NULL},
    {"ssrc", T_UINT, offsetof(Route, ssrc), READONLY, NULL},
    {"packets", T_ULONGLONG, offsetof(Route, packets), READONLY, NULL},
    {"octets", T_ULONGLONG, offsetof(Route, octets), READONLY, NULL},
    {"ntp", T_ULONGLONG, offsetof(Route, ntp), READONLY, NULL},
    {"rtp", T_UINT, offsetof(Route, rtp), READONLY, NULL},
    {"forwarded", T_ULONGLONG, offsetof(Route, forwarded), READONLY, NULL},
    {"frames", T_ULONGLONG, offsetof(Route, frames), READONLY, NULL},
    {"bytes", T_ULONGLONG, offsetof(Route, bytes), READONLY, NULL},
    {"late", T_ULONGLONG, offsetof(Route, late), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject RouteType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tiaojie.rtc._fastpath.Route",
    .tp_basicsize = sizeof(Route),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One subscription's steady state (see rtc/_fastpath.c).",
    .tp_new = Route_new,
    .tp_dealloc = (destructor)Route_dealloc,
    .tp_methods = Route_methods,
    .tp_members = Route_members,
};

static int
seq_after(uint16_t a, uint16_t b)
{
    return a != b && (uint16_t)(a - b) < 0x8000;
}

/*
 * forward(routes, payload, seq, ts, marker, level, ntp, now, counts_frame)
 * -> (copies mapped, copies the kernel took).
 * One received packet to every active route of `routes` (a list): mapped, its header
 * built, kept in the route's NACK cache, counted, SRTP-protected and sent (one sendmmsg
 * per socket). `level` is the audio level byte (V bit and level) or -1; `counts_frame`:
 * the packet ends a frame (marker, or audio).
 */
int
forward_copies(PyObject *routes, PyObject *payload, unsigned int seq, unsigned long ts,
               int marker, int level, unsigned long long ntp, double now, int counts_frame,
               Py_ssize_t *mapped_out, Py_ssize_t *sent_out)
{
    Py_ssize_t payload_len = PyBytes_GET_SIZE(payload);
    const char *payload_data = PyBytes_AS_STRING(payload);
    Py_ssize_t total = PyList_GET_SIZE(routes);
    int count = 0;
    Py_ssize_t sent = 0, mapped = 0;
    uint16_t in_seq = (uint16_t)seq;
    uint32_t abs = (uint32_t)((ntp >> 14) & 0xFFFFFF);
    for (Py_ssize_t i = 0; i < total; i++) {
        PyObject *item = PyList_GET_ITEM(routes, i);
        if (!PyObject_TypeCheck(item, &RouteType)) {
            PyErr_SetString(PyExc_TypeError, "routes holds Route objects");
            return -1;
        }
        Route *route = (Route *)item;
        if (!route->active)
            continue;
        if ((uint16_t)(in_seq - route->base) >= 0x8000) {
            route->late++; /* before the run began, or far too late */
            continue;
        }
        if (seq_after(in_seq, route->in_high)) {
            route->in_high = in_seq;
            if ((uint16_t)(in_seq - route->base) > LATE_WINDOW)
                route->base = (uint16_t)(in_seq - LATE_WINDOW);
        }
        uint16_t out_seq = (uint16_t)(in_seq + route->seq_offset);
        uint32_t out_ts = (uint32_t)ts + route->ts_offset;
        int newest = 0;
        if (!route->has_last || seq_after(out_seq, route->last_seq)) {
            route->last_seq = out_seq;
            route->last_ts = out_ts;
            route->last_time = now;
            route->has_last = 1;
            newest = 1;
        }
        /* the header: as rtc/rewrite.py rtp_header + extension_block build it */
        unsigned char header[MAX_HEADER];
        unsigned char elements[32];
        int n = 0;
        memcpy(elements, route->mid, (size_t)route->mid_len);
        n = route->mid_len;
        if (route->abs_id) {
            elements[n++] = (unsigned char)((route->abs_id << 4) | 2);
            elements[n++] = (unsigned char)(abs >> 16);
            elements[n++] = (unsigned char)(abs >> 8);
            elements[n++] = (unsigned char)abs;
        }
        if (level >= 0 && route->level_id) {
            elements[n++] = (unsigned char)(route->level_id << 4);
            elements[n++] = (unsigned char)level;
        }
        int header_len = 12;
        header[0] = n ? 0x90 : 0x80;
        header[1] = (unsigned char)(((marker & 1) << 7) | (route->payload_type & 0x7F));
        header[2] = (unsigned char)(out_seq >> 8);
        header[3] = (unsigned char)out_seq;
        header[4] = (unsigned char)(out_ts >> 24);
        header[5] = (unsigned char)(out_ts >> 16);
        header[6] = (unsigned char)(out_ts >> 8);
        header[7] = (unsigned char)out_ts;
        header[8] = (unsigned char)(route->ssrc >> 24);
        header[9] = (unsigned char)(route->ssrc >> 16);
        header[10] = (unsigned char)(route->ssrc >> 8);
        header[11] = (unsigned char)route->ssrc;
        if (n) {
            int padded = (n + 3) & ~3;
            header[12] = 0xBE;
            header[13] = 0xDE;
            header[14] = (unsigned char)((padded / 4) >> 8);
            header[15] = (unsigned char)(padded / 4);
            memcpy(header + 16, elements, (size_t)n);
            memset(header + 16 + n, 0, (size_t)(padded - n));
            header_len = 16 + padded;
        }
        remember(route, out_seq, header, header_len, payload);
        route->packets++;
        route->octets += (unsigned long long)payload_len;
        if (newest) {
            route->ntp = ntp;
            route->rtp = out_ts;
        }
        route->forwarded++;
        mapped++;
        route->frames += counts_frame ? 1 : 0;
        route->bytes += (unsigned long long)payload_len;
        if (header_len + payload_len > MAX_PLAIN)
            continue;
        unsigned char *buffer = buffers[count];
        memcpy(buffer, header, (size_t)header_len);
        memcpy(buffer + header_len, payload_data, (size_t)payload_len);
        int out = (int)(header_len + payload_len);
        if (route->srtp != 0
            && (srtp_protect_fn == NULL
                || srtp_protect_fn((void *)(uintptr_t)route->srtp, buffer, &out) != 0))
            continue;
        memcpy(&addresses[count], &route->address, route->address_len);
        struct msghdr *message = &messages[count].msg_hdr;
        message->msg_name = &addresses[count];
        message->msg_namelen = route->address_len;
        vectors[count].iov_base = buffer;
        vectors[count].iov_len = (size_t)out;
        message->msg_iov = &vectors[count];
        message->msg_iovlen = 1;
        message->msg_control = NULL;
        message->msg_controllen = 0;
        message->msg_flags = 0;
        descriptors[count] = route->fd;
        count++;
        if (count == BATCH) {
            sent += flush(count);
            count = 0;
        }
    }
    if (count)
        sent += flush(count);
    *mapped_out = mapped;
    *sent_out = sent;
    return 0;
}

int
routes_active(PyObject *routes)
{
    Py_ssize_t total = PyList_GET_SIZE(routes);
    for (Py_ssize_t i = 0; i < total; i++) {
        PyObject *item = PyList_GET_ITEM(routes, i);
        if (!PyObject_TypeCheck(item, &RouteType) || !((Route *)item)->active)
            return 0;
    }
    return 1;
}

int
unprotect_in_place(unsigned long long session, unsigned char *packet, int *length)
{
    if (srtp_unprotect_fn == NULL || session == 0)
        return -1;
    return srtp_unprotect_fn((void *)(uintptr_t)session, packet, length);
}

static PyObject *
forward(PyObject *module, PyObject *args)
{
    PyObject *routes, *payload;
    unsigned int seq;
    unsigned long ts;
    int marker, level, counts_frame;
    unsigned long long ntp;
    double now;
    if (!PyArg_ParseTuple(args, "O!SIkiiKdp", &PyList_Type, &routes, &payload, &seq, &ts,
                          &marker, &level, &ntp, &now, &counts_frame))
        return NULL;
    Py_ssize_t mapped, sent;
    if (forward_copies(routes, payload, seq, ts, marker, level, ntp, now, counts_frame, &mapped,
                       &sent) < 0)
        return NULL;
    return Py_BuildValue("(nn)", mapped, sent);
}

/* A sender's address as asyncio gives it: (host, port), or (host, port, flowinfo,
 * scope_id) for IPv6; None for another family; NULL on an error. */
PyObject *
address_of(const struct sockaddr_storage *from)
{
    char host[INET6_ADDRSTRLEN];
    if (from->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)from;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        return Py_BuildValue("(si)", host, ntohs(v4->sin_port));
    }
    if (from->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)from;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(siII)", host, ntohs(v6->sin6_port),
                             (unsigned int)ntohl(v6->sin6_flowinfo),
                             (unsigned int)v6->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

/* Read what waits on `fd` into `batch` with one recvmmsg (at most `most`, 1..BATCH): how
 * many datagrams, or <= 0 (EAGAIN, EINTR, ECONNREFUSED from an ICMP error: nothing now). */
int
read_batch(Batch *batch, int fd, int most)
{
    if (most < 1)
        most = 1;
    if (most > BATCH)
        most = BATCH;
    for (int i = 0; i < most; i++) {
        batch->vectors[i].iov_base = batch->data[i];
        batch->vectors[i].iov_len = BUFFER;
        memset(&batch->messages[i].msg_hdr, 0, sizeof(struct msghdr));
        batch->messages[i].msg_hdr.msg_name = &batch->addresses[i];
        batch->messages[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        batch->messages[i].msg_hdr.msg_iov = &batch->vectors[i];
        batch->messages[i].msg_hdr.msg_iovlen = 1;
    }
    return recvmmsg(fd, batch->messages, (unsigned int)most, MSG_DONTWAIT, NULL);
}

/*
 * recv(fd, most) -> [(data, address), ...]: every datagram waiting on a socket (up to
 * `most`, at most 64) with one recvmmsg(2); address as asyncio gives it ((host, port), or
 * (host, port, flowinfo, scope_id) for IPv6). Empty when nothing waits or on a transient
 * error; a truncated datagram is dropped.
 */
static PyObject *
receive(PyObject *module, PyObject *args)
{
    static Batch batch;
    int fd, most;
    if (!PyArg_ParseTuple(args, "ii", &fd, &most))
        return NULL;
    int n = read_batch(&batch, fd, most);
    PyObject *result = PyList_New(0);
    if (result == NULL || n <= 0)
        return result; /* EAGAIN, EINTR, ECONNREFUSED (ICMP): nothing to hand over now */
    for (int i = 0; i < n; i++) {
        if (batch.messages[i].msg_hdr.msg_flags & MSG_TRUNC)
            continue;
        PyObject *address = address_of(&batch.addresses[i]);
        if (address == Py_None) {
            Py_DECREF(address);
            continue;
        }
        if (address == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyObject *item = Py_BuildValue("(y#N)", (const char *)batch.data[i],
                                       (Py_ssize_t)batch.messages[i].msg_len, address);
        if (item == NULL || PyList_Append(result, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(result);
            return NULL;
        }
        Py_DECREF(item);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"set_srtp", set_srtp, METH_VARARGS,
     "set_srtp(protect, unprotect[, unprotect_rtcp]): the addresses of libsrtp's "
     "srtp_protect/srtp_unprotect/srtp_unprotect_rtcp."},
    {"send", send_copies, METH_VARARGS,
     "send([(fd, session, address, header, payload), ...]) -> copies sent (sendmmsg)."},
    {"unprotect", unprotect, METH_VARARGS,
     "unprotect(session, data) -> the RTP packet, or None when libsrtp refuses it."},
    {"unprotect_rtcp", unprotect_rtcp, METH_VARARGS,
     "unprotect_rtcp(session, data) -> the RTCP packet, or None when libsrtp refuses it."},
    {"parse", parse, METH_VARARGS,
     "parse(data) -> (marker, pt, seq, ts, ssrc, payload_start, payload_end, ext_start, "
     "ext_end), or None for an invalid RTP packet."},
    {"recv", receive, METH_VARARGS,
     "recv(fd, most) -> [(data, address), ...]: the datagrams waiting, one recvmmsg."},
    {"forward", forward, METH_VARARGS,
     "forward(routes, payload, seq, ts, marker, level, ntp, now, counts_frame) -> (copies "
     "mapped, copies sent): one received packet to every active Route."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath",
    "The packet media plane's per-packet SRTP and system calls (see rtc/_fastpath.c).", -1,
    methods,
};

/* rtc/_remb.c: BitrateEstimator, aiortc's remote bitrate estimator in C */
int add_bitrate_estimator(PyObject *module);
/* rtc/_reception.c: Reception and Nacks, a receiver's statistics and NACK generator */
int add_reception(PyObject *module);

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    if (PyType_Ready(&RouteType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&RouteType);
    if (PyModule_AddObject(m, "Route", (PyObject *)&RouteType) < 0) {
        Py_DECREF(&RouteType);
        Py_DECREF(m);
        return NULL;
    }
    if (add_bitrate_estimator(m) < 0 || add_reception(m) < 0 || add_ingress(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
