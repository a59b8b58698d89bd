/*
 * readers.h - the "readers attached" slots of a channel block (reader_pid[]).
 *
 * A process that reads a channel claims a slot with its pid and clears it when it
 * closes.  A process that dies without closing leaves its pid behind; the next
 * claim takes such a slot over (procstat.h: gone, or a zombie), and monitors count only
 * slots whose pid exists.  Everything is one CAS on a 32-bit word: no locks, and
 * the worker never looks at these slots.
 */
#ifndef RTUDP_READERS_H
#define RTUDP_READERS_H

#include "rtudp_shm.h"

/* BEGIN CDEF */
/* claim a slot for `pid`: its index, or -1 when every slot holds a live reader */
int rtudp_reader_claim(struct rtudp_channel_block *b, uint32_t pid);
/* clear slot `slot` if it still holds `pid`; 0 if it did, -1 otherwise */
int rtudp_reader_release(struct rtudp_channel_block *b, int slot, uint32_t pid);
/* the pid in slot `slot` (0 = free), read atomically; 0 for a slot out of range */
uint32_t rtudp_reader_pid(const struct rtudp_channel_block *b, int slot);

/* Taps (rtudp_shm.h, struct rtudp_tap_line): the same slots for taps, with the count
 * of held slots the worker mirrors by.  claim: slot index, -1 when every slot holds a
 * live tap (dead taps' slots are taken back first) */
int rtudp_tap_claim(struct rtudp_channel_block *b, uint32_t pid);
/* give slot `slot` back if it still holds `pid`; 0 if it did, -1 otherwise */
int rtudp_tap_release(struct rtudp_channel_block *b, int slot, uint32_t pid);
/* take back the slots of taps that no longer exist; how many */
int rtudp_tap_reap(struct rtudp_channel_block *b);
/* a tap lost n records (lapped): count them in the channel's tap_lost */
void rtudp_tap_add_lost(struct rtudp_channel_block *b, uint64_t n);
/* the pid in tap slot `slot` (0 = free); 0 for a slot out of range */
uint32_t rtudp_tap_pid(const struct rtudp_channel_block *b, int slot);
/* END CDEF */

/* the same two steps for any slot that holds a pid (async_wait.c): the process pid
 * has exited (0, a free slot: no); CAS word from expect to pid */
int rtudp_pid_gone(uint32_t pid);
int rtudp_pid_take(uint32_t *word, uint32_t expect, uint32_t pid);

#endif /* RTUDP_READERS_H */
