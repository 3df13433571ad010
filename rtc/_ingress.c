/*
 * The whole receive step of the packet media plane, in C (tiaojie.rtc._fastpath):
 *
 *   pump(fd, most, table, slow)  every datagram waiting on a socket (one recvmmsg); an
 *                      SRTP packet from an address `table` maps to an armed Ingress is
 *                      taken here; everything else goes to `slow(data, address)` (Python:
 *                      STUN, DTLS, SRTCP, and whatever no Ingress takes).
 *   Ingress(plain)     one DTLS transport's received SRTP: armed by Python (its libsrtp
 *                      session and the header extension ids) once the transport is
 *                      connected and aioice's queue is empty. A packet is unprotected and
 *                      parsed; when its SSRC has an armed Sink it is handled in C, else its
 *                      plaintext goes to `plain(packet, arrival_ms)` (Python's receive path
 *                      after the unprotect, rtc/aiortc_internals.py).
 *   Sink(video, events) one tapped receiver's packets (rtc/aiortc_internals.py tap_packets)
 *                      and its publication's running Routes: the receiver's bookkeeping
 *                      (BitrateEstimator, Reception, Nacks: the same objects Python's path
 *                      uses) and the copies (forward_copies). Python arms it with the
 *                      Routes of every subscription the publication forwards to, until a
 *                      deadline (the Routes' next check), when `recheck(now)` (one Python
 *                      call per publication per check) gives the next one; any change
 *                      (mute, a slot, a stop) disarms it, and then every packet takes
 *                      Python's path, which decides and arms again. `events("remb", (bitrate, ssrcs))` and
 *                      `events("nack", ssrc)` ask Python to send RTCP.
 *
 * A packet is handled entirely here or entirely by Python, never half: the checks come
 * before anything is counted. Counters Python owns (a publication's frames received, its
 * meter, the frames and bytes forwarded, the DTLS transport's bytes) are kept here and
 * taken by Python (`take`) when it next handles a packet. Nothing trusts a packet's bytes:
 * lengths are checked before every read.
 */
#include "_fastpath.h"

#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <structmember.h>

#define NTP_UNIX_OFFSET 2208988800.0

static double
monotonic_seconds(void) /* time.monotonic() */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec) / 1e9;
}

/* -- Sink ------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    int bound, payload_type, video;
    uint32_t ssrc;
    PyObject *estimator; /* BitrateEstimator, or NULL (no REMB) */
    PyObject *reception; /* Reception */
    PyObject *nacks;     /* Nacks, or NULL */
    PyObject *events;    /* callable(kind, value) */
    PyObject *routes;    /* list of Route while armed, else NULL */
    PyObject *recheck;   /* callable(now) -> the next deadline, or None: disarm */
    double until;        /* monotonic: armed until then, then `recheck` decides */
    unsigned long long packets, frames_in, video_bytes, frames_out, bytes_out;
} Sink;

static PyTypeObject SinkType;

static int
Sink_traverse(Sink *self, visitproc visit, void *arg)
{
    Py_VISIT(self->estimator);
    Py_VISIT(self->reception);
    Py_VISIT(self->nacks);
    Py_VISIT(self->events);
    Py_VISIT(self->routes);
    Py_VISIT(self->recheck);
    return 0;
}

static int
Sink_clear(Sink *self)
{
    Py_CLEAR(self->estimator);
    Py_CLEAR(self->reception);
    Py_CLEAR(self->nacks);
    Py_CLEAR(self->events);
    Py_CLEAR(self->routes);
    Py_CLEAR(self->recheck);
    self->bound = 0;
    return 0;
}

static void
Sink_dealloc(Sink *self)
{
    PyObject_GC_UnTrack(self);
    Sink_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Sink_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    int video;
    PyObject *events;
    if (!PyArg_ParseTuple(args, "pO", &video, &events))
        return NULL;
    if (!PyCallable_Check(events)) {
        PyErr_SetString(PyExc_TypeError, "events must be callable");
        return NULL;
    }
    Sink *self = (Sink *)type->tp_alloc(type, 0); /* zeroed */
    if (self == NULL)
        return NULL;
    self->video = video;
    Py_INCREF(events);
    self->events = events;
    return (PyObject *)self;
}

