"""rtudp.tools: the ``rtudp`` command line, benchmarks, and (later) the rtstat monitor."""
