"""librtpsynth's ``rtpsynth`` package on rtudp: ``import rtpsynth`` becomes
``import rtudp.compat.rtpsynth``.

As in librtpsynth, each name lives in a submodule of its own name, and
``from rtudp.compat.rtpsynth import RtpSynth`` gives the submodule (its class is
``RtpSynth.RtpSynth``).  Every name is :mod:`rtudp.rtp`'s object, re-exported.
"""
