"""``rtudp pool start|stop|status|list|clean``: a standalone pool that many programs share.

* ``start`` runs a supervisor (:class:`rtudp.workers.Pool`) in a new session, detached
  from the terminal, and returns once the pool is RUNNING (or fails with the reason).
  ``--foreground`` runs it in this process until SIGINT/SIGTERM, then stops it cleanly.
* ``stop`` sends SIGTERM to the supervisor named in the pool's control segment and
  waits until the supervisor and every segment of the pool are gone.
* ``status`` / ``list`` read the control segments; ``clean`` removes what dead
  supervisors left in /dev/shm and never touches a live pool.

A standalone pool starts with no channels: programs open them through its command
ring (``rtudp.open_channel(name, pool=...)`` or ``rtudp.PoolClient``); a channel
lives until the program that opened it closes it or dies.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from typing import Any

from ..workers.tunables import DEFAULT_IDLE, IDLE_STRATEGIES, TUNABLES, Tunable
from ..workers.packing import DEFAULT_PLACEMENT, PLACEMENTS
from .cli_args import ranged
from .procinfo import fmt_age, kernel_policy, policy_text

EXIT_ERROR = 1
STOP_TIMEOUT_S = 10.0
START_TIMEOUT_S = 30.0

_DIRECTIONS = {0: "send", 1: "receive", 2: "duplex"}

STATUS_HELP = (
    "show the pool's supervisor (pid, uptime), each worker (pid, CPU, scheduling policy "
    "and priority as the kernel reports them, restarts, heartbeat age) and each channel "
    "(programs open channels on a standalone pool with rtudp.open_channel(name, pool=...) "
    "or rtudp.PoolClient).")


# ------------------------------------------------------------ argument types


def parse_cpus(text: str) -> list[int]:
    """``"0,1"``, ``"0-1"``, ``"0-3,6"`` -> CPU numbers, each one this process may use."""
    allowed = sorted(os.sched_getaffinity(0))
    cpus: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
                if lo > hi:
                    raise argparse.ArgumentTypeError(
                        f"invalid CPU range {part!r} in {text!r}: {lo} > {hi}")
                cpus.extend(range(lo, hi + 1))
            else:
                cpus.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid CPU list {text!r}: use numbers and ranges such as 0,1 or 0-1") from None
    for c in cpus:
        if c not in allowed:
            raise argparse.ArgumentTypeError(
                f"CPU {c} (in {text!r}) is not available: this machine has "
                f"{os.cpu_count()} CPUs and this process may run on CPUs "
                f"{','.join(map(str, allowed))}")
    if len(set(cpus)) != len(cpus):
        raise argparse.ArgumentTypeError(f"CPU list {text!r} names a CPU twice")
    return cpus


def tunable_parser(t: Tunable) -> Any:
    """The argparse ``type`` of tunable ``t``: its value checked against its range."""
    def parse(text: str) -> Any:
        try:
            return t.check((float if t.scale > 1 else int)(text))
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(f"{t.option} {text!r}: {e}") from None
    parse.__name__ = t.name
    return parse


def parse_spin_budget(text: str) -> float:
    """``0.1`` -> 0.1: the share of a CPU a worker may spin before deadlines."""
    return float(tunable_parser(TUNABLES["spin_budget"])(text))


def add_tunable_arguments(q: argparse.ArgumentParser) -> None:
    """``--idle`` and one option per tunable, described by csrc/worker/tunables.h; each
    left None takes the idle strategy's value."""
    q.add_argument("--idle", choices=list(IDLE_STRATEGIES), default=None,
                   help=f"idle strategy (default {DEFAULT_IDLE}): " + "; ".join(
                       f"{s.name}: {s.help}" for s in IDLE_STRATEGIES.values()))
    for t in TUNABLES.values():
        text = f"{t.help} ({t.range_text()}; default: the idle strategy's, {t.default!r} " \
               f"for {DEFAULT_IDLE})"
        if t.unit == "bool":
            q.add_argument(t.option, dest=t.name, action=argparse.BooleanOptionalAction,
                           default=None, help=text)
        else:
            q.add_argument(t.option, dest=t.name, type=tunable_parser(t), default=None,
                           metavar=t.name.split("_")[-1].upper(), help=text)


def tunable_argv(args: argparse.Namespace) -> list[str]:
    """The options of ``add_tunable_arguments`` that ``args`` gives, as a command line."""
    out = ["--idle", args.idle] if args.idle else []
    for t in TUNABLES.values():
        v = getattr(args, t.name)
        if v is None:
            continue
        if t.unit != "bool":
            out += [t.option, repr(v)]
        else:
            out.append(t.option if v else "--no-" + t.option[2:])
    return out


