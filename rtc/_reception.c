/*
 * A publisher's receive-side bookkeeping per RTP packet, in C (tiaojie.rtc._fastpath):
 *
 *   Reception(clock_rate)  aiortc 1.16.0's StreamStatistics (aiortc/rtcrtpreceiver.py): the
 *                          counts and interarrival jitter its receiver reports are made of.
 *                          add(seq, timestamp[, now]) per packet; the attributes aiortc reads
 *                          (max_seq, packets_received, packets_expected, packets_lost,
 *                          fraction_lost, jitter, base_seq, cycles) as it computes them.
 *   Nacks()                aiortc's NackGenerator with rtc/aiortc_internals.py's bounds
 *                          (`_bound_nacks`): add(seq, ssrc) -> True when the packet revealed
 *                          a gap; missing() -> the sequence numbers still missing, sorted as
 *                          `sorted(generator.missing)` sorts them. The missing set is a bitmap
 *                          (only the last RTP_HISTORY_SIZE numbers can be missing), so a
 *                          packet costs no scan of it.
 *
 * tests/test_fastpath.py feeds both these and aiortc's the same packets and compares.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>
#include <time.h>

#define HISTORY_SIZE 128 /* aiortc.rtp.RTP_HISTORY_SIZE */
#define PACKETS_LOST_MIN (-(1 << 23))
#define PACKETS_LOST_MAX ((1 << 23) - 1)

static int
uint16_gt(int a, int b)
{
    return (a < b && b - a > 0x8000) || (a > b && a - b < 0x8000);
}

/* -- Reception: StreamStatistics -- */

typedef struct {
    PyObject_HEAD
    long long clock_rate, cycles, packets_received, jitter_q4, last_arrival, last_timestamp;
    long long expected_prior, received_prior;
    int base_seq, max_seq, has_base, has_max, has_last_timestamp, has_last_arrival;
} Reception;

static PyObject *
Reception_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    long long clock_rate;
    if (!PyArg_ParseTuple(args, "L", &clock_rate))
        return NULL;
    Reception *self = (Reception *)type->tp_alloc(type, 0); /* zeroed */
    if (self != NULL)
        self->clock_rate = clock_rate;
    return (PyObject *)self;
}

/* time.time() as CPython computes it: nanoseconds as a double, over 1e9 */
double
wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    return (double)ns / 1e9;
}

/* One received packet (the core of Reception.add, also called by rtc/_ingress.c) */
static void
reception_count(Reception *self, int seq, unsigned long timestamp, double now)
{
    int in_order = !self->has_max || uint16_gt(seq, self->max_seq);
    self->packets_received++;
    if (!self->has_base) {
        self->base_seq = seq;
        self->has_base = 1;
    }
    if (in_order) {
        long long arrival = (long long)((now < 0 ? wall_seconds() : now) * (double)self->clock_rate);
        if (self->has_max && seq < self->max_seq)
            self->cycles += 1 << 16;
        self->max_seq = seq;
        self->has_max = 1;
        long long ts = (long long)timestamp;
        if ((!self->has_last_timestamp || ts != self->last_timestamp)
            && self->packets_received > 1) {
            long long diff = (arrival - self->last_arrival) - (ts - self->last_timestamp);
            if (diff < 0)
                diff = -diff;
            self->jitter_q4 += diff - ((self->jitter_q4 + 8) >> 4);
        }
        self->last_arrival = arrival;
        self->has_last_arrival = 1;
        self->last_timestamp = ts;
        self->has_last_timestamp = 1;
    }
}

/* add(seq, timestamp[, now]): one received packet; `now` (seconds, for tests) defaults to
 * the wall clock, as StreamStatistics reads time.time() */
static PyObject *
Reception_add(Reception *self, PyObject *args)
{
    int seq;
    unsigned long timestamp;
    double now = -1;
    if (!PyArg_ParseTuple(args, "ik|d", &seq, &timestamp, &now))
        return NULL;
    if (seq < 0 || seq > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "not a sequence number");
        return NULL;
    }
    reception_count(self, seq, timestamp, now);
    Py_RETURN_NONE;
}

static long long
expected(Reception *self)
{
    return self->cycles + self->max_seq - self->base_seq + 1;
}

static PyObject *
Reception_packets_expected(Reception *self, void *closure)
{
    return PyLong_FromLongLong(expected(self));
}

static PyObject *
Reception_packets_lost(Reception *self, void *closure)
{
    long long lost = expected(self) - self->packets_received;
    if (lost > PACKETS_LOST_MAX)
        lost = PACKETS_LOST_MAX;
    if (lost < PACKETS_LOST_MIN)
        lost = PACKETS_LOST_MIN;
    return PyLong_FromLongLong(lost);
}

