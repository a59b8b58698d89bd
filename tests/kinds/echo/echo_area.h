/*
 * echo_area.h - the echo kind's area (a test-only kind, tests/kinds/echo/): one counter.
 */
#ifndef RTUDP_ECHO_AREA_H
#define RTUDP_ECHO_AREA_H

#include <stdint.h>

struct rtudp_echo_area {
    uint64_t echoed;                               /* datagrams queued back (RX thread) */
    uint8_t pad[56];
};

/* its counters (csrc/kinds.h) */
#define RTUDP_ECHO_AREA_COUNTERS(X, SUM)                                                          \
    X(echoed, "echoed", COUNTER, "packets", SHOW,                                                \
      "datagrams received and queued back to the channel's remote", "", "")

#endif /* RTUDP_ECHO_AREA_H */
