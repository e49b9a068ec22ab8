#ifndef PGEVENTS_CHIREDIS_SHIM_H
#define PGEVENTS_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
