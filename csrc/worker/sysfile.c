/*
 * sysfile.c - one number from a kernel file (sysfile.h)
 */
#include "sysfile.h"

#include <stdio.h>

uint64_t rtudp_read_u64_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long long v = 0;
    if (fscanf(f, "%llu", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}
