/*
 * What the C files of tiaojie.rtc._fastpath call in each other (one extension module):
 * _fastpath.c (SRTP, Route, the copies), _remb.c (BitrateEstimator), _reception.c
 * (Reception, Nacks) and _ingress.c (Ingress, Sink, pump: the whole receive step).
 */
#ifndef TIAOJIE_FASTPATH_H
#define TIAOJIE_FASTPATH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/socket.h>

#define BATCH 64
#define BUFFER 2048

/* What one recvmmsg(2) reads: up to BATCH datagrams of up to BUFFER bytes, and senders */
typedef struct {
    unsigned char data[BATCH][BUFFER];
    struct mmsghdr messages[BATCH];
    struct iovec vectors[BATCH];
    struct sockaddr_storage addresses[BATCH];
} Batch;

/* _fastpath.c */
int read_batch(Batch *batch, int fd, int most);
int forward_copies(PyObject *routes, PyObject *payload, unsigned int seq, unsigned long ts,
                   int marker, int level, unsigned long long ntp, double now, int counts_frame,
                   Py_ssize_t *mapped, Py_ssize_t *sent);
int routes_active(PyObject *routes);
int unprotect_in_place(unsigned long long session, unsigned char *packet, int *length);
PyObject *address_of(const struct sockaddr_storage *from);

/* _remb.c */
int is_bitrate_estimator(PyObject *object);
PyObject *estimator_add(PyObject *estimator, long long arrival, long long abs_send_time,
                        long long size, unsigned long ssrc);

/* _reception.c */
double wall_seconds(void); /* time.time(), as CPython computes it */
int is_reception(PyObject *object);
int is_nacks(PyObject *object);
void reception_add(PyObject *reception, int seq, uint32_t timestamp, double now);
int nacks_add(PyObject *nacks, int seq, uint32_t ssrc);

/* _ingress.c */
int add_ingress(PyObject *module);

#endif
