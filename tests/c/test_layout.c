/*
 * test_layout.c - print the C compiler's view of the shared-memory layout as JSON.
 *
 * tests/test_c_units.py compares every number printed here with cffi's view
 * (ffi.sizeof / ffi.offsetof), so a struct that Python and C disagree on is caught
 * before two processes ever share a segment.  The table below is the only thing
 * to edit: adding a field is one FIELD() line, adding a struct is one STRUCT()
 * block.  Output: {"struct_name": {"sizeof": N, "fields": {"field": offset, ...}}, ...}
 */
#include <stddef.h>
#include <stdio.h>

#include "proto/netflux_shm.h"
#include "ring.h"
#include "proto/rtp_area.h"
#include "proto/udt_area.h"

struct field {
    const char *name;
    size_t offset;
};

struct layout {
    const char *name;
    size_t size;
    const struct field *fields;
    size_t nfields;
};

/* Arrays are listed by name: offsetof gives the offset of their first element. */
#define FIELD(S, f) { #f, offsetof(struct S, f) }

static const struct field segment_header_fields[] = {
    FIELD(rtudp_segment_header, magic),
    FIELD(rtudp_segment_header, layout_version),
    FIELD(rtudp_segment_header, kind),
    FIELD(rtudp_segment_header, total_size),
    FIELD(rtudp_segment_header, header_size),
    FIELD(rtudp_segment_header, creator_pid),
    FIELD(rtudp_segment_header, ring_count),
    FIELD(rtudp_segment_header, created_ns),
    FIELD(rtudp_segment_header, ring_offset),
    FIELD(rtudp_segment_header, reserved),
};

static const struct field tx_record_fields[] = {
    FIELD(rtudp_tx_record, length),
    FIELD(rtudp_tx_record, type),
    FIELD(rtudp_tx_record, flags),
    FIELD(rtudp_tx_record, send_at_ns),
};

static const struct field bcast_record_fields[] = {
    FIELD(rtudp_bcast_record, length),
    FIELD(rtudp_bcast_record, type),
    FIELD(rtudp_bcast_record, flags),
    FIELD(rtudp_bcast_record, seq),
    FIELD(rtudp_bcast_record, time_ns),
};

static const struct field doorbell_fields[] = {
    FIELD(rtudp_doorbell, seq),
    FIELD(rtudp_doorbell, waiters),
    FIELD(rtudp_doorbell, sleeper_deadline_ns),
    FIELD(rtudp_doorbell, rung_ns),
    FIELD(rtudp_doorbell, pad),
};

static const struct field mpsc_ring_fields[] = {
    FIELD(rtudp_mpsc_ring, magic),
    FIELD(rtudp_mpsc_ring, kind),
    FIELD(rtudp_mpsc_ring, capacity),
    FIELD(rtudp_mpsc_ring, max_payload),
    FIELD(rtudp_mpsc_ring, pad0),
    FIELD(rtudp_mpsc_ring, tail),
    FIELD(rtudp_mpsc_ring, pad1),
    FIELD(rtudp_mpsc_ring, head_cache),
    FIELD(rtudp_mpsc_ring, pad2),
    FIELD(rtudp_mpsc_ring, head),
    FIELD(rtudp_mpsc_ring, stuck_pos),
    FIELD(rtudp_mpsc_ring, stuck_since_ns),
    FIELD(rtudp_mpsc_ring, pad3),
    FIELD(rtudp_mpsc_ring, data_bell),
    FIELD(rtudp_mpsc_ring, space_bell),
    FIELD(rtudp_mpsc_ring, records_consumed),
    FIELD(rtudp_mpsc_ring, bytes_consumed),
    FIELD(rtudp_mpsc_ring, unblocked_claims),
    FIELD(rtudp_mpsc_ring, corrupt_records),
    FIELD(rtudp_mpsc_ring, pad6),
    FIELD(rtudp_mpsc_ring, full_events),
    FIELD(rtudp_mpsc_ring, pad7),
};

static const struct field bcast_ring_fields[] = {
    FIELD(rtudp_bcast_ring, magic),
    FIELD(rtudp_bcast_ring, kind),
    FIELD(rtudp_bcast_ring, capacity),
    FIELD(rtudp_bcast_ring, max_payload),
    FIELD(rtudp_bcast_ring, pad0),
    FIELD(rtudp_bcast_ring, tail_intent),
    FIELD(rtudp_bcast_ring, tail),
    FIELD(rtudp_bcast_ring, head),
    FIELD(rtudp_bcast_ring, next_seq),
    FIELD(rtudp_bcast_ring, pad1),
    FIELD(rtudp_bcast_ring, bell),
    FIELD(rtudp_bcast_ring, records_written),
    FIELD(rtudp_bcast_ring, bytes_written),
    FIELD(rtudp_bcast_ring, corrupt_records),
    FIELD(rtudp_bcast_ring, pad3),
    FIELD(rtudp_bcast_ring, lapped_events),
    FIELD(rtudp_bcast_ring, records_lost),
    FIELD(rtudp_bcast_ring, pad4),
};

static const struct field check_fields[] = {
    FIELD(rtudp_check, code),
    FIELD(rtudp_check, msg),
};

