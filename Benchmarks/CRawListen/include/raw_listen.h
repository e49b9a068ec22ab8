#ifndef PGEVENTS_RAW_LISTEN_H
#define PGEVENTS_RAW_LISTEN_H

/* A minimal libpq LISTEN loop that only counts: the baseline the Swift listener is measured against. */

typedef struct pg_conn *raw_listener;

/* Connects and LISTENs on channel; NULL on failure (message in errbuf). */
raw_listener raw_listener_open(const char *conninfo, const char *channel, char *errbuf, int errlen);

/* Blocks in poll/PQconsumeInput/PQnotifies until `expected` notifications arrived or timeout_ms passed
   without any; returns how many arrived (-1 if the connection broke). first_ns/last_ns receive the
   CLOCK_MONOTONIC time at which the first and the last notification were read. */
long raw_listener_count(raw_listener conn, long expected, int timeout_ms, long long *first_ns, long long *last_ns);

void raw_listener_close(raw_listener conn);

#endif
