#include "raw_listen.h"

#include <poll.h>
#include <time.h>
#include <stdio.h>
#include <postgresql/libpq-fe.h>

raw_listener raw_listener_open(const char *conninfo, const char *channel, char *errbuf, int errlen) {
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(errbuf, errlen, "%s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    char *quoted = PQescapeIdentifier(conn, channel, 1000);
    char sql[1100];
    snprintf(sql, sizeof sql, "LISTEN %s", quoted);
    PQfreemem(quoted);
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        snprintf(errbuf, errlen, "%s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long raw_listener_count(raw_listener conn, long expected, int timeout_ms, long long *first_ns, long long *last_ns) {
    long received = 0;
    *first_ns = 0;
    *last_ns = 0;
    struct pollfd fd = { .fd = PQsocket(conn), .events = POLLIN };
    while (received < expected) {
        int ready = poll(&fd, 1, timeout_ms);
        if (ready == 0) break;
        if (ready < 0) continue;
        if (!PQconsumeInput(conn)) return -1;
        PGnotify *notify;
        while ((notify = PQnotifies(conn)) != NULL) {
            if (received == 0) *first_ns = now_ns();
            received++;
            PQfreemem(notify);
        }
        *last_ns = now_ns();
    }
    return received;
}

void raw_listener_close(raw_listener conn) {
    PQfinish(conn);
}