/* Process-local views: not shared, but Python allocates them, so cffi must agree. */
static const struct field mpsc_view_fields[] = {
    FIELD(rtudp_mpsc, ring),
    FIELD(rtudp_mpsc, data),
    FIELD(rtudp_mpsc, capacity),
    FIELD(rtudp_mpsc, mask),
    FIELD(rtudp_mpsc, max_payload),
    FIELD(rtudp_mpsc, tail_seen),
    FIELD(rtudp_mpsc, wake),
    FIELD(rtudp_mpsc, ready),
    FIELD(rtudp_mpsc, ready_bit),
    FIELD(rtudp_mpsc, route),
    FIELD(rtudp_mpsc, not_before),
    FIELD(rtudp_mpsc, stuck_span),
};

static const struct field mpsc_route_fields[] = {
    FIELD(rtudp_mpsc_route, worker),
    FIELD(rtudp_mpsc_route, bells),
    FIELD(rtudp_mpsc_route, bell_stride),
    FIELD(rtudp_mpsc_route, ready_sets),
    FIELD(rtudp_mpsc_route, ready_stride),
    FIELD(rtudp_mpsc_route, n),
};

static const struct field bcast_view_fields[] = {
    FIELD(rtudp_bcast, ring),
    FIELD(rtudp_bcast, data),
    FIELD(rtudp_bcast, capacity),
    FIELD(rtudp_bcast, mask),
    FIELD(rtudp_bcast, max_payload),
};

static const struct field bcast_reader_fields[] = {
    FIELD(rtudp_bcast_reader, cursor),
    FIELD(rtudp_bcast_reader, expected_seq),
    FIELD(rtudp_bcast_reader, lost),
    FIELD(rtudp_bcast_reader, lapped),
};

static const struct field hist_fields[] = {
    FIELD(rtudp_hist, count),
    FIELD(rtudp_hist, sum_ns),
    FIELD(rtudp_hist, min_ns),
    FIELD(rtudp_hist, max_ns),
    FIELD(rtudp_hist, clamped),
    FIELD(rtudp_hist, negative),
    FIELD(rtudp_hist, reserved),
    FIELD(rtudp_hist, buckets),
};

static const struct field pool_block_fields[] = {
    FIELD(rtudp_pool_block, supervisor_pid),
    FIELD(rtudp_pool_block, n_workers),
    FIELD(rtudp_pool_block, started_ns),
    FIELD(rtudp_pool_block, max_channels),
    FIELD(rtudp_pool_block, flags),
    FIELD(rtudp_pool_block, horizon_ns),
    FIELD(rtudp_pool_block, pad0),
    FIELD(rtudp_pool_block, heartbeat_ns),
    FIELD(rtudp_pool_block, channel_generation),
    FIELD(rtudp_pool_block, channel_moves),
    FIELD(rtudp_pool_block, pad1),
};

static const struct field worker_slot_fields[] = {
    FIELD(rtudp_worker_slot, pid),
    FIELD(rtudp_worker_slot, cpu),
    FIELD(rtudp_worker_slot, policy),
    FIELD(rtudp_worker_slot, priority),
    FIELD(rtudp_worker_slot, state),
    FIELD(rtudp_worker_slot, restarts),
    FIELD(rtudp_worker_slot, started_ns),
    FIELD(rtudp_worker_slot, commands_posted),
    FIELD(rtudp_worker_slot, pad0),
    FIELD(rtudp_worker_slot, bell),
    FIELD(rtudp_worker_slot, heartbeat_ns),
    FIELD(rtudp_worker_slot, loops),
    FIELD(rtudp_worker_slot, sleeps),
    FIELD(rtudp_worker_slot, spin_ns),
    FIELD(rtudp_worker_slot, spin_margin_ns),
    FIELD(rtudp_worker_slot, spin_other_ns),
    FIELD(rtudp_worker_slot, channels),
    FIELD(rtudp_worker_slot, idle_poll),
    FIELD(rtudp_worker_slot, demotions),
    FIELD(rtudp_worker_slot, demote_preempted),
    FIELD(rtudp_worker_slot, sleep_cpu_ns),
    FIELD(rtudp_worker_slot, bridge_ns),
    FIELD(rtudp_worker_slot, capped_sleeps),
    FIELD(rtudp_worker_slot, rx_turns),
    FIELD(rtudp_worker_slot, async_posted),
    FIELD(rtudp_worker_slot, cpu_contended),
    FIELD(rtudp_worker_slot, host_pauses),
    FIELD(rtudp_worker_slot, host_pause_ns),
    FIELD(rtudp_worker_slot, host_pause_max_ns),
    FIELD(rtudp_worker_slot, warmups),
    FIELD(rtudp_worker_slot, warmup_lead_ns),
    FIELD(rtudp_worker_slot, idle_source),
    FIELD(rtudp_worker_slot, rx_coalesce_ns),
    FIELD(rtudp_worker_slot, rx_coalesced),
    FIELD(rtudp_worker_slot, idle_poller_cpu_ns),
    FIELD(rtudp_worker_slot, idle_poller_pid),
    FIELD(rtudp_worker_slot, tx_coalesce_ns),
    FIELD(rtudp_worker_slot, pad4),
    FIELD(rtudp_worker_slot, tx_coalesced),
    FIELD(rtudp_worker_slot, tunables),
    FIELD(rtudp_worker_slot, idle_strategy),
    FIELD(rtudp_worker_slot, pad5),
    FIELD(rtudp_worker_slot, tx_sent),
    FIELD(rtudp_worker_slot, tx_late_sent),
    FIELD(rtudp_worker_slot, pad6),
};

