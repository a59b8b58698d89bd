"""rtudp.tools: the ``rtudp`` command line and ``rtstat``; the benchmarks are ``bench/``."""
