"""The pool's tunables and idle strategies, as C describes them (csrc/worker/tunables.h).

A tunable is a setting of every worker of a pool (``Pool(spin_budget=...)``,
``rtudp pool start --spin-budget ...``): its default, range and unit come from the C
table the worker parses its options with, so Python restates none of them.  An idle
strategy (``Pool(idle="park")``) is a named set of tunables; a tunable given by name
overrides the strategy's value.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..shmring._native import ffi, lib
from ..shmring.errors import BadSegmentError


@dataclass(frozen=True)
class Tunable:
    """One tunable as C describes it; values in Python's terms (``scale`` converts)."""

    name: str
    #: "bool", "us", "share of a CPU", ... ("" a plain number)
    unit: str
    help: str
    #: the worker's integer default, least and most
    worker_default: int
    worker_min: int
    worker_max: int
    #: Python shows a worker value divided by this (1000: permille as a share 0..1)
    scale: int

    @property
    def option(self) -> str:
        """The command-line option: ``--spin-budget``."""
        return "--" + self.name.replace("_", "-")

    def to_python(self, worker_value: int) -> Any:
        """A worker value in Python's terms: a bool, a float for a scaled one, an int."""
        if self.unit == "bool":
            return bool(worker_value)
        return worker_value / self.scale if self.scale > 1 else worker_value

    @property
    def default(self) -> Any:
        """The default, in Python's terms."""
        return self.to_python(self.worker_default)

    def range_text(self) -> str:
        """``0..1 (share of a CPU)``, ``True/False``."""
        if self.unit == "bool":
            return "True/False"
        unit = f" ({self.unit})" if self.unit else ""
        lo, hi = self.to_python(self.worker_min), self.to_python(self.worker_max)
        return f"{lo:g}..{hi:g}{unit}"

    def check(self, value: Any) -> Any:
        """``value`` checked and in Python's terms; TypeError / ValueError naming it."""
        if self.unit == "bool":
            if not isinstance(value, bool):
                raise TypeError(f"{self.name} must be True or False, got {value!r}")
            return value
        number = (int, float) if self.scale > 1 else (int,)
        if isinstance(value, bool) or not isinstance(value, number):
            kind = "a number" if self.scale > 1 else "an integer"
            raise TypeError(f"{self.name} must be {kind} ({self.help.split(':')[0]}), "
                            f"got {value!r}")
        if not self.worker_min <= value * self.scale <= self.worker_max:
            raise ValueError(f"{self.name}={value!r} is out of range {self.range_text()}")
        return float(value) if self.scale > 1 else int(value)

    def to_worker(self, value: Any) -> int:
        """A checked Python value as the worker's integer."""
        return int(round(value * self.scale)) if self.scale > 1 else int(value)


@dataclass(frozen=True)
class IdleStrategy:
    """A named set of tunables (``values``: only those it sets; the rest keep their
    defaults)."""

    name: str
    help: str
    values: Mapping[str, Any]


def _text(p: Any) -> str:
    return "" if p == ffi.NULL else ffi.string(p).decode()


def _load() -> tuple[dict[str, Tunable], dict[str, IdleStrategy]]:
    n = ffi.new("uint32_t *")
    table = lib.rtudp_tunable_table(n)
    tunables: dict[str, Tunable] = {}
    for i in range(n[0]):
        d = table[i]
        t = Tunable(name=_text(d.name), unit=_text(d.unit), help=_text(d.help),
                    worker_default=int(d.default_value),
                    worker_min=int(d.min), worker_max=int(d.max), scale=int(d.scale))
        tunables[t.name] = t
    order = list(tunables.values())
    table_s = lib.rtudp_idle_strategy_table(n)
    strategies: dict[str, IdleStrategy] = {}
    for i in range(n[0]):
        d = table_s[i]
        values = {t.name: t.to_python(int(d.values[k])) for k, t in enumerate(order)
                  if int(d.values[k]) != lib.RTUDP_TUNE_KEEP}
        strategies[_text(d.name)] = IdleStrategy(_text(d.name), _text(d.help), values)
    return tunables, strategies


#: every tunable by name, in the C table's order
TUNABLES, IDLE_STRATEGIES = _load()
#: the strategy a pool has unless told otherwise (the C table's first)
DEFAULT_IDLE: str = next(iter(IDLE_STRATEGIES))