static const struct field channel_slot_fields[] = {
    FIELD(rtudp_channel_slot, name),
    FIELD(rtudp_channel_slot, state),
    FIELD(rtudp_channel_slot, kind),
    FIELD(rtudp_channel_slot, worker),
    FIELD(rtudp_channel_slot, generation),
    FIELD(rtudp_channel_slot, pad),
};

static const struct field control_fields[] = {
    FIELD(rtudp_control, header),
    FIELD(rtudp_control, pool),
    FIELD(rtudp_control, workers),
    FIELD(rtudp_control, channels),
    FIELD(rtudp_control, ready),
};

static const struct field ready_set_fields[] = {
    FIELD(rtudp_ready_set, summary),
    FIELD(rtudp_ready_set, bits),
};

static const struct field sockaddr_fields[] = {
    FIELD(rtudp_sockaddr, family),
    FIELD(rtudp_sockaddr, port),
    FIELD(rtudp_sockaddr, scope_id),
    FIELD(rtudp_sockaddr, addr),
};

static const struct field tx_journal_fields[] = {
    FIELD(rtudp_tx_journal, count),
    FIELD(rtudp_tx_journal, key0),
    FIELD(rtudp_tx_journal, restart_left),
    FIELD(rtudp_tx_journal, restart_resent),
    FIELD(rtudp_tx_journal, one_key),
    FIELD(rtudp_tx_journal, pad),
    FIELD(rtudp_tx_journal, pos),
};

static const struct field direct_rx_fields[] = {
    FIELD(rtudp_direct_rx, state),
    FIELD(rtudp_direct_rx, holder_pid),
    FIELD(rtudp_direct_rx, lease_until_ns),
    FIELD(rtudp_direct_rx, next_seq),
    FIELD(rtudp_direct_rx, allowed),
    FIELD(rtudp_direct_rx, impaired),
    FIELD(rtudp_direct_rx, packets),
    FIELD(rtudp_direct_rx, takes),
    FIELD(rtudp_direct_rx, reclaims),
    FIELD(rtudp_direct_rx, pad),
};

static const struct field direct_tx_fields[] = {
    FIELD(rtudp_direct_tx, state),
    FIELD(rtudp_direct_tx, impaired),
    FIELD(rtudp_direct_tx, packets),
    FIELD(rtudp_direct_tx, bytes),
    FIELD(rtudp_direct_tx, fallbacks),
    FIELD(rtudp_direct_tx, pad),
};

static const struct field tap_line_fields[] = {
    FIELD(rtudp_tap_line, pid),
    FIELD(rtudp_tap_line, attached),
    FIELD(rtudp_tap_line, pad),
};

static const struct field tap_counters_fields[] = {
    FIELD(rtudp_tap_counters, tx_packets),
    FIELD(rtudp_tap_counters, rx_packets),
    FIELD(rtudp_tap_counters, unmirrored),
    FIELD(rtudp_tap_counters, lost),
    FIELD(rtudp_tap_counters, pad),
};

static const struct field tx_late_fields[] = {
    FIELD(rtudp_tx_late, arrival),
    FIELD(rtudp_tx_late, arrival_ns),
    FIELD(rtudp_tx_late, arrival_max_ns),
    FIELD(rtudp_tx_late, sent),
    FIELD(rtudp_tx_late, sent_ns),
    FIELD(rtudp_tx_late, sent_max_ns),
    FIELD(rtudp_tx_late, pad),
};

static const struct field tap_meta_fields[] = {
    FIELD(rtudp_tap_meta, peer),
    FIELD(rtudp_tap_meta, wire_len),
    FIELD(rtudp_tap_meta, flags),
};

