/*
 * tiaojie.rtc._fastpath.BitrateEstimator: aiortc 1.16.0's RemoteBitrateEstimator
 * (aiortc/rate.py: RateCounter, InterArrival, OveruseEstimator, OveruseDetector,
 * AimdRateControl) in C, step for step, so a publisher gets the same REMB for the same
 * arrivals without a Kalman filter in the interpreter per video packet.
 *
 *   BitrateEstimator().add(arrival_ms, abs_send_time, payload_size, ssrc)
 *       -> (bitrate, [ssrc, ...]) when a REMB is due, else None
 *
 * Same arguments, order of operations and rounding as the Python (round() is half to
 * even: nearbyint; int() truncates; the build disables FMA contraction), so the estimates
 * are equal; tests/test_fastpath.py compares the two on the same arrival sequences. Where
 * the Python would fail or grow without bound, this one does not: a bitrate of 0 (only
 * empty packets) gives the minimum additive increase instead of a ZeroDivisionError, a
 * gap of more than the rate window clears it at once instead of millisecond by
 * millisecond, and at most MAX_SSRCS SSRCs are named in the REMB (the first ones seen).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#define WINDOW_MS 1000             /* RemoteBitrateEstimator: RateCounter(1000, 8000) */
#define RATE_SCALE 8000
#define MAX_SSRCS 16
#define FRAME_HISTORY 60           /* MIN_FRAME_PERIOD_HISTORY_LENGTH */
#define DELTA_COUNTER_MAX 1000
#define MIN_NUM_DELTAS 60
#define MAX_ADAPT_OFFSET_MS 15
#define BURST_DELTA_THRESHOLD_MS 5
#define FEEDBACK_INTERVAL_MS 500
#define GROUP_LENGTH ((5LL << 26) / 1000) /* TIMESTAMP_GROUP_LENGTH_MS << INTER_ARRIVAL_SHIFT */
static const double TIMESTAMP_TO_MS = 1000.0 / (double)(1 << 26);

enum { NORMAL, UNDERUSING, OVERUSING }; /* BandwidthUsage */
enum { HOLD, INCREASE, DECREASE };      /* RateControlState */

typedef struct {
    long long count, value;
} Bucket;

typedef struct {
    long long arrival, size;
    uint32_t first, last;
} Group;

typedef struct {
    PyObject_HEAD
    /* RateCounter (incoming bitrate) */
    Bucket buckets[WINDOW_MS];
    Bucket total;
    int origin_index, has_origin, incoming_initialized;
    long long origin_ms;
    /* InterArrival */
    int has_current, has_previous;
    Group current, previous;
    /* OveruseEstimator */
    double e[2][2], offset, previous_offset, slope, avg_noise, var_noise;
    double history[FRAME_HISTORY];
    int history_len, num_deltas;
    /* OveruseDetector */
    int hypothesis, overuse_counter, has_overuse_time, has_detector_update;
    double overuse_time, detector_previous_offset, threshold;
    long long detector_update_ms;
    /* AimdRateControl */
    int has_avg_max, bitrate_initialized, has_first_throughput, has_last_change, near_max, state;
    double avg_max_kbps, var_max_kbps;
    long long current_bitrate, first_throughput_ms, last_change_ms, latest_throughput;
    /* RemoteBitrateEstimator */
    int has_last_update, ssrc_count;
    long long last_update_ms;
    uint32_t ssrcs[MAX_SSRCS];
} Estimator;

static uint32_t
u32(long long value)
{
    return (uint32_t)((unsigned long long)value & 0xFFFFFFFFu);
}

static int
uint32_gt(uint32_t a, uint32_t b)
{
    return (a < b && b - a > 0x80000000u) || (a > b && a - b < 0x80000000u);
}

/* -- RateCounter -- */

static void
rate_reset(Estimator *self)
{
    memset(self->buckets, 0, sizeof(self->buckets));
    self->origin_index = 0;
    self->has_origin = 0;
    self->total.count = self->total.value = 0;
}

static void
rate_erase_old(Estimator *self, long long now_ms)
{
    long long new_origin = now_ms - WINDOW_MS + 1;
    if (new_origin - self->origin_ms >= WINDOW_MS) { /* every bucket is out of the window */
        long long steps = new_origin - self->origin_ms;
        memset(self->buckets, 0, sizeof(self->buckets));
        self->total.count = self->total.value = 0;
        self->origin_index = (int)((self->origin_index + steps) % WINDOW_MS);
        self->origin_ms = new_origin;
        return;
    }
    while (self->origin_ms < new_origin) {
        Bucket *bucket = &self->buckets[self->origin_index];
        self->total.count -= bucket->count;
        self->total.value -= bucket->value;
        bucket->count = bucket->value = 0;
        self->origin_index = (self->origin_index + 1) % WINDOW_MS;
        self->origin_ms++;
    }
}

