"""Names a seed module had that rtudp does not re-export, each with what replaces it."""
from __future__ import annotations

from typing import Callable


def absent_names(module: str, replacements: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``module``: a name in ``replacements`` raises an
    ImportError saying what to use instead (so ``from module import Name`` says it),
    any other unknown name the usual AttributeError."""

    def __getattr__(name: str) -> object:
        if name in replacements:
            raise ImportError(f"{module}.{name} has no rtudp equivalent: {replacements[name]}",
                              name=module)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