static const struct field channel_block_fields[] = {
    FIELD(rtudp_channel_block, name),
    FIELD(rtudp_channel_block, kind),
    FIELD(rtudp_channel_block, direction),
    FIELD(rtudp_channel_block, local),
    FIELD(rtudp_channel_block, remote),
    FIELD(rtudp_channel_block, capacity_packets),
    FIELD(rtudp_channel_block, flags),
    FIELD(rtudp_channel_block, worker),
    FIELD(rtudp_channel_block, max_datagram),
    FIELD(rtudp_channel_block, socket_fd),
    FIELD(rtudp_channel_block, table_slot),
    FIELD(rtudp_channel_block, handoff_to),
    FIELD(rtudp_channel_block, handoff),
    FIELD(rtudp_channel_block, tx_counted_to),
    FIELD(rtudp_channel_block, pad0),
    FIELD(rtudp_channel_block, tx_packets),
    FIELD(rtudp_channel_block, tx_bytes),
    FIELD(rtudp_channel_block, tx_immediate),
    FIELD(rtudp_channel_block, tx_errors),
    FIELD(rtudp_channel_block, tx_kernel_stamped),
    FIELD(rtudp_channel_block, tx_requested),
    FIELD(rtudp_channel_block, tx_late),
    FIELD(rtudp_channel_block, tx_ring_faults),
    FIELD(rtudp_channel_block, rx_packets),
    FIELD(rtudp_channel_block, rx_bytes),
    FIELD(rtudp_channel_block, rx_truncated),
    FIELD(rtudp_channel_block, rx_kernel_drops),
    FIELD(rtudp_channel_block, rx_errors),
    FIELD(rtudp_channel_block, pad2),
    FIELD(rtudp_channel_block, reader_pid),
    FIELD(rtudp_channel_block, direct),
    FIELD(rtudp_channel_block, impair),
    FIELD(rtudp_channel_block, impair_tx),
    FIELD(rtudp_channel_block, impair_rx),
    FIELD(rtudp_channel_block, tap),
    FIELD(rtudp_channel_block, tap_count),
    FIELD(rtudp_channel_block, late),
    FIELD(rtudp_channel_block, tx_lateness),
    FIELD(rtudp_channel_block, rx_delay),
    FIELD(rtudp_channel_block, tx_journal),
    FIELD(rtudp_channel_block, async_wait),
    FIELD(rtudp_channel_block, direct_rx),
};

static const struct field async_slot_fields[] = {
    FIELD(rtudp_async_slot, pid),
    FIELD(rtudp_async_slot, fd),
    FIELD(rtudp_async_slot, gen),
    FIELD(rtudp_async_slot, answered_gen),
    FIELD(rtudp_async_slot, status),
    FIELD(rtudp_async_slot, error),
    FIELD(rtudp_async_slot, pad),
};

static const struct field async_wait_fields[] = {
    FIELD(rtudp_async_wait, armed),
    FIELD(rtudp_async_wait, pad),
    FIELD(rtudp_async_wait, slot),
};

static const struct field impair_cfg_fields[] = {
    FIELD(rtudp_impair_cfg, where),
    FIELD(rtudp_impair_cfg, loss),
    FIELD(rtudp_impair_cfg, duplicate),
    FIELD(rtudp_impair_cfg, corrupt),
    FIELD(rtudp_impair_cfg, reorder),
    FIELD(rtudp_impair_cfg, delay_ns),
    FIELD(rtudp_impair_cfg, jitter_ns),
    FIELD(rtudp_impair_cfg, reorder_ns),
    FIELD(rtudp_impair_cfg, rate_bps),
    FIELD(rtudp_impair_cfg, burst_bytes),
    FIELD(rtudp_impair_cfg, seed),
};

static const struct field impair_shm_fields[] = {
    FIELD(rtudp_impair_shm, seq),
    FIELD(rtudp_impair_shm, pad0),
    FIELD(rtudp_impair_shm, cfg),
    FIELD(rtudp_impair_shm, pad1),
};

static const struct field impair_counters_fields[] = {
    FIELD(rtudp_impair_counters, lost),
    FIELD(rtudp_impair_counters, duplicated),
    FIELD(rtudp_impair_counters, corrupted),
    FIELD(rtudp_impair_counters, delayed),
    FIELD(rtudp_impair_counters, reordered),
    FIELD(rtudp_impair_counters, rate_held),
    FIELD(rtudp_impair_counters, hold_dropped),
    FIELD(rtudp_impair_counters, pad),
};

static const struct field rx_meta_fields[] = {
    FIELD(rtudp_rx_meta, source),
    FIELD(rtudp_rx_meta, rx_ns),
    FIELD(rtudp_rx_meta, hw_ns),
    FIELD(rtudp_rx_meta, rx_seq),
    FIELD(rtudp_rx_meta, flags),
    FIELD(rtudp_rx_meta, pad),
};

static const struct field cmd_fields[] = {
    FIELD(rtudp_cmd, op),
    FIELD(rtudp_cmd, slot),
    FIELD(rtudp_cmd, name),
};

static const struct field reply_fields[] = {
    FIELD(rtudp_reply, op),
    FIELD(rtudp_reply, slot),
    FIELD(rtudp_reply, status),
    FIELD(rtudp_reply, msg),
};

