// Linux's epoll, which Swift's Glibc module does not export: for the clients of `pgevents bench fanout`
// (thousands of non-blocking sockets on one thread). Part of libc: nothing to link.
#include <sys/epoll.h>
