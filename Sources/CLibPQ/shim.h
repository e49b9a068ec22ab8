#ifndef PGEVENTS_CLIBPQ_SHIM_H
#define PGEVENTS_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