static const struct field rtp_area_fields[] = {
    FIELD(rtudp_rtp_area, tx_mode),
    FIELD(rtudp_rtp_area, rx_mode),
    FIELD(rtudp_rtp_area, clock_rate),
    FIELD(rtudp_rtp_area, ptime_us),
    FIELD(rtudp_rtp_area, jb_capacity),
    FIELD(rtudp_rtp_area, jb_latency_ms),
    FIELD(rtudp_rtp_area, payload_type),
    FIELD(rtudp_rtp_area, rtcp_mode),
    FIELD(rtudp_rtp_area, rtcp_interval_ms),
    FIELD(rtudp_rtp_area, pad0),
    FIELD(rtudp_rtp_area, target_gen),
    FIELD(rtudp_rtp_area, target_word),
    FIELD(rtudp_rtp_area, pad1),
    FIELD(rtudp_rtp_area, tx_ssrc),
    FIELD(rtudp_rtp_area, tx_next_ts),
    FIELD(rtudp_rtp_area, tx_next_seq),
    FIELD(rtudp_rtp_area, tx_resume),
    FIELD(rtudp_rtp_area, tx_frames),
    FIELD(rtudp_rtp_area, tx_underruns),
    FIELD(rtudp_rtp_area, tx_bad_records),
    FIELD(rtudp_rtp_area, tx_t0_ns),
    FIELD(rtudp_rtp_area, tx_ts0),
    FIELD(rtudp_rtp_area, tx_frac),
    FIELD(rtudp_rtp_area, tx_next_at_ns),
    FIELD(rtudp_rtp_area, rx_frames),
    FIELD(rtudp_rtp_area, rx_erasures),
    FIELD(rtudp_rtp_area, rx_erased),
    FIELD(rtudp_rtp_area, rx_invalid),
    FIELD(rtudp_rtp_area, rx_duplicates),
    FIELD(rtudp_rtp_area, rx_late),
    FIELD(rtudp_rtp_area, rx_reordered),
    FIELD(rtudp_rtp_area, rx_restarts),
    FIELD(rtudp_rtp_area, rx_ssrc),
    FIELD(rtudp_rtp_area, rx_last_ts),
    FIELD(rtudp_rtp_area, rx_lost),
    FIELD(rtudp_rtp_area, rx_expected),
    FIELD(rtudp_rtp_area, rx_jitter),
    FIELD(rtudp_rtp_area, rx_other_ssrc),
    FIELD(rtudp_rtp_area, rx_no_buffer),
    FIELD(rtudp_rtp_area, rx_published_errors),
    FIELD(rtudp_rtp_area, rx_resume),
    FIELD(rtudp_rtp_area, rx_bad_seq),
    FIELD(rtudp_rtp_area, rx_probation_dropped),
    FIELD(rtudp_rtp_area, rx_held_aside),
    FIELD(rtudp_rtp_area, rx_ext_max),
    FIELD(rtudp_rtp_area, pad6),
    FIELD(rtudp_rtp_area, rtcp_sr_sent),
    FIELD(rtudp_rtp_area, rtcp_rr_sent),
    FIELD(rtudp_rtp_area, rtcp_sr_received),
    FIELD(rtudp_rtp_area, rtcp_rr_received),
    FIELD(rtudp_rtp_area, rtcp_bad),
    FIELD(rtudp_rtp_area, rtcp_rtt_ns),
    FIELD(rtudp_rtp_area, rtcp_remote_fraction_lost),
    FIELD(rtudp_rtp_area, rtcp_remote_cumulative_lost),
    FIELD(rtudp_rtp_area, rtcp_remote_jitter_ns),
    FIELD(rtudp_rtp_area, rtcp_peer_gen),
    FIELD(rtudp_rtp_area, rtcp_peer_word),
    FIELD(rtudp_rtp_area, rtcp_last_sr),
    FIELD(rtudp_rtp_area, rtcp_clock_gen),
    FIELD(rtudp_rtp_area, rtcp_clock),
};

static const struct field rtp_frame_fields[] = {
    FIELD(rtudp_rtp_frame, kind),
    FIELD(rtudp_rtp_frame, pt),
    FIELD(rtudp_rtp_frame, marker),
    FIELD(rtudp_rtp_frame, pad0),
    FIELD(rtudp_rtp_frame, seq),
    FIELD(rtudp_rtp_frame, pad1),
    FIELD(rtudp_rtp_frame, ts),
    FIELD(rtudp_rtp_frame, ssrc),
    FIELD(rtudp_rtp_frame, lseq),
    FIELD(rtudp_rtp_frame, lseq_end),
    FIELD(rtudp_rtp_frame, ts_span),
    FIELD(rtudp_rtp_frame, payload_off),
    FIELD(rtudp_rtp_frame, payload_len),
};

/* the netflux kind area (proto/netflux_shm.h) */
static const struct field nf_config_fields[] = {
    FIELD(rtudp_nf_config, magic),
    FIELD(rtudp_nf_config, send_interval_ns),
    FIELD(rtudp_nf_config, watch_interval_ns),
    FIELD(rtudp_nf_config, send_size),
    FIELD(rtudp_nf_config, recv_size),
    FIELD(rtudp_nf_config, flags),
    FIELD(rtudp_nf_config, pad0),
    FIELD(rtudp_nf_config, start_ns),
    FIELD(rtudp_nf_config, pad),
};

static const struct field nf_tx_fields[] = {
    FIELD(rtudp_nf_tx, start_ns),
    FIELD(rtudp_nf_tx, cycle),
    FIELD(rtudp_nf_tx, sent),
    FIELD(rtudp_nf_tx, missed),
    FIELD(rtudp_nf_tx, send_errors),
    FIELD(rtudp_nf_tx, image_busy),
    FIELD(rtudp_nf_tx, last_sent_ns),
    FIELD(rtudp_nf_tx, own_jitter_ns),
    FIELD(rtudp_nf_tx, seq),
    FIELD(rtudp_nf_tx, feedback),
    FIELD(rtudp_nf_tx, max_lateness_ns),
    FIELD(rtudp_nf_tx, claim),
    FIELD(rtudp_nf_tx, standby_sent),
    FIELD(rtudp_nf_tx, yielded),
    FIELD(rtudp_nf_tx, standby_errors),
    FIELD(rtudp_nf_tx, claim_ns),
    FIELD(rtudp_nf_tx, claim_breaks),
    FIELD(rtudp_nf_tx, standby_held),
};