def parse_horizon(text: str) -> float:
    """``10`` -> 10.0: how far ahead of now (s) a send may be due on the pool."""
    from rtudp.shmring.deadline import MAX_HORIZON_NS
    return float(ranged(float, "deadline horizon", 0, MAX_HORIZON_NS / 1e9, above_lo=True,
                        hint="seconds ahead of time.monotonic_ns()")(text))


def parse_pool_name(text: str) -> str:
    from rtudp.shmring.control import pool_name

    try:
        return pool_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_group(text: str) -> str | int:
    """``--group``: a group name, or a gid when all digits."""
    return int(text) if text.isdigit() else text


def default_pool() -> str:
    return os.environ.get("RTUDP_POOL") or "default"


# ------------------------------------------------------------ helpers


def _err(cmd: str, msg: str) -> int:
    print(f"rtudp pool {cmd}: error: {msg}", file=sys.stderr)
    return EXIT_ERROR


def _gone(pid: int) -> bool:
    from rtudp.workers.registry import process_alive

    return not process_alive(pid)


def _is_standalone(pid: int) -> bool:
    """True if ``pid`` is an ``rtudp pool start`` supervisor (not a program's embedded pool)."""
    import psutil

    try:
        argv = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "pool" in argv and "start" in argv


def _cmdline(pid: int) -> str:
    import psutil

    try:
        return " ".join(psutil.Process(pid).cmdline()) or "?"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"


def _open_control(name: str) -> Any:
    """The pool's control segment, or None if there is no valid one."""
    from rtudp.shmring.control import ControlSegment
    from rtudp.shmring.errors import BadSegmentError, PoolNotRunningError

    try:
        return ControlSegment.open(name)
    except (PoolNotRunningError, BadSegmentError, PermissionError):
        return None


# ------------------------------------------------------------ start


def _log_path(name: str) -> str:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(base, f"rtudp-pool-{name}.log")


def _run_foreground(args: argparse.Namespace) -> int:
    """Run the supervisor in this process until SIGINT/SIGTERM."""
    from rtudp.shmring.errors import RtUdpError
    from rtudp.workers import Pool, PrivilegeWarning

    ready_fd: int | None = args.ready_fd
    stop = threading.Event()
    got: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        got.append(signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if ready_fd is not None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PrivilegeWarning)
        try:
            pool = Pool(args.name, args.cpus, group=args.group, idle=args.idle,
                        horizon_s=args.horizon_s, placement=args.placement,
                        **{t: getattr(args, t) for t in TUNABLES}).start()
        except (RtUdpError, OSError, ValueError, TypeError) as exc:
            msg = str(exc)
            if type(exc).__name__ == "PoolRunningError":
                msg += f"; stop it first with `rtudp pool stop --name {args.name}`"
            return _err("start", msg)
    for w in caught:
        print(f"rtudp pool start: warning: {w.message}", file=sys.stderr, flush=True)
    workers = pool.workers()
    pol = ", ".join(f"CPU {w['cpu']}: {policy_text(kernel_policy(w['pid']))}" for w in workers)
    banner = (f"pool {pool.name!r} running: supervisor pid {os.getpid()}, "
              f"{len(workers)} workers ({pol})")
    log_file = None
    log_size = 0
    if ready_fd is not None:  # daemon: detach stdio, then tell the starter we are up
        log_file = _log_path(pool.name)
        try:
            fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        except OSError:
            log_file, fd = None, os.open(os.devnull, os.O_WRONLY)
        sys.stdout.flush()
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(devnull)
        os.close(fd)
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {banner}", flush=True)
        log_size = os.fstat(1).st_size
        try:
            os.write(ready_fd, f"ready {os.getpid()} {log_file or ''}\n".encode())
        except OSError:
            pass
        os.close(ready_fd)
    else:
        print(f"{banner}; Ctrl-C or `rtudp pool stop --name {pool.name}` stops it", flush=True)
    try:
        while not stop.wait(0.25):
            if not pool.running:
                break
    finally:
        pool.stop()
    how = signal.Signals(got[0]).name if got else "stop"
    if log_file is not None and os.fstat(1).st_size == log_size:
        try:  # nothing was logged beyond the banner: leave nothing behind
            os.unlink(log_file)
        except OSError:
            pass
    else:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} pool {pool.name!r} stopped ({how})",
              flush=True)
    return 0