/* bind(ssrc, payload_type, reception, nacks, estimator): the stream the receiver takes
 * (nacks and estimator may be None); disarms */
static PyObject *
Sink_bind(Sink *self, PyObject *args)
{
    unsigned long ssrc;
    int payload_type;
    PyObject *reception, *nacks, *estimator;
    if (!PyArg_ParseTuple(args, "kiOOO", &ssrc, &payload_type, &reception, &nacks, &estimator))
        return NULL;
    if (payload_type < 0 || payload_type > 127 || !is_reception(reception)
        || (nacks != Py_None && !is_nacks(nacks))
        || (estimator != Py_None && !is_bitrate_estimator(estimator))) {
        PyErr_SetString(PyExc_TypeError, "bind(ssrc, pt, Reception, Nacks|None, "
                                         "BitrateEstimator|None)");
        return NULL;
    }
    Py_CLEAR(self->routes);
    self->ssrc = (uint32_t)ssrc;
    self->payload_type = payload_type;
    Py_INCREF(reception);
    Py_XSETREF(self->reception, reception);
    Py_XSETREF(self->nacks, nacks == Py_None ? NULL : Py_NewRef(nacks));
    Py_XSETREF(self->estimator, estimator == Py_None ? NULL : Py_NewRef(estimator));
    self->bound = 1;
    Py_RETURN_NONE;
}

/* arm(routes, until, recheck): take this stream's packets in C, sending them through
 * `routes` (a list of Route, not changed afterwards), until the monotonic time `until`;
 * then `recheck(now)` gives the next deadline (None: Python's path takes over again) */
static PyObject *
Sink_arm(Sink *self, PyObject *args)
{
    PyObject *routes, *recheck;
    double until;
    if (!PyArg_ParseTuple(args, "O!dO", &PyList_Type, &routes, &until, &recheck))
        return NULL;
    if (!self->bound) {
        PyErr_SetString(PyExc_ValueError, "bind the sink first");
        return NULL;
    }
    if (!PyCallable_Check(recheck)) {
        PyErr_SetString(PyExc_TypeError, "recheck must be callable");
        return NULL;
    }
    Py_INCREF(routes);
    Py_XSETREF(self->routes, routes);
    Py_INCREF(recheck);
    Py_XSETREF(self->recheck, recheck);
    self->until = until;
    Py_RETURN_NONE;
}

/* The deadline passed: 1 when `recheck` gives a new one, 0 when it disarms, -1 on error */
static int
sink_recheck(Sink *self, double now)
{
    PyObject *recheck = self->recheck;
    if (recheck == NULL)
        return 0;
    Py_INCREF(recheck);
    PyObject *result = PyObject_CallFunction(recheck, "d", now);
    Py_DECREF(recheck);
    if (result == NULL)
        return -1;
    int going_on = 0;
    if (PyFloat_Check(result) && self->routes != NULL) {
        self->until = PyFloat_AS_DOUBLE(result);
        going_on = now < self->until;
    }
    Py_DECREF(result);
    if (!going_on)
        Py_CLEAR(self->routes);
    return going_on;
}

static PyObject *
Sink_disarm(Sink *self, PyObject *unused)
{
    Py_CLEAR(self->routes);
    Py_CLEAR(self->recheck);
    Py_RETURN_NONE;
}

/* take() -> (packets, frames_in, video_bytes, frames_out, bytes_out) since the last take */
static PyObject *
Sink_take(Sink *self, PyObject *unused)
{
    PyObject *result = Py_BuildValue("(KKKKK)", self->packets, self->frames_in,
                                     self->video_bytes, self->frames_out, self->bytes_out);
    self->packets = self->frames_in = self->video_bytes = self->frames_out = self->bytes_out = 0;
    return result;
}