static const struct field nf_rx_fields[] = {
    FIELD(rtudp_nf_rx, link),
    FIELD(rtudp_nf_rx, partner_seq),
    FIELD(rtudp_nf_rx, partner_feedback),
    FIELD(rtudp_nf_rx, pad0),
    FIELD(rtudp_nf_rx, last_valid_ns),
    FIELD(rtudp_nf_rx, lost_at_ns),
    FIELD(rtudp_nf_rx, recovered_at_ns),
    FIELD(rtudp_nf_rx, last_rtt_ns),
    FIELD(rtudp_nf_rx, partner_jitter_ns),
    FIELD(rtudp_nf_rx, events),
    FIELD(rtudp_nf_rx, valid),
    FIELD(rtudp_nf_rx, duplicate),
    FIELD(rtudp_nf_rx, old),
    FIELD(rtudp_nf_rx, short_pkts),
    FIELD(rtudp_nf_rx, partner_lost),
    FIELD(rtudp_nf_rx, feedback_lost),
    FIELD(rtudp_nf_rx, watchdog_trips),
    FIELD(rtudp_nf_rx, recoveries),
    FIELD(rtudp_nf_rx, resyncs),
    FIELD(rtudp_nf_rx, pad),
};

static const struct field nf_image_fields[] = {
    FIELD(rtudp_nf_image, seq),
    FIELD(rtudp_nf_image, len),
    FIELD(rtudp_nf_image, stamp_ns),
    FIELD(rtudp_nf_image, updates),
    FIELD(rtudp_nf_image, tag),
    FIELD(rtudp_nf_image, pad),
    FIELD(rtudp_nf_image, data),
    FIELD(rtudp_nf_image, tail_pad),
};

static const struct field nf_image_meta_fields[] = {
    FIELD(rtudp_nf_image_meta, len),
    FIELD(rtudp_nf_image_meta, pad),
    FIELD(rtudp_nf_image_meta, stamp_ns),
    FIELD(rtudp_nf_image_meta, updates),
    FIELD(rtudp_nf_image_meta, tag),
};

static const struct field nf_area_fields[] = {
    FIELD(rtudp_nf_area, config),
    FIELD(rtudp_nf_area, tx),
    FIELD(rtudp_nf_area, rx),
    FIELD(rtudp_nf_area, bell),
    FIELD(rtudp_nf_area, sent_ns),
    FIELD(rtudp_nf_area, send_image),
    FIELD(rtudp_nf_area, recv_image),
    FIELD(rtudp_nf_area, own_interval),
    FIELD(rtudp_nf_area, partner_interval),
    FIELD(rtudp_nf_area, rtt),
};

static const struct field udt_conn_row_fields[] = {
    FIELD(rtudp_udt_conn_row, peer),
    FIELD(rtudp_udt_conn_row, sock_id),
    FIELD(rtudp_udt_conn_row, peer_id),
    FIELD(rtudp_udt_conn_row, state),
    FIELD(rtudp_udt_conn_row, sock_type),
    FIELD(rtudp_udt_conn_row, rtt_ns),
    FIELD(rtudp_udt_conn_row, rtt_var_ns),
    FIELD(rtudp_udt_conn_row, send_period_ns),
    FIELD(rtudp_udt_conn_row, send_rate),
    FIELD(rtudp_udt_conn_row, cwnd),
    FIELD(rtudp_udt_conn_row, flow_window),
    FIELD(rtudp_udt_conn_row, rcv_room),
    FIELD(rtudp_udt_conn_row, unacked),
    FIELD(rtudp_udt_conn_row, pkt_sent),
    FIELD(rtudp_udt_conn_row, pkt_recv),
    FIELD(rtudp_udt_conn_row, pkt_retrans),
    FIELD(rtudp_udt_conn_row, pkt_snd_loss),
    FIELD(rtudp_udt_conn_row, pkt_rcv_loss),
    FIELD(rtudp_udt_conn_row, bytes_sent),
    FIELD(rtudp_udt_conn_row, bytes_recv),
    FIELD(rtudp_udt_conn_row, snd_drop),
    FIELD(rtudp_udt_conn_row, rcv_drop),
    FIELD(rtudp_udt_conn_row, stalled_ms),
    FIELD(rtudp_udt_conn_row, stalled),
    FIELD(rtudp_udt_conn_row, snd_wait),
};

static const struct field udt_req_fields[] = {
    FIELD(rtudp_udt_req, op),
    FIELD(rtudp_udt_req, sock),
    FIELD(rtudp_udt_req, src),
};