def _start_daemon(args: argparse.Namespace) -> int:
    """Start a foreground supervisor in a new session and wait until it runs."""
    from rtudp.workers import pool_state

    name = args.name
    state = pool_state(name)
    if state == "running":
        ctl = _open_control(name)
        pid = ctl.supervisor_pid if ctl is not None else "?"
        if ctl is not None:
            ctl.close()
        return _err("start", f"pool {name!r} is already running (supervisor pid {pid}); "
                             f"stop it first with `rtudp pool stop --name {name}`")
    argv = [sys.executable, "-m", "rtudp.tools.cli", "pool", "start", "--foreground",
            "--name", name, *tunable_argv(args), "--horizon-s", repr(args.horizon_s),
            "--placement", args.placement]
    if args.cpus is not None:
        argv += ["--cpus", ",".join(map(str, args.cpus))]
    if args.group is not None:
        argv += ["--group", str(args.group)]
    r, w = os.pipe()
    argv += ["--ready-fd", str(w)]
    out = tempfile.TemporaryFile(prefix="rtudp-pool-start-")
    try:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    pass_fds=(w,), close_fds=True, start_new_session=True,
                                    cwd="/")
        finally:
            os.close(w)
        line = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                break
            chunk = os.read(r, 256)
            if not chunk:
                break  # the child closed the pipe: it exited
            line += chunk
        out.seek(0)
        text = out.read().decode("utf-8", "replace").strip()
        if not line.startswith(b"ready "):
            if proc.poll() is None:
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    return _err("start", f"pool {name!r} did not start within "
                                         f"{START_TIMEOUT_S:.0f} s (killed pid {proc.pid})"
                                         + (f":\n{text}" if text else ""))
            out.seek(0)
            text = out.read().decode("utf-8", "replace").strip()
            if text:
                print(text, file=sys.stderr)
            else:
                _err("start", f"the supervisor exited with code {proc.returncode}")
            return EXIT_ERROR
        if text:  # warnings (e.g. SCHED_FIFO not permitted)
            print(text, file=sys.stderr)
        parts = line.decode().split()
        log = parts[2] if len(parts) > 2 else None
        ctl = _open_control(name)
        pol = ""
        if ctl is not None:
            try:
                pol = ", ".join(f"CPU {wk['cpu']}: {policy_text(kernel_policy(wk['pid']))}"
                                for wk in ctl.workers())
            finally:
                ctl.close()
        print(f"pool {name!r} started: supervisor pid {proc.pid}"
              + (f", workers {pol}" if pol else ""))
        if log:
            print(f"log: {log} (removed at a clean stop if nothing was logged)")
        print(f"stop it with: rtudp pool stop --name {name}")
        return 0
    finally:
        os.close(r)
        out.close()


def cmd_start(args: argparse.Namespace) -> int:
    if args.foreground or args.ready_fd is not None:
        return _run_foreground(args)
    return _start_daemon(args)


# ------------------------------------------------------------ stop


def cmd_stop(args: argparse.Namespace) -> int:
    from rtudp.workers import pool_state, segment_files

    name = args.name
    state = pool_state(name)
    if state == "absent":
        return _err("stop", f"pool {name!r} is not running")
    if state == "stale":
        return _err("stop", f"pool {name!r} is not running, but its dead supervisor left "
                            f"segments: remove them with `rtudp pool clean --name {name}`")
    ctl = _open_control(name)
    if ctl is None:
        return _err("stop", f"pool {name!r} is starting or stopping (its supervisor holds the "
                            f"pool but has no control segment): try again")
    try:
        pid = ctl.supervisor_pid
    finally:
        ctl.close()
    if pid == os.getpid() or pid <= 0:
        return _err("stop", f"pool {name!r}: bad supervisor pid {pid} in its control segment")
    if not _is_standalone(pid) and not args.force:
        return _err("stop", f"pool {name!r} is embedded in process {pid} ({_cmdline(pid)}); "
                            f"stopping it would terminate that program: use --force to send "
                            f"it SIGTERM anyway")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        return _err("stop", f"not permitted to signal supervisor pid {pid} of pool {name!r}")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not segment_files(name) and _gone(pid):
            print(f"pool {name!r} stopped (supervisor pid {pid})")
            return 0
        time.sleep(0.02)
    left = segment_files(name)
    return _err("stop", f"pool {name!r} did not stop within {args.timeout:g} s (supervisor pid "
                        f"{pid} {'gone' if _gone(pid) else 'still alive'}; segments left: "
                        f"{', '.join(left) or 'none'}): `kill -KILL {pid}` and then "
                        f"`rtudp pool clean --name {name}`")