/* reading it starts the next interval, as aiortc's property does */
static PyObject *
Reception_fraction_lost(Reception *self, void *closure)
{
    long long expected_interval = expected(self) - self->expected_prior;
    self->expected_prior = expected(self);
    long long received_interval = self->packets_received - self->received_prior;
    self->received_prior = self->packets_received;
    long long lost_interval = expected_interval - received_interval;
    if (expected_interval == 0 || lost_interval <= 0)
        return PyLong_FromLong(0);
    /* Python's floor division (expected_interval > 0 here unless the counts run back) */
    long long value = lost_interval << 8, quotient = value / expected_interval;
    if ((value % expected_interval != 0) && ((value < 0) != (expected_interval < 0)))
        quotient--;
    return PyLong_FromLongLong(quotient);
}

static PyObject *
Reception_jitter(Reception *self, void *closure)
{
    return PyLong_FromLongLong(self->jitter_q4 >> 4);
}

static PyObject *
Reception_max_seq(Reception *self, void *closure)
{
    if (!self->has_max)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->max_seq);
}

static PyObject *
Reception_base_seq(Reception *self, void *closure)
{
    if (!self->has_base)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->base_seq);
}

static PyObject *
Reception_packets_received(Reception *self, void *closure)
{
    return PyLong_FromLongLong(self->packets_received);
}

static PyObject *
Reception_cycles(Reception *self, void *closure)
{
    return PyLong_FromLongLong(self->cycles);
}

