/*
 * mechanisms.c - the table mechanisms.h describes, and its parser.
 */
#include <string.h>

#include "mechanisms.h"

static const struct rtudp_mechanism_desc mechanisms[] = {
#define RTUDP_MECHANISM_DESC(id, name_, help_) {.name = name_, .help = help_},
    RTUDP_MECHANISMS(RTUDP_MECHANISM_DESC)
#undef RTUDP_MECHANISM_DESC
};

const struct rtudp_mechanism_desc *rtudp_mechanism_table(uint32_t *n)
{
    *n = (uint32_t)(sizeof mechanisms / sizeof mechanisms[0]);
    return mechanisms;
}

/* the mechanism named by the len bytes at s, or -1 */
static int mechanism_of(const char *s, size_t len)
{
    for (int i = 0; i < RTUDP_MECH_COUNT; i++)
        if (strlen(mechanisms[i].name) == len && memcmp(mechanisms[i].name, s, len) == 0)
            return i;
    return -1;
}

int rtudp_mechanisms_parse(const char *list, uint32_t *off, char *bad, uint32_t bad_len)
{
    uint32_t mask = 0;
    for (const char *s = list; *s;) {
        size_t len = strcspn(s, ",");
        int id = mechanism_of(s, len);
        if (id < 0) {
            if (bad_len) {
                size_t n = len < bad_len - 1 ? len : bad_len - 1;
                memcpy(bad, s, n);
                bad[n] = '\0';
            }
            return -1;
        }
        mask |= 1u << id;
        s += len;
        if (*s == ',')
            s++;
    }
    *off = mask;
    return 0;
}