def resolve(idle: str | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every tunable's value for idle strategy ``idle`` (None: the default), with the
    ones ``given`` (not None) in its place; each checked, errors naming the value."""
    name = DEFAULT_IDLE if idle is None else idle
    if not isinstance(name, str) or name not in IDLE_STRATEGIES:
        raise ValueError(f"idle={idle!r} is not an idle strategy: pick one of "
                         f"{', '.join(map(repr, IDLE_STRATEGIES))}")
    unknown = set(given) - set(TUNABLES)
    if unknown:
        raise TypeError(f"no tunable named {', '.join(sorted(unknown))}: the tunables are "
                        f"{', '.join(TUNABLES)}")
    values = {t.name: t.default for t in TUNABLES.values()}
    values.update(IDLE_STRATEGIES[name].values)
    for key, value in given.items():
        if value is not None:
            values[key] = TUNABLES[key].check(value)
    return values


def worker_args(idle: str, values: Mapping[str, Any]) -> list[str]:
    """The worker's options for idle strategy ``idle`` and ``values`` (from
    :func:`resolve`): every tunable given, so the worker's defaults never matter; the
    worker publishes both in its slot."""
    out: list[str] = ["--idle", idle]
    for t in TUNABLES.values():
        out += [t.option, str(t.to_worker(values[t.name]))]
    return out


#: the keys of a ControlSegment.workers() dict that hold the slot's settings as integers
_SLOT_KEYS = ("idle_strategy", "tunable_values")


def with_settings(worker: Mapping[str, Any]) -> dict[str, Any]:
    """A worker dict of ``ControlSegment.workers()`` with the settings its worker
    published named through the tables: ``idle`` (the idle strategy's name) and
    ``tunables`` ({name: value in Python's terms}) in place of the slot's integers.
    Both are None while the worker is not running (it publishes them as it starts).
    A strategy index or a value the tables do not allow raises BadSegmentError."""
    out = {k: v for k, v in worker.items() if k not in _SLOT_KEYS}
    running = worker["state"] == "running"
    out["idle"] = _strategy_name(worker) if running else None
    out["tunables"] = _tunable_values(worker) if running else None
    return out


def _strategy_name(worker: Mapping[str, Any]) -> str:
    names = list(IDLE_STRATEGIES)
    index = worker["idle_strategy"]
    if not 0 <= index < len(names):
        raise BadSegmentError(f"worker {worker['index']} names idle strategy {index}, "
                              f"not one of the {len(names)} the table has")
    return names[index]


def _tunable_values(worker: Mapping[str, Any]) -> dict[str, Any]:
    values = worker["tunable_values"]
    if len(values) != len(TUNABLES):
        raise BadSegmentError(f"worker {worker['index']} holds {len(values)} tunables, "
                              f"the table has {len(TUNABLES)}")
    out: dict[str, Any] = {}
    for t, v in zip(TUNABLES.values(), values):
        if not t.worker_min <= v <= t.worker_max:
            raise BadSegmentError(f"worker {worker['index']} runs with {t.name} {v}, outside "
                                  f"{t.worker_min}..{t.worker_max}")
        out[t.name] = t.to_python(v)
    return out


def settings_text(idle: str, values: Mapping[str, Any]) -> str:
    """``idle=park rt_priority=50 spin_budget=0.0 ...``: a worker's settings on one line,
    as Pool's keywords take them."""
    return " ".join([f"idle={idle}"] + [f"{t.name}={values[t.name]!r}"
                                        for t in TUNABLES.values()])


def settings_lines(workers: Sequence[Mapping[str, Any]]) -> list[str]:
    """The settings of the running workers among ``workers`` (dicts with ``idle`` and
    ``tunables``, as :func:`with_settings` makes them): one line when they agree, as
    they do unless a worker was started otherwise, else one line per set of workers
    (``workers 0, 2: idle=...``); none running: none."""
    groups: dict[str, list[int]] = {}
    for w in workers:
        if w["idle"] is not None and w["tunables"] is not None:
            groups.setdefault(settings_text(w["idle"], w["tunables"]), []).append(w["index"])
    if len(groups) == 1:
        return list(groups)
    return [f"workers {', '.join(map(str, ix))}: {text}" for text, ix in groups.items()]


def describe(width: int = 88, indent: str = "") -> str:
    """The idle strategies and the tunables as text, for docstrings and ``--help``."""
    def para(head: str, body: str) -> str:
        return textwrap.fill(f"{head}: {body}", width, initial_indent=indent,
                             subsequent_indent=indent + "    ")

    lines = [f"{indent}idle strategies (idle=..., default {DEFAULT_IDLE!r}):"]
    for s in IDLE_STRATEGIES.values():
        sets = ", ".join(f"{k}={v!r}" for k, v in s.values.items()) or "the defaults"
        lines.append(para(f"  {s.name!r}", f"{s.help} ({sets})"))
    lines.append(f"{indent}tunables (a value given overrides the strategy's):")
    for t in TUNABLES.values():
        lines.append(para(f"  {t.name}", f"{t.help}; {t.range_text()}, default {t.default!r}"))
    return "\n".join(lines)
