"""librtpsynth's generator and jitter buffer on rtudp: RtpSynth makes a stream of 20 ms
PCMU packets; the network loses one and swaps two; RtpJBuf puts them back in order
and reports the lost one as an erasure.

    python examples/rtpsynth_synth_jbuf.py
"""
from rtudp.compat.rtpsynth.RtpJBuf import RTPFrameType, RtpJBuf
from rtudp.compat.rtpsynth.RtpSynth import RtpSynth

synth = RtpSynth(8000, 20)                 # clock rate (Hz), packet time (ms)
packets = [synth.next_pkt(160, 0) for _ in range(10)]  # 160 bytes of payload type 0 (PCMU)
sent = packets[:3] + [packets[4], packets[3]] + packets[6:]  # #5 lost, #3 and #4 swapped

jb = RtpJBuf(4)                            # wait for at most 4 packets behind a gap
frames = []
for pkt in sent:
    frames += jb.udp_in(pkt)
frames += jb.flush()
for frame in frames:
    if frame.content.type == RTPFrameType.RTP:
        print(f"RTP     seq {frame.content.frame.rtp.lseq}, {len(frame.rtp_data)} bytes")
    else:
        ers = frame.content
        print(f"ERASURE seq {ers.lseq_start}..{ers.lseq_end}, ts_diff {ers.ts_diff}")
