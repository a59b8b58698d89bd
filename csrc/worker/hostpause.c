/*
 * hostpause.c - the host stopping the worker's vCPU (see hostpause.h).
 */
#include "hostpause.h"

#include <sys/resource.h>

long rtudp_hostpause_switches(long *all)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0) {
        if (all)
            *all = -1;
        return -1;
    }
    if (all)
        *all = ru.ru_nvcsw + ru.ru_nivcsw;
    return ru.ru_nivcsw;
}

static void count_pause(struct rtudp_hostpause *h, int64_t ns)
{
    h->pauses++;
    h->pause_ns += (uint64_t)ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
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
    count_pause(h, step_ns);
    return 1;
}

int rtudp_hostpause_interval(struct rtudp_hostpause *h, int64_t wall_ns, int64_t cpu_ns,
                             long all_switches, long switches)
{
    int64_t lost = wall_ns - cpu_ns - (int64_t)(h->pause_ns - h->pause_ns_at_mark);
    int host = all_switches >= 0 && h->all_switches >= 0 && all_switches == h->all_switches &&
               lost >= RTUDP_HOST_PAUSE_MIN_NS;
    if (host)
        count_pause(h, lost);
    h->all_switches = all_switches;
    h->switches = switches;
    h->pause_ns_at_mark = h->pause_ns;
    return host;
}
