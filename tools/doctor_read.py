"""Reading /proc, /sys and /boot for ``rtudp doctor``: a file that is missing or not
ours to read is a normal outcome (the reason comes back), never an exception.

Every path is taken under ``root`` (``/`` on a real machine), so tests can hand the
checks a fake tree.
"""
from __future__ import annotations

import gzip
import os
import re
import zlib

__all__ = ["under", "read_text", "read_int", "list_dir", "kernel_release", "kernel_version",
           "kernel_config", "cmdline_params", "cpu_list", "format_cpus", "bracketed",
           "is_virtual"]


def under(root: str, path: str) -> str:
    """``path`` (absolute) inside ``root``."""
    return os.path.join(root, path.lstrip("/"))


def _why(path: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{path} not found"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied"
    return f"{path}: {exc.strerror or exc}"


def read_text(root: str, path: str) -> tuple[str | None, str]:
    """(stripped contents, "") or (None, why it could not be read)."""
    try:
        with open(under(root, path), errors="replace") as f:
            return f.read().strip(), ""
    except OSError as exc:
        return None, _why(path, exc)


def read_int(root: str, path: str) -> tuple[int | None, str]:
    """An integer file: (value, "") or (None, why not)."""
    text, why = read_text(root, path)
    if text is None:
        return None, why
    try:
        return int(text.split()[0]), ""
    except (ValueError, IndexError):
        return None, f"{path}: not a number ({text[:40]!r})"


def list_dir(root: str, path: str) -> tuple[list[str] | None, str]:
    """Sorted entries of a folder: (names, "") or (None, why not)."""
    try:
        return sorted(os.listdir(under(root, path))), ""
    except OSError as exc:
        return None, _why(path, exc)


def kernel_release(root: str) -> str | None:
    """The kernel release (``6.18.4-foo``), from /proc/sys/kernel/osrelease."""
    return read_text(root, "/proc/sys/kernel/osrelease")[0]


def kernel_version(release: str | None) -> tuple[int, int] | None:
    """(major, minor) of a kernel release string."""
    m = re.match(r"(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def kernel_config(root: str) -> tuple[dict[str, str], str]:
    """The kernel's build configuration (``CONFIG_HZ`` -> ``"250"``) and where it came
    from (/boot/config-<release>, else /proc/config.gz); ({}, why not) if neither."""
    release = kernel_release(root)
    whys = []
    if release:
        text, why = read_text(root, f"/boot/config-{release}")
        if text is not None:
            return _parse_config(text), f"/boot/config-{release}"
        whys.append(why)
    try:
        with gzip.open(under(root, "/proc/config.gz"), "rt", errors="replace") as f:
            return _parse_config(f.read()), "/proc/config.gz"
    except OSError as exc:
        whys.append(_why("/proc/config.gz", exc))
    except (EOFError, zlib.error) as exc:
        whys.append(f"/proc/config.gz: {exc}")
    return {}, "; ".join(whys)


def _parse_config(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("CONFIG_"):
            out[key] = value.strip().strip('"')
    return out


def cmdline_params(root: str) -> tuple[dict[str, str] | None, str]:
    """The kernel command line as {name: value} (value "" for a bare flag)."""
    text, why = read_text(root, "/proc/cmdline")
    if text is None:
        return None, why
    params = {}
    for word in text.split():
        if word == "--":                  # what follows is for init
            break
        name, _, value = word.partition("=")
        params[name] = value
    return params, ""


def cpu_list(text: str | None) -> list[int]:
    """``"0-3,6"`` -> [0, 1, 2, 3, 6]; flags such as ``domain,managed_irq,`` are skipped."""
    cpus: list[int] = []
    for part in (text or "").split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if lo.isdigit() and (not sep or hi.isdigit()):
            cpus.extend(range(int(lo), int(hi if sep else lo) + 1))
    return sorted(set(cpus))


def format_cpus(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> ``"0-2,5"``."""
    parts: list[str] = []
    for c in sorted(set(cpus)):
        if parts and c == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{c}"
        else:
            parts.append(str(c))
    return ",".join(parts)


def bracketed(text: str | None) -> str | None:
    """The selected word of a sysfs choice list: ``"always [never] deny"`` -> ``"never"``."""
    m = re.search(r"\[([^\]]+)\]", text or "")
    return m.group(1) if m else (text.strip() if text else None)


def is_virtual(root: str) -> bool | None:
    """True in a virtual machine (the haltpoll cpuidle driver, /sys/hypervisor/type, or
    the CPU's ``hypervisor`` flag: the workers' rule, csrc/worker/idlepoller.c), False on
    bare metal, None if /proc/cpuinfo is unreadable."""
    driver = read_text(root, "/sys/devices/system/cpu/cpuidle/current_driver")[0]
    if driver == "haltpoll" or read_text(root, "/sys/hypervisor/type")[0]:
        return True
    text = read_text(root, "/proc/cpuinfo")[0]
    if text is None:
        return None
    return any(line.startswith("flags") and " hypervisor" in line for line in text.splitlines())