# ------------------------------------------------------------ status


def cmd_status(args: argparse.Namespace) -> int:
    from rtudp.shmring.errors import BadSegmentError
    from rtudp.workers import pool_state, segment_files

    name = args.name
    state = pool_state(name)
    if state == "absent":
        return _err("status", f"pool {name!r} is not running")
    ctl = _open_control(name)
    if ctl is None:
        if state == "stale":
            return _err("status", f"pool {name!r} is stale (segments {segment_files(name)} but "
                                  f"no valid control segment): `rtudp pool clean --name {name}`")
        return _err("status", f"pool {name!r} is starting or stopping: try again")
    try:
        status = _status(ctl, name, state == "stale")
    except BadSegmentError as exc:  # a worker slot the tables do not allow
        return _err("status", f"pool {name!r}: {exc}")
    finally:
        ctl.close()
    if args.json:
        print(json.dumps(status))
    else:
        _print_status(status)
    return EXIT_ERROR if state == "stale" else 0


def _status(ctl: Any, name: str, stale: bool) -> dict[str, Any]:
    """What ``status`` shows of the pool ``ctl`` maps, as JSON-ready data."""
    from rtudp.workers.tunables import with_settings

    now = time.monotonic_ns()
    pid = ctl.supervisor_pid
    if stale:
        return {"name": name, "state": "stale", "supervisor": {"pid": pid}}
    return {
        "name": name, "state": "running",
        "supervisor": {"pid": pid, "uptime_s": (now - int(ctl.c.pool.started_ns)) / 1e9,
                       "heartbeat_age_s": ctl.heartbeat_age_ns() / 1e9,
                       "embedded_in": None if _is_standalone(pid) else _cmdline(pid)},
        "horizon_s": ctl.horizon_ns / 1e9,
        "workers": [_worker_status(with_settings(w), now) for w in ctl.workers()],
        "channels": [_channel_status(name, ch) for ch in ctl.channel_names()],
    }


def _worker_status(w: dict[str, Any], now: int) -> dict[str, Any]:
    return {"index": w["index"], "pid": w["pid"], "cpu": w["cpu"], "state": w["state"],
            "policy": policy_text(kernel_policy(w["pid"])), "restarts": w["restarts"],
            "heartbeat_age_s": (now - w["heartbeat_ns"]) / 1e9 if w["heartbeat_ns"] else None,
            "channels": w["channels"], "idle": w["idle"], "tunables": w["tunables"]}


def _channel_status(pool: str, ch: str) -> dict[str, Any]:
    from rtudp.shmring.channel import ChannelSegment
    from rtudp.shmring.control import channel_segment_name

    try:
        seg = ChannelSegment.open(channel_segment_name(pool, ch))
    except Exception as exc:  # closed meanwhile, or unreadable
        return {"name": ch, "error": str(exc)}
    try:
        cfg, cnt = seg.config(), seg.counters()
    finally:
        seg.close()
    return {"name": ch, "error": None, "worker": cfg["worker"],
            "direction": _DIRECTIONS.get(cfg["direction"], cfg["direction"]),
            "local": "%s:%s" % cfg["local"] if cfg["local"] else None,
            "remote": "%s:%s" % cfg["remote"] if cfg["remote"] else None,
            "tx_packets": cnt["tx_packets"], "rx_packets": cnt["rx_packets"],
            "rx_kernel_drops": cnt["rx_kernel_drops"]}