static void
rate_add(Estimator *self, long long value, long long now_ms)
{
    if (!self->has_origin) {
        self->origin_ms = now_ms;
        self->has_origin = 1;
    } else {
        rate_erase_old(self, now_ms);
    }
    long long index = (self->origin_index + now_ms - self->origin_ms) % WINDOW_MS;
    if (index < 0)
        index += WINDOW_MS; /* Python's modulo */
    self->buckets[index].count++;
    self->buckets[index].value += value;
    self->total.count++;
    self->total.value += value;
}

/* rate(now) into *rate; 0 where the Python returns None */
static int
rate_of(Estimator *self, long long now_ms, long long *rate)
{
    if (!self->has_origin)
        return 0;
    rate_erase_old(self, now_ms);
    long long active = now_ms - self->origin_ms + 1;
    if (self->total.count > 0 && active > 1) {
        *rate = (long long)nearbyint((double)(RATE_SCALE * self->total.value) / (double)active);
        return 1;
    }
    return 0;
}

/* -- InterArrival -- */

static int
belongs_to_burst(Estimator *self, uint32_t timestamp, long long arrival)
{
    uint32_t delta = timestamp - self->current.last;
    long long delta_ms = (long long)nearbyint(TIMESTAMP_TO_MS * (double)delta);
    long long arrival_delta = arrival - self->current.arrival;
    return delta_ms == 0
           || ((arrival_delta - delta_ms) < 0 && arrival_delta <= BURST_DELTA_THRESHOLD_MS);
}

/* compute_deltas: 1 with the deltas filled in, else 0 */
static int
compute_deltas(Estimator *self, uint32_t timestamp, long long arrival, long long size,
               uint32_t *d_timestamp, long long *d_arrival, long long *d_size)
{
    int found = 0;
    if (!self->has_current) {
        self->current.first = self->current.last = timestamp;
        self->current.size = 0;
        self->has_current = 1;
    } else if ((uint32_t)(timestamp - self->current.first) >= 0x80000000u) {
        return 0; /* out of order */
    } else if (!belongs_to_burst(self, timestamp, arrival)
               && (long long)(uint32_t)(timestamp - self->current.first) > GROUP_LENGTH) {
        if (self->has_previous) {
            *d_timestamp = self->current.last - self->previous.last;
            *d_arrival = self->current.arrival - self->previous.arrival;
            *d_size = self->current.size - self->previous.size;
            found = 1;
        }
        self->previous = self->current;
        self->has_previous = 1;
        self->current.first = self->current.last = timestamp;
        self->current.size = 0;
    } else if (uint32_gt(timestamp, self->current.last)) {
        self->current.last = timestamp;
    }
    self->current.size += size;
    self->current.arrival = arrival;
    return found;
}

/* -- OveruseEstimator -- */

static double
update_min_frame_period(Estimator *self, double ts_delta)
{
    double period = ts_delta;
    if (self->history_len >= FRAME_HISTORY) {
        memmove(self->history, self->history + 1, sizeof(double) * (FRAME_HISTORY - 1));
        self->history_len = FRAME_HISTORY - 1;
    }
    for (int i = 0; i < self->history_len; i++) {
        if (!(period < self->history[i])) /* min(old, period) */
            period = self->history[i];
    }
    self->history[self->history_len++] = ts_delta;
    return period;
}

static void
update_noise_estimate(Estimator *self, double residual, double ts_delta)
{
    double alpha = 0.01;
    if (self->num_deltas > 10 * 30)
        alpha = 0.002;
    double beta = pow(1 - alpha, ts_delta * 30.0 / 1000.0);
    self->avg_noise = beta * self->avg_noise + (1 - beta) * residual;
    self->var_noise =
        beta * self->var_noise + (1 - beta) * pow(self->avg_noise - residual, 2.0);
    if (self->var_noise < 1)
        self->var_noise = 1;
}