static PyObject *
Sink_armed(Sink *self, void *closure)
{
    return PyBool_FromLong(self->routes != NULL);
}

static PyMethodDef Sink_methods[] = {
    {"bind", (PyCFunction)Sink_bind, METH_VARARGS, NULL},
    {"arm", (PyCFunction)Sink_arm, METH_VARARGS, NULL},
    {"disarm", (PyCFunction)Sink_disarm, METH_NOARGS, NULL},
    {"take", (PyCFunction)Sink_take, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Sink_members[] = {
    {"ssrc", T_UINT, offsetof(Sink, ssrc), READONLY, NULL},
    {"payload_type", T_INT, offsetof(Sink, payload_type), READONLY, NULL},
    {"bound", T_INT, offsetof(Sink, bound), READONLY, NULL},
    {"until", T_DOUBLE, offsetof(Sink, until), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Sink_getset[] = {
    {"armed", (getter)Sink_armed, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SinkType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tiaojie.rtc._fastpath.Sink",
    .tp_basicsize = sizeof(Sink),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A tapped receiver's packets, forwarded in C while armed (rtc/_ingress.c).",
    .tp_new = Sink_new,
    .tp_dealloc = (destructor)Sink_dealloc,
    .tp_traverse = (traverseproc)Sink_traverse,
    .tp_clear = (inquiry)Sink_clear,
    .tp_methods = Sink_methods,
    .tp_members = Sink_members,
    .tp_getset = Sink_getset,
};

/* -- Ingress --------------------------------------------------------------------------- */

#define MAX_SINKS 8

typedef struct {
    PyObject_HEAD
    unsigned long long srtp; /* libsrtp srtp_t while armed, else 0 */
    PyObject *session;       /* what owns `srtp` (pylibsrtp's Session): kept alive */
    int abs_id, level_id;    /* one-byte header extension ids, 0 for none */
    PyObject *plain;         /* callable(packet, arrival_ms) */
    Sink *sinks[MAX_SINKS];
    int sink_count;
    unsigned long long rx_bytes, rx_packets, fast;
} Ingress;

static int
Ingress_traverse(Ingress *self, visitproc visit, void *arg)
{
    Py_VISIT(self->plain);
    Py_VISIT(self->session);
    for (int i = 0; i < self->sink_count; i++)
        Py_VISIT(self->sinks[i]);
    return 0;
}

static int
Ingress_clear(Ingress *self)
{
    self->srtp = 0;
    Py_CLEAR(self->session);
    Py_CLEAR(self->plain);
    for (int i = 0; i < self->sink_count; i++)
        Py_CLEAR(self->sinks[i]);
    self->sink_count = 0;
    return 0;
}

static void
Ingress_dealloc(Ingress *self)
{
    PyObject_GC_UnTrack(self);
    Ingress_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Ingress_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *plain;
    if (!PyArg_ParseTuple(args, "O", &plain))
        return NULL;
    if (!PyCallable_Check(plain)) {
        PyErr_SetString(PyExc_TypeError, "plain must be callable");
        return NULL;
    }
    Ingress *self = (Ingress *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(plain);
    self->plain = plain;
    return (PyObject *)self;
}

/* arm(session, srtp, abs_send_time_id, audio_level_id): the rx session (the object that
 * owns it, kept alive while armed, and its srtp_t as an integer) */
static PyObject *
Ingress_arm(Ingress *self, PyObject *args)
{
    PyObject *session;
    unsigned long long srtp;
    int abs_id, level_id;
    if (!PyArg_ParseTuple(args, "OKii", &session, &srtp, &abs_id, &level_id))
        return NULL;
    if (abs_id < 0 || abs_id > 14 || level_id < 0 || level_id > 14) {
        PyErr_SetString(PyExc_ValueError, "not a one-byte header extension id");
        return NULL;
    }
    Py_INCREF(session);
    Py_XSETREF(self->session, session);
    self->srtp = srtp;
    self->abs_id = abs_id;
    self->level_id = level_id;
    Py_RETURN_NONE;
}

static PyObject *
Ingress_disarm(Ingress *self, PyObject *unused)
{
    self->srtp = 0;
    Py_CLEAR(self->session);
    Py_RETURN_NONE;
}

/* attach(sink): its stream's packets are looked for here (at most 8 sinks) */
static PyObject *
Ingress_attach(Ingress *self, PyObject *args)
{
    PyObject *sink;
    if (!PyArg_ParseTuple(args, "O!", &SinkType, &sink))
        return NULL;
    for (int i = 0; i < self->sink_count; i++)
        if ((PyObject *)self->sinks[i] == sink)
            Py_RETURN_NONE;
    if (self->sink_count == MAX_SINKS) {
        PyErr_SetString(PyExc_ValueError, "too many sinks on one transport");
        return NULL;
    }
    Py_INCREF(sink);
    self->sinks[self->sink_count++] = (Sink *)sink;
    Py_RETURN_NONE;
}

static PyObject *
Ingress_detach(Ingress *self, PyObject *args)
{
    PyObject *sink;
    if (!PyArg_ParseTuple(args, "O", &sink))
        return NULL;
    for (int i = 0; i < self->sink_count; i++) {
        if ((PyObject *)self->sinks[i] == sink) {
            Sink *gone = self->sinks[i];
            self->sinks[i] = self->sinks[--self->sink_count];
            self->sinks[self->sink_count] = NULL;
            Py_DECREF(gone);
            break;
        }
    }
    Py_RETURN_NONE;
}

/* take() -> (bytes, packets) received since the last take (the DTLS transport's counts) */
static PyObject *
Ingress_take(Ingress *self, PyObject *unused)
{
    PyObject *result = Py_BuildValue("(KK)", self->rx_bytes, self->rx_packets);
    self->rx_bytes = self->rx_packets = 0;
    return result;
}

static PyObject *
Ingress_armed(Ingress *self, void *closure)
{
    return PyBool_FromLong(self->srtp != 0);
}

static PyMethodDef Ingress_methods[] = {
    {"arm", (PyCFunction)Ingress_arm, METH_VARARGS, NULL},
    {"disarm", (PyCFunction)Ingress_disarm, METH_NOARGS, NULL},
    {"attach", (PyCFunction)Ingress_attach, METH_VARARGS, NULL},
    {"detach", (PyCFunction)Ingress_detach, METH_VARARGS, NULL},
    {"take", (PyCFunction)Ingress_take, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Ingress_members[] = {
    {"fast", T_ULONGLONG, offsetof(Ingress, fast), READONLY,
     "packets forwarded without Python since the Ingress was made"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Ingress_getset[] = {
    {"armed", (getter)Ingress_armed, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject IngressType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tiaojie.rtc._fastpath.Ingress",
    .tp_basicsize = sizeof(Ingress),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One DTLS transport's received SRTP, taken in C while armed (rtc/_ingress.c).",
    .tp_new = Ingress_new,
    .tp_dealloc = (destructor)Ingress_dealloc,
    .tp_traverse = (traverseproc)Ingress_traverse,
    .tp_clear = (inquiry)Ingress_clear,
    .tp_methods = Ingress_methods,
    .tp_members = Ingress_members,
    .tp_getset = Ingress_getset,
};

/* -- the receive step ------------------------------------------------------------------ */

typedef struct {
    int marker, payload_type, level; /* level: the audio level byte, or -1 */
    uint16_t seq;
    uint32_t timestamp, ssrc;
    long long abs_send_time; /* -1 when absent */
    int start, end;          /* the payload */
} Header;

/* 1: parsed; 0: not a valid RTP packet (dropped, as rtc/aiortc_internals.py _parse drops
 * it); -1: valid, but with something only Python reads (a two-byte header extension) */
static int
parse_header(const unsigned char *p, int length, int abs_id, int level_id, Header *h)
{
    if (length < 12 || (p[0] >> 6) != 2)
        return 0;
    int position = 12 + 4 * (p[0] & 0x0F);
    if (position > length)
        return 0;
    h->level = -1;
    h->abs_send_time = -1;
    int x_start = 0, x_end = 0;
    if (p[0] & 0x10) {
        if (position + 4 > length)
            return 0;
        int words = (p[position + 2] << 8) | p[position + 3];
        x_start = position + 4;
        x_end = x_start + 4 * words;
        if (x_end > length)
            return 0;
        position = x_end;
    }
    int end = length;
    if (p[0] & 0x20) {
        int padding = p[length - 1];
        if (padding == 0 || padding > end - position)
            return 0;
        end -= padding;
    }
    h->marker = p[1] >> 7;
    h->payload_type = p[1] & 0x7F;
    h->seq = (uint16_t)((p[2] << 8) | p[3]);
    h->timestamp = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
    h->ssrc = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
    h->start = position;
    h->end = end;
    if (x_end == x_start)
        return 1;
    if (p[x_start - 4] != 0xBE || p[x_start - 3] != 0xDE)
        return -1;
    int i = x_start;
    while (i < x_end) {
        int byte = p[i];
        if (byte == 0) { /* padding */
            i++;
            continue;
        }
        int id = byte >> 4, value = i + 1;
        i = i + 2 + (byte & 0x0F);
        if (i > x_end)
            return 0; /* truncated */
        if (id == abs_id && abs_id) {
            if (i - value != 3)
                return 0;
            h->abs_send_time = ((long long)p[value] << 16) | (p[value + 1] << 8) | p[value + 2];
        } else if (id == level_id && level_id) {
            if (i - value != 1)
                return 0;
            h->level = p[value];
        }
    }
    return 1;
}

static int
call_event(Sink *sink, const char *kind, PyObject *value)
{
    if (value == NULL)
        return -1;
    PyObject *result = PyObject_CallFunction(sink->events, "sO", kind, value);
    Py_DECREF(value);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* What tap_packets' on_rtp and Publication._forward do for one packet of an armed sink. */
static int
take_in_c(Sink *sink, const unsigned char *p, int length, const Header *h, double now)
{
    long long arrival_ms = (long long)((wall_seconds() + NTP_UNIX_OFFSET) * 1000);
    if (sink->estimator != NULL && h->abs_send_time >= 0) {
        PyObject *remb = estimator_add(sink->estimator, arrival_ms, h->abs_send_time,
                                       length - h->start, h->ssrc);
        if (remb == NULL)
            return -1;
        if (remb == Py_None)
            Py_DECREF(remb);
        else if (call_event(sink, "remb", remb) < 0)
            return -1;
    }
    reception_add(sink->reception, h->seq, h->timestamp, -1);
    if (sink->nacks != NULL && nacks_add(sink->nacks, h->seq, h->ssrc)) {
        if (call_event(sink, "nack", PyLong_FromUnsignedLong(h->ssrc)) < 0)
            return -1;
    }
    sink->packets++;
    int counts_frame = h->marker || !sink->video;
    if (counts_frame)
        sink->frames_in++;
    int size = h->end - h->start;
    if (sink->video)
        sink->video_bytes += (unsigned long long)size;
    if (sink->routes == NULL) /* an event disarmed it */
        return 0;
    PyObject *payload = PyBytes_FromStringAndSize((const char *)p + h->start, size);
    if (payload == NULL)
        return -1;
    unsigned long long ntp =
        (unsigned long long)((wall_seconds() + NTP_UNIX_OFFSET) * 4294967296.0);
    Py_ssize_t mapped = 0, sent = 0;
    PyObject *routes = sink->routes;
    Py_INCREF(routes);
    int failed = forward_copies(routes, payload, h->seq, h->timestamp, h->marker, h->level, ntp,
                                now, counts_frame, &mapped, &sent);
    Py_DECREF(routes);
    Py_DECREF(payload);
    if (failed < 0)
        return -1;
    if (counts_frame)
        sink->frames_out += (unsigned long long)mapped;
    sink->bytes_out += (unsigned long long)(mapped * size);
    return 0;
}

/* One SRTP packet (in `p`, a buffer of BUFFER bytes) of an armed ingress. */
static int
ingress_receive(Ingress *self, unsigned char *p, int length)
{
    self->rx_bytes += (unsigned long long)length;
    self->rx_packets++;
    if (unprotect_in_place(self->srtp, p, &length) != 0 || length < 12 || length > BUFFER)
        return 0; /* libsrtp refused it (replayed, forged): dropped, as Python drops it */
    Header h;
    int parsed = parse_header(p, length, self->abs_id, self->level_id, &h);
    if (parsed == 0)
        return 0;
    if (parsed > 0) {
        double now = monotonic_seconds();
        Sink *sink = NULL;
        for (int i = 0; i < self->sink_count; i++) {
            if (self->sinks[i]->bound && self->sinks[i]->ssrc == h.ssrc) {
                sink = self->sinks[i];
                break;
            }
        }
        if (sink != NULL && sink->payload_type == h.payload_type && sink->routes != NULL
            && routes_active(sink->routes)) {
            Py_INCREF(sink); /* a Python call below may detach it */
            int result = 1;
            if (now >= sink->until) {
                result = sink_recheck(sink, now);
                if (result > 0 && !routes_active(sink->routes))
                    result = 0;
            }
            if (result > 0) {
                self->fast++;
                result = take_in_c(sink, p, length, &h, now) < 0 ? -1 : 2;
            }
            Py_DECREF(sink);
            if (result < 0)
                return -1;
            if (result == 2)
                return 0;
        }
    }
    long long arrival_ms = (long long)((wall_seconds() + NTP_UNIX_OFFSET) * 1000);
    PyObject *result = PyObject_CallFunction(self->plain, "y#L", (const char *)p,
                                             (Py_ssize_t)length, arrival_ms);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* One datagram read by pump: taken by its sender's armed Ingress, else handed to `slow`.
 * -1 on an error; *python set when Python code ran (a callback, the plain path). */
static int
take_datagram(int fd, unsigned char *data, int length, const struct sockaddr_storage *from,
              PyObject *table, PyObject *slow, int *python)
{
    unsigned char key[4 + 2 + 16];
    if (length >= 12 && data[0] > 127 && data[0] < 192 && !(data[1] >= 192 && data[1] <= 223)
        && (from->ss_family == AF_INET || from->ss_family == AF_INET6)) {
        int size = from->ss_family == AF_INET ? 4 + 2 + 4 : 4 + 2 + 16;
        memcpy(key, &fd, 4);
        if (from->ss_family == AF_INET) {
            const struct sockaddr_in *v4 = (const struct sockaddr_in *)from;
            memcpy(key + 4, &v4->sin_port, 2);
            memcpy(key + 6, &v4->sin_addr, 4);
        } else {
            const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)from;
            memcpy(key + 4, &v6->sin6_port, 2);
            memcpy(key + 6, &v6->sin6_addr, 16);
        }
        PyObject *name = PyBytes_FromStringAndSize((const char *)key, size);
        if (name == NULL)
            return -1;
        PyObject *ingress = PyDict_GetItemWithError(table, name); /* borrowed */
        Py_DECREF(name);
        if (ingress == NULL && PyErr_Occurred())
            return -1;
        if (ingress != NULL && Py_IS_TYPE(ingress, &IngressType)
            && ((Ingress *)ingress)->srtp != 0) {
            unsigned long long fast = ((Ingress *)ingress)->fast;
            Py_INCREF(ingress);
            int failed = ingress_receive((Ingress *)ingress, data, length);
            if (((Ingress *)ingress)->fast == fast)
                *python = 1; /* the plain path, or dropped (no harm in saying so) */
            Py_DECREF(ingress);
            return failed < 0 ? -1 : 0;
        }
    }
    PyObject *address = address_of(from);
    if (address == NULL)
        return -1;
    if (address == Py_None) {
        Py_DECREF(address);
        return 0;
    }
    *python = 1;
    PyObject *result =
        PyObject_CallFunction(slow, "y#N", (const char *)data, (Py_ssize_t)length, address);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* At most this many recvmmsg rounds per pump call (so at most 8 * 64 datagrams): */
#define ROUNDS 8

/*
 * pump(fd, most, table, slow) -> datagrams read: every datagram waiting on the socket `fd`
 * (up to `most` per recvmmsg, at most 64). `table` maps (fd, sender) keys (`key`) to
 * Ingress objects; an RTP (not RTCP) datagram whose key maps to an armed Ingress is taken
 * by it; every other datagram is handed to `slow(data, address)`. When a round was handled
 * in C alone, the socket is read again at once (up to ROUNDS rounds): a frame's packets
 * arrive in a burst, and one more recvmmsg costs less than a turn of the event loop.
 */
static PyObject *
pump(PyObject *module, PyObject *args)
{
    static Batch batch;
    int fd, most;
    PyObject *table, *slow;
    if (!PyArg_ParseTuple(args, "iiO!O", &fd, &most, &PyDict_Type, &table, &slow))
        return NULL;
    long total = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int n = read_batch(&batch, fd, most);
        if (n <= 0)
            break; /* EAGAIN, EINTR, ECONNREFUSED (ICMP) */
        total += n;
        int python = 0;
        for (int i = 0; i < n; i++) {
            if (batch.messages[i].msg_hdr.msg_flags & MSG_TRUNC)
                continue;
            if (take_datagram(fd, batch.data[i], (int)batch.messages[i].msg_len,
                              &batch.addresses[i], table, slow, &python) < 0)
                return NULL;
        }
        if (python)
            break; /* Python ran: it may have closed the socket; the loop reads it next */
    }
    return PyLong_FromLong(total);
}

/* key(fd, host, port) -> the `table` key pump looks a sender up by */
static PyObject *
key_of(PyObject *module, PyObject *args)
{
    int fd, port;
    const char *host;
    if (!PyArg_ParseTuple(args, "isi", &fd, &host, &port))
        return NULL;
    unsigned char key[4 + 2 + 16];
    uint16_t net_port = htons((uint16_t)port);
    memcpy(key, &fd, 4);
    memcpy(key + 4, &net_port, 2);
    if (inet_pton(AF_INET, host, key + 6) == 1)
        return PyBytes_FromStringAndSize((const char *)key, 4 + 2 + 4);
    if (inet_pton(AF_INET6, host, key + 6) == 1)
        return PyBytes_FromStringAndSize((const char *)key, 4 + 2 + 16);
    PyErr_SetString(PyExc_ValueError, "not an IP address");
    return NULL;
}

static PyMethodDef ingress_functions[] = {
    {"pump", pump, METH_VARARGS,
     "pump(fd, most, table, slow) -> datagrams read: the receive step (rtc/_ingress.c)."},
    {"key", key_of, METH_VARARGS, "key(fd, host, port) -> the pump table's key for a sender."},
    {NULL, NULL, 0, NULL},
};

/* Called by PyInit__fastpath (rtc/_fastpath.c). */
int
add_ingress(PyObject *module)
{
    if (PyType_Ready(&SinkType) < 0 || PyType_Ready(&IngressType) < 0)
        return -1;
    Py_INCREF(&SinkType);
    if (PyModule_AddObject(module, "Sink", (PyObject *)&SinkType) < 0) {
        Py_DECREF(&SinkType);
        return -1;
    }
    Py_INCREF(&IngressType);
    if (PyModule_AddObject(module, "Ingress", (PyObject *)&IngressType) < 0) {
        Py_DECREF(&IngressType);
        return -1;
    }
    return PyModule_AddFunctions(module, ingress_functions);
}