def _print_status(st: dict[str, Any]) -> None:
    from rtudp.workers.tunables import settings_lines

    name, sup = st["name"], st["supervisor"]
    if st["state"] == "stale":
        print(f"pool {name!r}: STALE (supervisor pid {sup['pid']} is dead); "
              f"remove it with `rtudp pool clean --name {name}`")
        return
    print(f"pool {name!r}: running")
    where = "standalone" if sup["embedded_in"] is None else "embedded in: " + sup["embedded_in"]
    print(f"  supervisor  pid {sup['pid']}, up {fmt_age(sup['uptime_s'] * 1e9)}, heartbeat "
          f"{fmt_age(sup['heartbeat_age_s'] * 1e9)} ago, {where}")
    print(f"  deadlines   at most {st['horizon_s']:g} s ahead of time.monotonic_ns() "
          f"(horizon_s)")
    workers = st["workers"]
    print(f"  workers ({len(workers)}):")
    print(f"    {'#':>2} {'pid':>8} {'cpu':>4}  {'state':<9}{'policy (kernel)':<17}"
          f"{'restarts':>8}  {'heartbeat':>10}  channels")
    for w in workers:
        age = w["heartbeat_age_s"]
        hb = "-" if age is None else fmt_age(age * 1e9) + " ago"
        print(f"    {w['index']:>2} {w['pid']:>8} {w['cpu']:>4}  {w['state']:<9}"
              f"{w['policy']:<17}{w['restarts']:>8}  {hb:>10}  {w['channels']}")
    for line in settings_lines(workers):
        print(f"  settings    {line}")
    if not st["channels"]:
        print(f"  channels: none (a program opens them: rtudp.open_channel(NAME, "
              f"pool={name!r}, ...) or rtudp.PoolClient({name!r}))")
        return
    print(f"  channels ({len(st['channels'])}):")
    for ch in st["channels"]:
        if ch["error"] is not None:
            print(f"    {ch['name']}: ({ch['error']})")
            continue
        print(f"    {ch['name']}: worker {ch['worker']}, {ch['direction']}, "
              f"{ch['local'] or '-'} -> {ch['remote'] or '-'}, "
              f"tx {ch['tx_packets']} rx {ch['rx_packets']} packets, "
              f"kernel drops {ch['rx_kernel_drops']}")


# ------------------------------------------------------------ list / clean


def _pools() -> list[tuple[str, str, Any]]:
    """(name, state, info) of every pool with a valid control segment; other
    ``rtudp.*`` segments (rings, ...) are not pools and are left out."""
    from rtudp.workers import list_pools

    out = []
    for name, state in list_pools().items():
        ctl = _open_control(name)
        if ctl is None:
            continue  # not a control segment (a ring?), or not ours to read
        try:
            info = {"pid": ctl.supervisor_pid, "workers": ctl.n_workers,
                    "channels": len(ctl.channel_names()),
                    "up_ns": time.monotonic_ns() - int(ctl.c.pool.started_ns)}
        except Exception:
            info = {"pid": 0, "workers": 0, "channels": 0, "up_ns": -1}
        finally:
            ctl.close()
        out.append((name, state, info))
    return out


def cmd_list(_args: argparse.Namespace) -> int:
    pools = _pools()
    if not pools:
        print("no rtudp pools on this machine")
        return 0
    print(f"{'POOL':<32} {'STATE':<6} {'SUPERVISOR':>10} {'UPTIME':>10} {'WORKERS':>7} "
          f"{'CHANNELS':>8}")
    for name, state, info in pools:
        live = "live" if state == "running" else "stale"
        up = fmt_age(info["up_ns"]) if state == "running" else "-"
        pid = f"{info['pid']}" + ("" if state == "running" else "†")
        print(f"{name:<32} {live:<6} {pid:>10} {up:>10} {info['workers']:>7} "
              f"{info['channels']:>8}")
    if any(s != "running" for _, s, _ in pools):
        print("† dead supervisor: `rtudp pool clean` removes its segments")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from rtudp.shmring.errors import PoolRunningError
    from rtudp.workers import clean_stale, pool_state, segment_files

    if args.name is not None:
        names = [args.name]
    else:
        names = [n for n, _s, _i in _pools()]
    removed_any = False
    refused = False
    for name in names:
        state = pool_state(name)
        if state == "absent":
            if args.name is not None:
                print(f"pool {name!r}: nothing to clean")
            continue
        if state == "running":
            ctl = _open_control(name)
            pid = ctl.supervisor_pid if ctl is not None else "?"
            if ctl is not None:
                ctl.close()
            if args.name is not None:
                refused = True
                _err("clean", f"pool {name!r} is live (supervisor pid {pid}): not touching it; "
                              f"`rtudp pool stop --name {name}` stops it")
            else:
                print(f"pool {name!r}: live (supervisor pid {pid}), left alone")
            continue
        ctl = _open_control(name)
        if ctl is None:
            files = segment_files(name)
            print(f"pool {name!r}: {', '.join(files)} is not a valid pool control segment "
                  f"(a ring or another program's segment?): left alone")
            continue
        pid = ctl.supervisor_pid
        ctl.close()
        try:
            removed = clean_stale(name)
        except PoolRunningError as exc:
            print(f"pool {name!r}: {exc}")
            continue
        if removed:
            removed_any = True
            print(f"pool {name!r} (dead supervisor pid {pid}): removed "
                  + ", ".join("/dev/shm/" + f for f in removed))
    if not removed_any and not refused and args.name is None:
        print("nothing to clean: no pool with a dead supervisor")
    return EXIT_ERROR if refused else 0