static PyGetSetDef Reception_getset[] = {
    {"packets_expected", (getter)Reception_packets_expected, NULL, NULL, NULL},
    {"packets_lost", (getter)Reception_packets_lost, NULL, NULL, NULL},
    {"fraction_lost", (getter)Reception_fraction_lost, NULL, NULL, NULL},
    {"jitter", (getter)Reception_jitter, NULL, NULL, NULL},
    {"max_seq", (getter)Reception_max_seq, NULL, NULL, NULL},
    {"base_seq", (getter)Reception_base_seq, NULL, NULL, NULL},
    {"packets_received", (getter)Reception_packets_received, NULL, NULL, NULL},
    {"cycles", (getter)Reception_cycles, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Reception_methods[] = {
    {"add", (PyCFunction)Reception_add, METH_VARARGS,
     "add(seq, timestamp[, now]): one received packet (StreamStatistics.add)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReceptionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tiaojie.rtc._fastpath.Reception",
    .tp_basicsize = sizeof(Reception),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "aiortc's StreamStatistics in C (see rtc/_reception.c).",
    .tp_new = Reception_new,
    .tp_methods = Reception_methods,
    .tp_getset = Reception_getset,
};

/* -- Nacks: NackGenerator, bounded -- */

typedef struct {
    PyObject_HEAD
    int has_max, max_seq, has_ssrc, count;
    uint32_t ssrc;
    uint8_t missing[65536 / 8];
} Nacks;

static PyObject *
Nacks_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (!PyArg_ParseTuple(args, ""))
        return NULL;
    return type->tp_alloc(type, 0); /* zeroed */
}

static int
is_missing(Nacks *self, int seq)
{
    return (self->missing[seq >> 3] >> (seq & 7)) & 1;
}

static void
set_missing(Nacks *self, int seq, int value)
{
    if (is_missing(self, seq) == value)
        return;
    self->missing[seq >> 3] ^= (uint8_t)(1 << (seq & 7));
    self->count += value ? 1 : -1;
}

static void
clear_missing(Nacks *self)
{
    if (self->count)
        memset(self->missing, 0, sizeof(self->missing));
    self->count = 0;
}

/* _bound_nacks, then NackGenerator.add (with its truncate): 1 when the packet revealed a
 * gap (the core of Nacks.add, also called by rtc/_ingress.c) */
static int
nacks_count(Nacks *self, int seq, unsigned long ssrc)
{
    /* _bound_nacks: another SSRC starts afresh; a jump past the history starts inside it */
    if (self->has_max) {
        int ahead = (seq - self->max_seq) & 0xFFFF;
        if (self->has_ssrc && (uint32_t)ssrc != self->ssrc) {
            self->has_max = 0;
            clear_missing(self);
        } else if (HISTORY_SIZE < ahead && ahead < 0x8000) {
            clear_missing(self);
            self->max_seq = (seq - HISTORY_SIZE - 1) & 0xFFFF;
        }
    }
    self->ssrc = (uint32_t)ssrc;
    self->has_ssrc = 1;
    if (!self->has_max) {
        self->max_seq = seq;
        self->has_max = 1;
        return 0;
    }
    int missed = 0;
    if (uint16_gt(seq, self->max_seq)) {
        int old_min = (self->max_seq - HISTORY_SIZE) & 0xFFFF;
        int s = (self->max_seq + 1) & 0xFFFF;
        while (uint16_gt(seq, s)) {
            set_missing(self, s, 1);
            missed = 1;
            s = (s + 1) & 0xFFFF;
        }
        self->max_seq = seq;
        /* truncate: forget what is now older than max_seq - HISTORY_SIZE */
        int new_min = (self->max_seq - HISTORY_SIZE) & 0xFFFF;
        for (int old = old_min; old != new_min && self->count; old = (old + 1) & 0xFFFF)
            set_missing(self, old, 0);
    } else {
        set_missing(self, seq, 0);
    }
    return missed;
}

/* add(seq, ssrc) -> bool: _bound_nacks, then NackGenerator.add (with its truncate) */
static PyObject *
Nacks_add(Nacks *self, PyObject *args)
{
    int seq;
    unsigned long ssrc;
    if (!PyArg_ParseTuple(args, "ik", &seq, &ssrc))
        return NULL;
    if (seq < 0 || seq > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "not a sequence number");
        return NULL;
    }
    return PyBool_FromLong(nacks_count(self, seq, ssrc));
}

/* missing() -> [seq, ...]: sorted by number, as sorted(NackGenerator.missing) */
static PyObject *
Nacks_missing(Nacks *self, PyObject *unused)
{
    PyObject *result = PyList_New(0);
    if (result == NULL || !self->has_max || !self->count)
        return result;
    int first = (self->max_seq - HISTORY_SIZE) & 0xFFFF;
    int seqs[HISTORY_SIZE + 1], n = 0;
    for (int i = 0; i <= HISTORY_SIZE; i++) {
        int s = (first + i) & 0xFFFF;
        if (is_missing(self, s))
            seqs[n++] = s;
    }
    /* numeric order: the run may wrap past 65535 */
    int start = 0;
    while (start < n - 1 && seqs[start] < seqs[start + 1])
        start++;
    start = (start + 1) % (n ? n : 1);
    for (int i = 0; i < n; i++) {
        PyObject *value = PyLong_FromLong(seqs[(start + i) % n]);
        if (value == NULL || PyList_Append(result, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(result);
            return NULL;
        }
        Py_DECREF(value);
    }
    return result;
}

static PyObject *
Nacks_max_seq(Nacks *self, void *closure)
{
    if (!self->has_max)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->max_seq);
}

static PyGetSetDef Nacks_getset[] = {
    {"max_seq", (getter)Nacks_max_seq, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Nacks_methods[] = {
    {"add", (PyCFunction)Nacks_add, METH_VARARGS,
     "add(seq, ssrc) -> True when the packet revealed missing ones."},
    {"missing", (PyCFunction)Nacks_missing, METH_NOARGS,
     "missing() -> the sequence numbers still missing, sorted."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject NacksType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tiaojie.rtc._fastpath.Nacks",
    .tp_basicsize = sizeof(Nacks),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "aiortc's NackGenerator, bounded, in C (see rtc/_reception.c).",
    .tp_new = Nacks_new,
    .tp_methods = Nacks_methods,
    .tp_getset = Nacks_getset,
};

/* Called by PyInit__fastpath (rtc/_fastpath.c). */
/* -- for rtc/_ingress.c (declared in rtc/_fastpath.h) -- */

int
is_reception(PyObject *object)
{
    return PyObject_TypeCheck(object, &ReceptionType);
}

int
is_nacks(PyObject *object)
{
    return PyObject_TypeCheck(object, &NacksType);
}

void
reception_add(PyObject *reception, int seq, uint32_t timestamp, double now)
{
    reception_count((Reception *)reception, seq, timestamp, now);
}

int
nacks_add(PyObject *nacks, int seq, uint32_t ssrc)
{
    return nacks_count((Nacks *)nacks, seq, ssrc);
}

int
add_reception(PyObject *module)
{
    if (PyType_Ready(&ReceptionType) < 0 || PyType_Ready(&NacksType) < 0)
        return -1;
    Py_INCREF(&ReceptionType);
    if (PyModule_AddObject(module, "Reception", (PyObject *)&ReceptionType) < 0) {
        Py_DECREF(&ReceptionType);
        return -1;
    }
    Py_INCREF(&NacksType);
    if (PyModule_AddObject(module, "Nacks", (PyObject *)&NacksType) < 0) {
        Py_DECREF(&NacksType);
        return -1;
    }
    return 0;
}