static const struct field udt_config_fields[] = {
    FIELD(rtudp_udt_config, magic),
    FIELD(rtudp_udt_config, max_socks),
    FIELD(rtudp_udt_config, buf_pkts),
    FIELD(rtudp_udt_config, mss),
    FIELD(rtudp_udt_config, cc),
    FIELD(rtudp_udt_config, broken_us),
    FIELD(rtudp_udt_config, socks_off),
    FIELD(rtudp_udt_config, sock_stride),
    FIELD(rtudp_udt_config, conn_off),
    FIELD(rtudp_udt_config, snd_off),
    FIELD(rtudp_udt_config, rcv_off),
    FIELD(rtudp_udt_config, slot_bytes),
    FIELD(rtudp_udt_config, nak_floor_us),
};

static const struct field udt_slot_fields[] = {
    FIELD(rtudp_udt_slot, tag),
    FIELD(rtudp_udt_slot, len),
    FIELD(rtudp_udt_slot, msg),
    FIELD(rtudp_udt_slot, born_us),
    FIELD(rtudp_udt_slot, ttl_ms),
    FIELD(rtudp_udt_slot, flags),
};

static const struct field udt_counters_fields[] = {
    FIELD(rtudp_udt_counters, rx_datagrams),
    FIELD(rtudp_udt_counters, rx_malformed),
    FIELD(rtudp_udt_counters, rx_unknown),
    FIELD(rtudp_udt_counters, rx_dropped),
    FIELD(rtudp_udt_counters, tx_data),
    FIELD(rtudp_udt_counters, tx_retrans),
    FIELD(rtudp_udt_counters, tx_ctrl),
    FIELD(rtudp_udt_counters, rx_data),
    FIELD(rtudp_udt_counters, rx_dup),
    FIELD(rtudp_udt_counters, rx_no_room),
    FIELD(rtudp_udt_counters, naks_sent),
    FIELD(rtudp_udt_counters, naks_recv),
    FIELD(rtudp_udt_counters, acks_sent),
    FIELD(rtudp_udt_counters, acks_recv),
    FIELD(rtudp_udt_counters, handshakes),
    FIELD(rtudp_udt_counters, accepted),
    FIELD(rtudp_udt_counters, connected),
    FIELD(rtudp_udt_counters, broken),
    FIELD(rtudp_udt_counters, msgs_dropped),
    FIELD(rtudp_udt_counters, open_socks),
    FIELD(rtudp_udt_counters, restarts),
    FIELD(rtudp_udt_counters, orphans),
    FIELD(rtudp_udt_counters, drops_ignored),
    FIELD(rtudp_udt_counters, hs_refused),
};

static const struct field udt_area_fields[] = {
    FIELD(rtudp_udt_area, config),
    FIELD(rtudp_udt_area, pad0),
    FIELD(rtudp_udt_area, cnt),
    FIELD(rtudp_udt_area, bell),
    FIELD(rtudp_udt_area, events),
    FIELD(rtudp_udt_area, secret_set),
    FIELD(rtudp_udt_area, secret),
    FIELD(rtudp_udt_area, pad1),
};

static const struct field udt_cli_fields[] = {
    FIELD(rtudp_udt_cli, claim),
    FIELD(rtudp_udt_cli, sock_type),
    FIELD(rtudp_udt_cli, rendezvous),
    FIELD(rtudp_udt_cli, close_req),
    FIELD(rtudp_udt_cli, peer),
    FIELD(rtudp_udt_cli, snd_head),
    FIELD(rtudp_udt_cli, rcv_read),
    FIELD(rtudp_udt_cli, rcv_off),
    FIELD(rtudp_udt_cli, acc_tail),
    FIELD(rtudp_udt_cli, backlog),
    FIELD(rtudp_udt_cli, msgno),
    FIELD(rtudp_udt_cli, owner_pid),
    FIELD(rtudp_udt_cli, pad),
};

static const struct field udt_wrk_fields[] = {
    FIELD(rtudp_udt_wrk, state),
    FIELD(rtudp_udt_wrk, error),
    FIELD(rtudp_udt_wrk, sock_id),
    FIELD(rtudp_udt_wrk, peer_id),
    FIELD(rtudp_udt_wrk, payload),
    FIELD(rtudp_udt_wrk, peer_closed),
    FIELD(rtudp_udt_wrk, parent),
    FIELD(rtudp_udt_wrk, acc_head),
    FIELD(rtudp_udt_wrk, snd_acked),
    FIELD(rtudp_udt_wrk, rcv_ready),
    FIELD(rtudp_udt_wrk, peer),
    FIELD(rtudp_udt_wrk, accept_q),
    FIELD(rtudp_udt_wrk, start_us),
    FIELD(rtudp_udt_wrk, pkt_sent),
    FIELD(rtudp_udt_wrk, pkt_recv),
    FIELD(rtudp_udt_wrk, pkt_retrans),
    FIELD(rtudp_udt_wrk, pkt_snd_loss),
    FIELD(rtudp_udt_wrk, pkt_rcv_loss),
    FIELD(rtudp_udt_wrk, ack_sent),
    FIELD(rtudp_udt_wrk, ack_recv),
    FIELD(rtudp_udt_wrk, nak_sent),
    FIELD(rtudp_udt_wrk, nak_recv),
    FIELD(rtudp_udt_wrk, snd_drop),
    FIELD(rtudp_udt_wrk, rcv_drop),
    FIELD(rtudp_udt_wrk, bytes_sent),
    FIELD(rtudp_udt_wrk, bytes_recv),
    FIELD(rtudp_udt_wrk, rtt_ms),
    FIELD(rtudp_udt_wrk, period_us),
    FIELD(rtudp_udt_wrk, cwnd),
    FIELD(rtudp_udt_wrk, bandwidth_mbps),
    FIELD(rtudp_udt_wrk, recv_rate_mbps),
    FIELD(rtudp_udt_wrk, flow_window),
    FIELD(rtudp_udt_wrk, snd_avail_pkts),
    FIELD(rtudp_udt_wrk, events),
};

