"""The package's version: the one place it is written (pyproject.toml reads it from here,
``rtudp version`` and ``rtudp.__version__`` show it; CHANGELOG.md names each one)."""

__version__ = "0.1.0"
