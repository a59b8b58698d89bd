"""The pacer's mechanisms that can be switched off, as C describes them
(csrc/worker/mechanisms.h).

Every mechanism is on by default.  ``Pool(pacer_off=["bridge"])`` starts the pool's
workers with it off, so that ``rtudp bench mechanisms`` can measure what each one
buys against the same pool with it on; it is a measuring aid, not a tuning knob.
A pool given no ``pacer_off`` takes the names in ``$RTUDP_PACER_OFF`` (comma
separated), so that any program (another benchmark, the demo) can be measured so.
"""
from __future__ import annotations

import os
from typing import Iterable

from ..shmring._native import ffi, lib


def _load() -> dict[str, str]:
    n = ffi.new("uint32_t *")
    table = lib.rtudp_mechanism_table(n)
    return {ffi.string(table[i].name).decode(): ffi.string(table[i].help).decode()
            for i in range(n[0])}


#: every mechanism's name and what it does, in the C table's order
MECHANISMS: dict[str, str] = _load()


def check_off(names: Iterable[str] | None) -> tuple[str, ...]:
    """``names`` checked: a tuple of mechanism names, each once, in the table's order;
    TypeError / ValueError naming a bad one."""
    if names is None:
        return ()
    if isinstance(names, (str, bytes)):
        raise TypeError(f"pacer_off must be a sequence of mechanism names, got {names!r}")
    given = list(names)
    for name in given:
        if name not in MECHANISMS:
            raise ValueError(f"pacer_off: no mechanism named {name!r}: the mechanisms are "
                             f"{', '.join(MECHANISMS)}")
    return tuple(m for m in MECHANISMS if m in given)


#: the environment variable a pool given no ``pacer_off`` reads
ENV = "RTUDP_PACER_OFF"


def off_from_env() -> tuple[str, ...]:
    """The mechanisms ``$RTUDP_PACER_OFF`` names, checked as :func:`check_off` does
    (the error names the variable and its value)."""
    value = os.environ.get(ENV, "")
    try:
        return check_off([n.strip() for n in value.split(",") if n.strip()])
    except ValueError as exc:
        raise ValueError(f"${ENV}={value!r}: {exc}") from None


def worker_args(off: Iterable[str]) -> list[str]:
    """The worker's option for the mechanisms switched off (none: no option)."""
    names = list(off)
    return ["--off", ",".join(names)] if names else []
