"""Channel kinds as the supervisor asks for them: :func:`kind_spec` by name.

The kinds are registered once, in :mod:`rtudp.shmring.kinds` (each with its layout
from C, its pool side, e.g. :mod:`rtudp.workers.rtp_kind`, and its handle); a
:class:`~rtudp.shmring.kinds.Kind` has what the supervisor needs to open a channel:
``code``, ``check(options)``, ``area_bytes(options)``, ``configure(area, size,
options, direction)``.
"""
from __future__ import annotations

from typing import Any

from rtudp.shmring.kinds import KINDS, Kind, get, kind_name

Options = dict[str, Any]
#: what :func:`kind_spec` returns
KindSpec = Kind


def kind_spec(kind: object) -> Kind:
    """The kind named ``kind`` (ValueError naming it and the known ones)."""
    return get(kind)


__all__ = ["KINDS", "KindSpec", "Options", "kind_name", "kind_spec"]