static void
estimator_update(Estimator *self, long long time_delta_ms, double timestamp_delta_ms,
                 long long size_delta, int hypothesis)
{
    double min_frame_period = update_min_frame_period(self, timestamp_delta_ms);
    double t_ts_delta = (double)time_delta_ms - timestamp_delta_ms;
    double h0 = (double)size_delta, h1 = 1.0;
    self->num_deltas = self->num_deltas + 1 < DELTA_COUNTER_MAX ? self->num_deltas + 1
                                                                : DELTA_COUNTER_MAX;
    self->e[0][0] += 1e-13;
    self->e[1][1] += 1e-3;
    if ((hypothesis == OVERUSING && self->offset < self->previous_offset)
        || (hypothesis == UNDERUSING && self->offset > self->previous_offset))
        self->e[1][1] += 10 * 1e-3;
    double eh0 = self->e[0][0] * h0 + self->e[0][1] * h1;
    double eh1 = self->e[1][0] * h0 + self->e[1][1] * h1;
    double residual = t_ts_delta - self->slope * h0 - self->offset;
    if (hypothesis == NORMAL) {
        double max_residual = 3.0 * sqrt(self->var_noise);
        if (fabs(residual) < max_residual)
            update_noise_estimate(self, residual, min_frame_period);
        else
            update_noise_estimate(self, residual < 0 ? -max_residual : max_residual,
                                  min_frame_period);
    }
    double denom = self->var_noise + h0 * eh0 + h1 * eh1;
    double k0 = eh0 / denom, k1 = eh1 / denom;
    double ikh00 = 1.0 - k0 * h0, ikh01 = -k0 * h1, ikh10 = -k1 * h0, ikh11 = 1.0 - k1 * h1;
    double e00 = self->e[0][0], e01 = self->e[0][1];
    self->e[0][0] = e00 * ikh00 + self->e[1][0] * ikh01;
    self->e[0][1] = e01 * ikh00 + self->e[1][1] * ikh01;
    self->e[1][0] = e00 * ikh10 + self->e[1][0] * ikh11;
    self->e[1][1] = e01 * ikh10 + self->e[1][1] * ikh11;
    self->previous_offset = self->offset;
    self->slope += k0 * residual;
    self->offset += k1 * residual;
}

/* -- OveruseDetector -- */

static void
update_threshold(Estimator *self, double modified_offset, long long now_ms)
{
    if (!self->has_detector_update) {
        self->detector_update_ms = now_ms;
        self->has_detector_update = 1;
    }
    if (fabs(modified_offset) > self->threshold + MAX_ADAPT_OFFSET_MS) {
        self->detector_update_ms = now_ms;
        return;
    }
    double k = fabs(modified_offset) < self->threshold ? 0.039 : 0.0087;
    long long time_delta_ms = now_ms - self->detector_update_ms;
    if (time_delta_ms > 100)
        time_delta_ms = 100;
    self->threshold += k * (fabs(modified_offset) - self->threshold) * (double)time_delta_ms;
    if (600 < self->threshold)
        self->threshold = 600;
    if (!(self->threshold > 6))
        self->threshold = 6;
    self->detector_update_ms = now_ms;
}

static void
detect(Estimator *self, double offset, double timestamp_delta_ms, int num_deltas,
       long long now_ms)
{
    if (num_deltas < 2)
        return;
    double t = (num_deltas < MIN_NUM_DELTAS ? num_deltas : MIN_NUM_DELTAS) * offset;
    if (t > self->threshold) {
        if (!self->has_overuse_time) {
            self->overuse_time = timestamp_delta_ms / 2;
            self->has_overuse_time = 1;
        } else {
            self->overuse_time += timestamp_delta_ms;
        }
        self->overuse_counter++;
        if (self->overuse_time > 10 && self->overuse_counter > 1
            && offset >= self->detector_previous_offset) {
            self->overuse_counter = 0;
            self->overuse_time = 0;
            self->hypothesis = OVERUSING;
        }
    } else if (t < -self->threshold) {
        self->overuse_counter = 0;
        self->has_overuse_time = 0;
        self->hypothesis = UNDERUSING;
    } else {
        self->overuse_counter = 0;
        self->has_overuse_time = 0;
        self->hypothesis = NORMAL;
    }
    self->detector_previous_offset = offset;
    update_threshold(self, t, now_ms);
}

/* -- AimdRateControl -- */

static long long
near_max_rate_increase(Estimator *self)
{
    double bits_per_frame = (double)self->current_bitrate / 30;
    double packets_per_frame = ceil(bits_per_frame / (8 * 1200));
    if (!(packets_per_frame > 0))
        return 4000; /* a bitrate of 0: the Python divides by zero */
    double avg_packet_size_bits = bits_per_frame / packets_per_frame;
    long long response_time = 200 + 100; /* rtt + 100 */
    long long increase = (long long)((avg_packet_size_bits * 1000) / (double)response_time);
    return increase > 4000 ? increase : 4000;
}

