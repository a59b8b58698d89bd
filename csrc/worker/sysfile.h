/*
 * sysfile.h - one number from a kernel file (/proc/sys, sysfs, tracefs), read at set-up
 */
#ifndef RTUDP_SYSFILE_H
#define RTUDP_SYSFILE_H

#include <stdint.h>

/* the unsigned number that starts the file at `path`; 0 when it cannot be read */
uint64_t rtudp_read_u64_file(const char *path);

#endif
