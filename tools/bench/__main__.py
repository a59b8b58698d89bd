"""``python -m rtudp.tools.bench BENCHMARK ...``: the same as ``rtudp bench ...``."""
import sys

from . import main

sys.exit(main())