static long long
multiplicative_rate_increase(Estimator *self, long long bitrate, long long now_ms)
{
    double alpha = 1.08;
    if (self->has_last_change) {
        long long elapsed_ms = now_ms - self->last_change_ms;
        if (elapsed_ms > 1000)
            elapsed_ms = 1000;
        alpha = pow(alpha, (double)elapsed_ms / 1000);
    }
    double increase = (alpha - 1) * (double)bitrate;
    if (1000 > increase)
        increase = 1000;
    return (long long)increase;
}

static void
update_max_throughput(Estimator *self, double throughput_kbps)
{
    double alpha = 0.05;
    if (!self->has_avg_max) {
        self->avg_max_kbps = throughput_kbps;
        self->has_avg_max = 1;
    } else {
        self->avg_max_kbps = (1 - alpha) * self->avg_max_kbps + alpha * throughput_kbps;
    }
    double norm = self->avg_max_kbps > 1 ? self->avg_max_kbps : 1;
    self->var_max_kbps = (1 - alpha) * self->var_max_kbps
                         + alpha * pow(self->avg_max_kbps - throughput_kbps, 2.0) / norm;
    if (2.5 < self->var_max_kbps)
        self->var_max_kbps = 2.5;
    if (!(self->var_max_kbps > 0.4))
        self->var_max_kbps = 0.4;
}

/* AimdRateControl.update: 1 with *bitrate set, 0 for None */
static int
rate_control_update(Estimator *self, int usage, int has_throughput, long long throughput,
                    long long now_ms, long long *bitrate)
{
    if (!self->bitrate_initialized && has_throughput) {
        if (!self->has_first_throughput) {
            self->first_throughput_ms = now_ms;
            self->has_first_throughput = 1;
        } else if (now_ms - self->first_throughput_ms > 3000) {
            self->current_bitrate = throughput;
            self->bitrate_initialized = 1;
        }
    }
    if (!self->bitrate_initialized && usage != OVERUSING)
        return 0;
    if (usage == NORMAL && self->state == HOLD) {
        self->last_change_ms = now_ms;
        self->has_last_change = 1;
        self->state = INCREASE;
    } else if (usage == OVERUSING) {
        self->state = DECREASE;
    } else if (usage == UNDERUSING) {
        self->state = HOLD;
    }
    long long new_bitrate = self->current_bitrate;
    if (has_throughput)
        self->latest_throughput = throughput;
    else
        throughput = self->latest_throughput;
    double throughput_kbps = (double)throughput / 1000;
    if (self->state == INCREASE) {
        if (self->has_avg_max) {
            double sigma = sqrt(self->var_max_kbps * self->avg_max_kbps);
            if (throughput_kbps >= self->avg_max_kbps + 3 * sigma) {
                self->near_max = 0;
                self->has_avg_max = 0;
            }
        }
        if (self->near_max)
            new_bitrate += (long long)((double)((now_ms - self->last_change_ms)
                                                * near_max_rate_increase(self))
                                       / 1000);
        else
            new_bitrate += multiplicative_rate_increase(self, new_bitrate, now_ms);
        self->last_change_ms = now_ms;
        self->has_last_change = 1;
    } else if (self->state == DECREASE) {
        if (self->has_avg_max) {
            double sigma = sqrt(self->var_max_kbps * self->avg_max_kbps);
            if (throughput_kbps < self->avg_max_kbps - 3 * sigma)
                self->has_avg_max = 0;
        }
        update_max_throughput(self, throughput_kbps);
        self->near_max = 1;
        new_bitrate = (long long)nearbyint(0.85 * (double)throughput);
        self->last_change_ms = now_ms;
        self->has_last_change = 1;
        self->state = HOLD;
    }
    /* _clamp_bitrate */
    long long max_bitrate = (long long)(1.5 * (double)throughput) + 10000;
    if (self->current_bitrate > max_bitrate)
        max_bitrate = self->current_bitrate;
    self->current_bitrate = new_bitrate < max_bitrate ? new_bitrate : max_bitrate;
    *bitrate = self->current_bitrate;
    return 1;
}

/* -- the Python type -- */