# ------------------------------------------------------------ parser


def add_parser(sub: Any) -> None:
    """Register ``rtudp pool ...`` on the top-level subparsers."""
    from rtudp.shmring.deadline import DEFAULT_HORIZON_NS

    p = sub.add_parser("pool", help="run and inspect a standalone worker pool",
                       description="Run and inspect a standalone worker pool (shared by many "
                                   "programs). Pool names: [A-Za-z0-9_-]; default "
                                   "$RTUDP_POOL or 'default'.")
    ps = p.add_subparsers(dest="pool_command", metavar="ACTION")
    ps.required = True

    def name_arg(q: argparse.ArgumentParser, default: bool = True) -> None:
        q.add_argument("--name", type=parse_pool_name,
                       default=default_pool() if default else None,
                       help="pool name (default: $RTUDP_POOL or 'default')" if default else
                       "only this pool (default: every pool whose supervisor is dead)")

    s = ps.add_parser("start", help="start a pool: detached (default) or in the foreground",
                      description="Start a standalone pool: one pinned worker per CPU. Returns "
                                  "once the pool runs; --foreground runs it here until "
                                  "SIGINT/SIGTERM.")
    name_arg(s)
    s.add_argument("--cpus", type=parse_cpus, default=None,
                   help="CPUs for the workers, e.g. 0,1 or 0-1 (default: every CPU allowed)")
    add_tunable_arguments(s)
    s.add_argument("--horizon-s", type=parse_horizon, default=DEFAULT_HORIZON_NS / 1e9,
                   metavar="S",
                   help="how far ahead of now (time.monotonic_ns()) a send may be due; a later "
                        "deadline is refused at the call (default "
                        f"{DEFAULT_HORIZON_NS / 1e9:g}, the fq qdisc's default horizon)")
    s.add_argument("--placement", choices=PLACEMENTS, default=DEFAULT_PLACEMENT,
                   help="where channels opened without cpu= go: packed (the first worker "
                        "with headroom; they spread and gather live as their load asks; the "
                        "default) or spread (the worker with the fewest, for good)")
    s.add_argument("--group", type=parse_group, default=None, metavar="GROUP",
                   help="a group (name or gid) whose members may use the pool: its "
                        "segments get that group and mode 0660 (default: 0600, only you)")
    s.add_argument("--foreground", action="store_true",
                   help="run in this process until SIGINT/SIGTERM, then stop cleanly")
    s.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    s.set_defaults(pool_func=cmd_start)

    t = ps.add_parser("stop", help="stop a running pool and wait until it is gone",
                      description="Send SIGTERM to the pool's supervisor and wait until it and "
                                  "every segment of the pool are gone.")
    name_arg(t)
    t.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S, metavar="S",
                   help=f"how long to wait (default {STOP_TIMEOUT_S:g} s)")
    t.add_argument("--force", action="store_true",
                   help="also stop a pool embedded in a program (that terminates the program)")
    t.set_defaults(pool_func=cmd_stop)

    st = ps.add_parser("status", help="supervisor, workers and channels of a pool",
                       description=STATUS_HELP)
    name_arg(st)
    st.add_argument("--json", action="store_true",
                    help="print the status as one JSON object (each worker's idle strategy "
                         "and tunables: the values it runs with, in Pool's terms)")
    st.set_defaults(pool_func=cmd_status)

    li = ps.add_parser("list", help="list the pools on this machine (live or stale)",
                       description="List the pools on this machine: each pool's name, whether "
                                   "its supervisor is live or gone (stale: `rtudp pool clean` "
                                   "removes what it left), its supervisor's pid and its "
                                   "segments in /dev/shm.")
    li.set_defaults(pool_func=cmd_list)

    c = ps.add_parser("clean", help="remove segments of pools whose supervisor is dead",
                      description="Remove the /dev/shm segments of pools whose supervisor is "
                                  "dead; a live pool is never touched.")
    name_arg(c, default=False)
    c.set_defaults(pool_func=cmd_clean)

    p.set_defaults(func=run)


def run(args: argparse.Namespace, _rest: list[str]) -> int:
    return int(args.pool_func(args))


__all__ = ["add_parser", "add_tunable_arguments", "parse_cpus", "run"]
