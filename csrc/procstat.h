/*
 * procstat.h - whether a process named by a pid in shared memory has exited.
 *
 * kill(pid, 0) succeeds on a zombie: a process killed while its parent has not yet
 * waited for it still "exists", yet it will never renew a lease or release a slot.
 * Whoever takes over from a dead process (a reader slot, the direct-receive token, a
 * UDT socket's owner, a client judging its supervisor) asks here instead.
 */
#ifndef RTUDP_PROCSTAT_H
#define RTUDP_PROCSTAT_H

#include <stdbool.h>
#include <stdint.h>

/* pid has exited: no such process, or a zombie (also for pid <= 0).  A stopped
 * process has not, nor is a stat that cannot be read for another reason (no file
 * descriptor left) a proof of exit. */
bool rtudp_pid_exited(int32_t pid);

/* the same, and also when pid now names another process than the one that started at
 * `start` (clock ticks after boot, field 22 of /proc/pid/stat); start 0: exited */
bool rtudp_pid_exited_since(int32_t pid, uint64_t start);

/* field 22 of /proc/pid/stat (the start time in clock ticks after boot); 0 when it
 * cannot be read */
uint64_t rtudp_pid_start_ticks(int32_t pid);

#endif /* RTUDP_PROCSTAT_H */