static const struct field udt_sock_fields[] = {
    FIELD(rtudp_udt_sock, cli),
    FIELD(rtudp_udt_sock, pad0),
    FIELD(rtudp_udt_sock, wrk),
    FIELD(rtudp_udt_sock, pad1),
    FIELD(rtudp_udt_sock, bell),
};

#define STRUCT(S, fields) \
    { #S, sizeof(struct S), fields, sizeof(fields) / sizeof((fields)[0]) }

static const struct layout layouts[] = {
    STRUCT(rtudp_segment_header, segment_header_fields),
    STRUCT(rtudp_tx_record, tx_record_fields),
    STRUCT(rtudp_bcast_record, bcast_record_fields),
    STRUCT(rtudp_doorbell, doorbell_fields),
    STRUCT(rtudp_mpsc_ring, mpsc_ring_fields),
    STRUCT(rtudp_bcast_ring, bcast_ring_fields),
    STRUCT(rtudp_hist, hist_fields),
    STRUCT(rtudp_pool_block, pool_block_fields),
    STRUCT(rtudp_worker_slot, worker_slot_fields),
    STRUCT(rtudp_channel_slot, channel_slot_fields),
    STRUCT(rtudp_control, control_fields),
    STRUCT(rtudp_sockaddr, sockaddr_fields),
    STRUCT(rtudp_tx_journal, tx_journal_fields),
    STRUCT(rtudp_direct_tx, direct_tx_fields),
    STRUCT(rtudp_direct_rx, direct_rx_fields),
    STRUCT(rtudp_impair_cfg, impair_cfg_fields),
    STRUCT(rtudp_impair_shm, impair_shm_fields),
    STRUCT(rtudp_impair_counters, impair_counters_fields),
    STRUCT(rtudp_async_slot, async_slot_fields),
    STRUCT(rtudp_async_wait, async_wait_fields),
    STRUCT(rtudp_tap_line, tap_line_fields),
    STRUCT(rtudp_tap_counters, tap_counters_fields),
    STRUCT(rtudp_tx_late, tx_late_fields),
    STRUCT(rtudp_tap_meta, tap_meta_fields),
    STRUCT(rtudp_channel_block, channel_block_fields),
    STRUCT(rtudp_rx_meta, rx_meta_fields),
    STRUCT(rtudp_cmd, cmd_fields),
    STRUCT(rtudp_reply, reply_fields),
    STRUCT(rtudp_ready_set, ready_set_fields),
    STRUCT(rtudp_check, check_fields),
    STRUCT(rtudp_mpsc, mpsc_view_fields),
    STRUCT(rtudp_mpsc_route, mpsc_route_fields),
    STRUCT(rtudp_bcast, bcast_view_fields),
    STRUCT(rtudp_bcast_reader, bcast_reader_fields),
    STRUCT(rtudp_rtp_area, rtp_area_fields),
    STRUCT(rtudp_rtp_frame, rtp_frame_fields),
    STRUCT(rtudp_nf_config, nf_config_fields),
    STRUCT(rtudp_nf_tx, nf_tx_fields),
    STRUCT(rtudp_nf_rx, nf_rx_fields),
    STRUCT(rtudp_nf_image, nf_image_fields),
    STRUCT(rtudp_nf_image_meta, nf_image_meta_fields),
    STRUCT(rtudp_nf_area, nf_area_fields),
    STRUCT(rtudp_udt_req, udt_req_fields),
    STRUCT(rtudp_udt_config, udt_config_fields),
    STRUCT(rtudp_udt_slot, udt_slot_fields),
    STRUCT(rtudp_udt_counters, udt_counters_fields),
    STRUCT(rtudp_udt_area, udt_area_fields),
    STRUCT(rtudp_udt_cli, udt_cli_fields),
    STRUCT(rtudp_udt_wrk, udt_wrk_fields),
    STRUCT(rtudp_udt_sock, udt_sock_fields),
    STRUCT(rtudp_udt_conn_row, udt_conn_row_fields),
};

int main(void)
{
    /* Names are C identifiers, so they need no JSON escaping. */
    printf("{");
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        const struct layout *l = &layouts[i];
        printf("%s\n  \"%s\": {\"sizeof\": %zu, \"fields\": {", i ? "," : "", l->name, l->size);
        for (size_t j = 0; j < l->nfields; j++)
            printf("%s\"%s\": %zu", j ? ", " : "", l->fields[j].name, l->fields[j].offset);
        printf("}}");
    }
    printf("\n}\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
