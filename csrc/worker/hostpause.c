/*
 * hostpause.c - the host stopping the worker's vCPU (see hostpause.h).
 */
#include "hostpause.h"

#include <sys/resource.h>

long rtudp_hostpause_switches(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return -1;
    return ru.ru_nivcsw;
}

void rtudp_hostpause_baseline(struct rtudp_hostpause *h, long switches)
{
    h->switches = switches;
}

int rtudp_hostpause_judge(struct rtudp_hostpause *h, int64_t step_ns, long switches)
{
    if (switches < 0 || h->switches < 0 || step_ns < RTUDP_HOST_PAUSE_MIN_NS) {
        h->switches = switches;
        return 0;
    }
    int host = switches == h->switches;
    h->switches = switches;
    if (!host) {
        h->taken++;
        return 0;
    }
    h->pauses++;
    h->pause_ns += (uint64_t)step_ns;
    if (step_ns > h->max_ns)
        h->max_ns = step_ns;
    return 1;
}