static PyObject *
Estimator_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (!PyArg_ParseTuple(args, ""))
        return NULL;
    Estimator *self = (Estimator *)type->tp_alloc(type, 0); /* zeroed */
    if (self == NULL)
        return NULL;
    self->incoming_initialized = 1;
    self->e[0][0] = 100.0;
    self->e[1][1] = 0.1;
    self->slope = 1.0 / 64;
    self->var_noise = 50.0;
    self->hypothesis = NORMAL;
    self->threshold = 12.5;
    self->var_max_kbps = 0.4;
    self->current_bitrate = 30000000;
    self->latest_throughput = 30000000;
    self->state = HOLD;
    return (PyObject *)self;
}

/* One arrival: None, or (bitrate, [ssrc, ...]) when a REMB is due (a new reference); NULL
 * on an error (the core of BitrateEstimator.add, also called by rtc/_ingress.c) */
PyObject *
estimator_add(PyObject *estimator, long long arrival, long long abs_send_time, long long size,
              unsigned long ssrc)
{
    Estimator *self = (Estimator *)estimator;
    uint32_t timestamp = u32((abs_send_time & 0xFFFFFF) << 8);
    int known = 0;
    for (int i = 0; i < self->ssrc_count; i++)
        known |= self->ssrcs[i] == (uint32_t)ssrc;
    if (!known && self->ssrc_count < MAX_SSRCS)
        self->ssrcs[self->ssrc_count++] = (uint32_t)ssrc;

    long long rate;
    if (rate_of(self, arrival, &rate)) {
        self->incoming_initialized = 1;
    } else if (self->incoming_initialized) {
        rate_reset(self);
        self->incoming_initialized = 0;
    }
    rate_add(self, size, arrival);

    uint32_t d_timestamp;
    long long d_arrival, d_size;
    if (compute_deltas(self, timestamp, arrival, size, &d_timestamp, &d_arrival, &d_size)) {
        double timestamp_delta_ms = (double)d_timestamp * TIMESTAMP_TO_MS;
        estimator_update(self, d_arrival, timestamp_delta_ms, d_size, self->hypothesis);
        detect(self, self->offset, timestamp_delta_ms, self->num_deltas, arrival);
    }
    if (!self->has_last_update || arrival - self->last_update_ms > FEEDBACK_INTERVAL_MS
        || self->hypothesis == OVERUSING) {
        int has_rate = rate_of(self, arrival, &rate);
        long long target;
        if (rate_control_update(self, self->hypothesis, has_rate, rate, arrival, &target)) {
            self->last_update_ms = arrival;
            self->has_last_update = 1;
            PyObject *ssrcs = PyList_New(self->ssrc_count);
            if (ssrcs == NULL)
                return NULL;
            for (int i = 0; i < self->ssrc_count; i++) {
                PyObject *value = PyLong_FromUnsignedLong(self->ssrcs[i]);
                if (value == NULL) {
                    Py_DECREF(ssrcs);
                    return NULL;
                }
                PyList_SET_ITEM(ssrcs, i, value);
            }
            return Py_BuildValue("(LN)", target, ssrcs);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
Estimator_add(Estimator *self, PyObject *args)
{
    long long arrival, abs_send_time, size;
    unsigned long ssrc;
    if (!PyArg_ParseTuple(args, "LLLk", &arrival, &abs_send_time, &size, &ssrc))
        return NULL;
    return estimator_add((PyObject *)self, arrival, abs_send_time, size, ssrc);
}

static PyTypeObject EstimatorType;

int
is_bitrate_estimator(PyObject *object)
{
    return PyObject_TypeCheck(object, &EstimatorType);
}

static PyMethodDef Estimator_methods[] = {
    {"add", (PyCFunction)Estimator_add, METH_VARARGS,
     "add(arrival_ms, abs_send_time, payload_size, ssrc) -> (bitrate, [ssrc, ...]) | None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EstimatorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tiaojie.rtc._fastpath.BitrateEstimator",
    .tp_basicsize = sizeof(Estimator),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "aiortc's RemoteBitrateEstimator in C (see rtc/_remb.c).",
    .tp_new = Estimator_new,
    .tp_methods = Estimator_methods,
};

/* Called by PyInit__fastpath (rtc/_fastpath.c). */
int
add_bitrate_estimator(PyObject *module)
{
    if (PyType_Ready(&EstimatorType) < 0)
        return -1;
    Py_INCREF(&EstimatorType);
    if (PyModule_AddObject(module, "BitrateEstimator", (PyObject *)&EstimatorType) < 0) {
        Py_DECREF(&EstimatorType);
        return -1;
    }
    return 0;
}
