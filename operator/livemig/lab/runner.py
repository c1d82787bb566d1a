"""Run one real live migration: two QEMU processes on 127.0.0.1, driven over QMP (`qemu.qmp`, asyncio).

    result = await run_case(LabInstall.load(), LabCase(Technique.POST_COPY, dirty_pages_per_s=30000))

Sequence: start the source (boots the guest) and the destination (`-incoming defer`); wait until the guest's
dirtier reports a steady rate on the console; set capabilities on both sides and parameters on the source the way
libvirt does (see qemu.py); destination `migrate-incoming` on an ephemeral port; a relay of ours in between;
source `migrate`; sample `query-migrate` every 0.25 s; send `migrate-start-postcopy` at KubeVirt's switch time;
`migrate_cancel` at the wall-clock cap (not converged); optionally cut the relay and watch both sides; after a
completed migration check that the destination guest is alive and dirtying.  Both QEMU processes are always
stopped (quit, then SIGTERM, then SIGKILL), also on errors and Ctrl-C; they also die with this process
(PR_SET_PDEATHSIG), so no QEMU outlives a killed runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient

from livemig.core.errors import LivemigError
from livemig.core.vocabulary import Technique
from livemig.lab.case import CutPhase, LabCase, LinkCut
from livemig.lab.install import LabInstall
from livemig.lab.qemu import RunPaths, migration_capabilities, migration_parameters, migration_uri, qemu_command
from livemig.lab.relay import LOOPBACK, Relay, measure_throughput
from livemig.lab.results import (
    CutReport,
    LabResult,
    Sample,
    Status,
    guest_errors,
    parse_dirty_lines,
    steady_busy,
    steady_rate,
    summarize,
    throttle_steps,
)

logger = logging.getLogger(__name__)

POLL_S = 0.25
CUT_POLL_S = 0.1
BOOT_DEADLINE_S = 120.0
STEADY_REPORTS = 3  # DIRTY lines (1 s apart) before migrating: the first includes start-up
ALIVE_REPORTS = 2  # new DIRTY lines on the destination after completion
ALIVE_DEADLINE_S = 20.0
CANCEL_DEADLINE_S = 15.0
FINAL_STATES = {"completed", "failed", "cancelled"}
_PR_SET_PDEATHSIG = 1


class LabRunError(LivemigError):
    """The lab could not run the experiment (QEMU did not start, the guest did not boot, QMP failed)."""


@dataclass
class RunControl:
    """Requests from another thread (the simulator's QEMU backend): cancel the migration, or cut its link.

    `migrating` is set once `migrate` has been sent (the guest has booted and reached steady dirtying).
    """

    cancel: threading.Event = field(default_factory=threading.Event)
    cut: threading.Event = field(default_factory=threading.Event)
    migrating: threading.Event = field(default_factory=threading.Event)
    cut_observe_s: float = 3.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class _Qemu:
    role: str
    paths: RunPaths
    stderr_path: Path
    process: asyncio.subprocess.Process | None = None
    qmp: QMPClient | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def serial_text(self) -> str:
        try:
            return self.paths.serial_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


async def _start(install: LabInstall, case: LabCase, qemu: _Qemu, *, incoming: bool) -> None:
    command = qemu_command(install, case, qemu.paths, incoming=incoming)
    logger.debug("%s: %s", qemu.role, " ".join(command))
    output = os.open(qemu.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        qemu.process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env=install.environment(),
            preexec_fn=_die_with_parent,
        )
    finally:
        os.close(output)


async def _connect(qemu: _Qemu, deadline_s: float = 15.0) -> None:
    end = time.monotonic() + deadline_s
    client = QMPClient(qemu.role)
    while True:
        if not qemu.alive:
            raise LabRunError(f"{qemu.role} QEMU exited early: {_tail(qemu.stderr_path)}")
        if qemu.paths.qmp_socket.exists():
            try:
                await client.connect(str(qemu.paths.qmp_socket))
                break
            except Exception as exc:  # qemu.qmp raises its own ConnectError wrapping OSError
                if time.monotonic() > end:
                    raise LabRunError(f"{qemu.role}: cannot connect to QMP: {exc}") from exc
        elif time.monotonic() > end:
            raise LabRunError(f"{qemu.role}: QMP socket {qemu.paths.qmp_socket} did not appear")
        await asyncio.sleep(0.05)
    qemu.qmp = client


async def _execute(qemu: _Qemu, command: str, arguments: dict[str, Any] | None = None) -> Any:
    if qemu.qmp is None:
        raise LabRunError(f"{qemu.role}: not connected")
    return await asyncio.wait_for(qemu.qmp.execute(command, arguments), 10.0)


async def _wait_dirtying(qemu: _Qemu, reports: int, deadline_s: float, *, after: int = 0) -> list[Any]:
    """Wait until the guest printed `reports` DIRTY lines beyond the first `after`; fail on a guest error."""
    end = time.monotonic() + deadline_s
    while True:
        text = qemu.serial_text()
        errors = guest_errors(text)
        if errors:
            raise LabRunError(f"{qemu.role} guest error: {errors[0]}")
        lines = parse_dirty_lines(text)
        if len(lines) - after >= reports:
            return lines
        if not qemu.alive:
            raise LabRunError(f"{qemu.role} QEMU exited: {_tail(qemu.stderr_path)}")
        if time.monotonic() > end:
            raise LabRunError(f"{qemu.role} guest did not report {reports} DIRTY lines within {deadline_s:.0f} s")
        await asyncio.sleep(0.2)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except FileNotFoundError:
        return "(no output)"


async def _stop(qemu: _Qemu) -> None:
    """quit over QMP, then SIGTERM, then SIGKILL; always reap the process."""
    if qemu.qmp is not None:
        if qemu.alive:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(qemu.qmp.execute("quit"), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(qemu.qmp.disconnect(), 2.0)
    process = qemu.process
    if process is None:
        return
    for sig, grace in ((None, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        if process.returncode is not None:
            return
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(process.wait(), grace)


async def run_case(
    install: LabInstall,
    case: LabCase,
    *,
    run_dir: Path | None = None,
    on_sample: Callable[[Sample], None] | None = None,
    control: RunControl | None = None,
) -> LabResult:
    """Run one migration of `case` and return what QEMU and the guest reported; never leaves QEMU running."""
    started = time.monotonic()
    run_dir = run_dir or _default_run_dir(case)
    run_dir.mkdir(parents=True, exist_ok=True)
    sockets = Path(tempfile.mkdtemp(prefix="lmlab-"))  # short paths: unix sockets allow ~107 bytes
    src = _Qemu("source", RunPaths(sockets / "src.qmp", run_dir / "src-serial.log"), run_dir / "src-qemu.log")
    dst = _Qemu("destination", RunPaths(sockets / "dst.qmp", run_dir / "dst-serial.log"), run_dir / "dst-qemu.log")
    relay: Relay | None = None
    try:
        loopback_bps = await measure_throughput()  # before QEMU starts: the link's raw speed, uncontended
        await _start(install, case, src, incoming=False)
        await _start(install, case, dst, incoming=True)
        await _connect(src)
        await _connect(dst)
        before = await _wait_dirtying(src, STEADY_REPORTS, BOOT_DEADLINE_S)
        boot_s = time.monotonic() - started
        guest_rate = steady_rate(before)
        guest_busy = steady_busy(before)

        capabilities = migration_capabilities(case)
        await _execute(src, "migrate-set-capabilities", {"capabilities": capabilities})
        await _execute(dst, "migrate-set-capabilities", {"capabilities": capabilities})
        await _execute(src, "migrate-set-parameters", migration_parameters(case))
        dst_port = _free_port()
        await _execute(dst, "migrate-incoming", {"uri": migration_uri(dst_port)})
        relay = Relay(dst_port)
        relay_port = await relay.start()

        load_average = os.getloadavg()
        result = await _migrate(case, src, dst, relay, relay_port, on_sample, control or RunControl())
        samples, switch_at, cut = result
        summary = summarize(samples)
        status = _status(summary.final_status, cut)
        alive: bool | None = None
        dst_rate: float | None = None
        errors: tuple[str, ...] = tuple(guest_errors(dst.serial_text()))
        if summary.final_status == "completed":
            alive, dst_rate, errors = await _check_destination(dst)
        outcome = LabResult(
            technique=str(case.technique),
            status=status,
            summary=summary,
            guest_dirty_pages_per_s=guest_rate,
            guest_alive=alive,
            dst_guest_dirty_pages_per_s=dst_rate,
            guest_errors=errors,
            post_copy_switch_at_s=switch_at,
            throttle_steps=tuple(throttle_steps(samples)),
            cut=cut,
            boot_s=boot_s,
            wall_s=time.monotonic() - started,
            qemu_version=install.qemu_version,
            loopback_bps=loopback_bps,
            guest_cpu_busy=guest_busy,
            load_average=load_average,
            run_dir=str(run_dir),
            samples=tuple(samples),
        )
        _save(run_dir, case, outcome)
        return outcome
    finally:
        if relay is not None:
            with contextlib.suppress(Exception):
                await relay.close()
        # Shield the teardown so that a Ctrl-C (task cancellation) still stops both processes.
        await asyncio.shield(asyncio.gather(_stop(src), _stop(dst), return_exceptions=True))
        shutil.rmtree(sockets, ignore_errors=True)


def _status(final_status: str, cut: CutReport | None) -> Status:
    if final_status == "completed":
        return Status.COMPLETED
    if final_status == "cancelled" and cut is None:
        return Status.NOT_CONVERGED
    return Status.FAILED


async def _migrate(
    case: LabCase,
    src: _Qemu,
    dst: _Qemu,
    relay: Relay,
    relay_port: int,
    on_sample: Callable[[Sample], None] | None,
    control: RunControl,
) -> tuple[list[Sample], float | None, CutReport | None]:
    loop = asyncio.get_running_loop()
    await _execute(src, "migrate", {"uri": migration_uri(relay_port)})
    t0 = loop.time()
    control.migrating.set()
    samples: list[Sample] = []
    switch_at: float | None = None
    cancel_sent = False
    cancel_at = 0.0
    next_poll = t0
    while True:
        now = loop.time() - t0
        info = await _execute(src, "query-migrate")
        sample = Sample(now, info)
        samples.append(sample)
        if on_sample is not None:
            on_sample(sample)
        status = str(info.get("status"))
        if status in FINAL_STATES:
            return samples, switch_at, None
        if (
            case.technique is Technique.POST_COPY
            and switch_at is None
            and now >= case.post_copy_switch_s
            and status == "active"
        ):
            await _execute(src, "migrate-start-postcopy")
            switch_at = loop.time() - t0
        cut = case.link_cut
        if cut is None and control.cut.is_set():
            phase = CutPhase.PRE_COPY if switch_at is None else CutPhase.POST_COPY
            cut = LinkCut(0.0, phase, control.cut_observe_s)
        if cut is not None:
            origin = 0.0 if cut.phase is CutPhase.PRE_COPY else switch_at
            if origin is not None and now >= origin + cut.after_s:
                await relay.cut()
                report = await _watch_after_cut(cut, src, dst, loop.time() - t0, t0, samples, on_sample)
                return samples, switch_at, report
        if control.cancel.is_set() and not cancel_sent:
            await _execute(src, "migrate_cancel")
            cancel_sent = True
            cancel_at = now
        if now >= case.timeout_s and not cancel_sent:
            await _execute(src, "migrate_cancel")
            cancel_sent = True
            cancel_at = now
        if cancel_sent and now >= cancel_at + CANCEL_DEADLINE_S:
            raise LabRunError(f"migration did not stop within {CANCEL_DEADLINE_S:.0f} s of migrate_cancel")
        # Wake for the next poll, or earlier for the post-copy switch or a cut.
        next_poll += POLL_S
        wake = next_poll
        if case.technique is Technique.POST_COPY and switch_at is None:
            wake = min(wake, t0 + case.post_copy_switch_s)
        await asyncio.sleep(max(0.0, wake - loop.time()))


async def _watch_after_cut(
    cut: LinkCut,
    src: _Qemu,
    dst: _Qemu,
    cut_at: float,
    t0: float,
    samples: list[Sample],
    on_sample: Callable[[Sample], None] | None,
) -> CutReport:
    """After the cut: poll both sides for `observe_s`, timing pauses and counting guest progress on each side."""
    loop = asyncio.get_running_loop()
    src_base = len(parse_dirty_lines(src.serial_text()))
    dst_base = len(parse_dirty_lines(dst.serial_text()))
    src_count, dst_count = src_base, dst_base
    last_progress = cut_at
    src_paused: float | None = None
    dst_paused: float | None = None
    src_status = dst_status = ""
    dst_info: dict[str, Any] | None = None
    while True:
        now = loop.time() - t0
        info = await _execute(src, "query-migrate")
        dst_info = None
        if dst.alive and dst.qmp is not None:
            with contextlib.suppress(Exception):
                reply = await asyncio.wait_for(dst.qmp.execute("query-migrate"), 2.0)
                dst_info = dict(reply) if isinstance(reply, dict) else None
        sample = Sample(now, info, dst_info)
        samples.append(sample)
        if on_sample is not None:
            on_sample(sample)
        src_status = str(info.get("status"))
        dst_status = str(dst_info.get("status")) if dst_info else ""
        if src_status == "postcopy-paused" and src_paused is None:
            src_paused = now - cut_at
        if dst_status == "postcopy-paused" and dst_paused is None:
            dst_paused = now - cut_at
        s_count = len(parse_dirty_lines(src.serial_text()))
        d_count = len(parse_dirty_lines(dst.serial_text()))
        if s_count > src_count or d_count > dst_count:
            last_progress = now
        src_count, dst_count = s_count, d_count
        if now - cut_at >= cut.observe_s:
            break
        await asyncio.sleep(CUT_POLL_S)
    end = loop.time() - t0
    running: bool | None = None
    with contextlib.suppress(Exception):
        running = bool((await _execute(src, "query-status")).get("running"))
    return CutReport(
        cut_at_s=round(cut_at, 3),
        phase=str(cut.phase),
        src_status=src_status,
        dst_status=dst_status or None,
        src_paused_after_s=None if src_paused is None else round(src_paused, 3),
        dst_paused_after_s=None if dst_paused is None else round(dst_paused, 3),
        src_vm_running=running,
        dst_exit_code=None if dst.process is None else dst.process.returncode,
        observed_s=round(end - cut_at, 3),
        src_guest_reports_after_cut=src_count - src_base,
        dst_guest_reports_after_cut=dst_count - dst_base,
        frozen_s=round(end - max(cut_at, last_progress), 3),
    )


async def _check_destination(dst: _Qemu) -> tuple[bool, float | None, tuple[str, ...]]:
    """Alive = the destination VM runs and its guest prints fresh DIRTY lines, with no kernel error."""
    base = len(parse_dirty_lines(dst.serial_text()))
    try:
        lines = await _wait_dirtying(dst, ALIVE_REPORTS, ALIVE_DEADLINE_S, after=base)
        # Asked after the fresh lines: right at `completed` the destination may still be switching to running.
        status = await _execute(dst, "query-status")
    except LabRunError as exc:
        logger.warning("destination guest check failed: %s", exc)
        return False, None, tuple(guest_errors(dst.serial_text())) or (str(exc),)
    fresh = lines[base:]
    errors = tuple(guest_errors(dst.serial_text()))
    alive = bool(status.get("running")) and not errors
    # The first fresh line covers the migration itself; the later ones are the guest's settled rate.
    return alive, steady_rate(fresh, skip=1), errors


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _default_run_dir(case: LabCase) -> Path:
    from livemig.lab.install import default_manifest_path

    stamp = time.strftime("%Y%m%dT%H%M%S")
    return default_manifest_path().parent / "runs" / f"{stamp}-{os.getpid()}-{case.label}"


def _save(run_dir: Path, case: LabCase, result: LabResult) -> None:
    samples = [asdict(sample) for sample in result.samples]
    (run_dir / "samples.json").write_text(json.dumps(samples))
    record = {"case": _case_json(case), **result.to_json(), "details": result.details()}
    (run_dir / "result.json").write_text(json.dumps(record, indent=2, default=str))


def _case_json(case: LabCase) -> dict[str, Any]:
    data = asdict(case)
    data["technique"] = str(case.technique)
    data["pattern"] = str(case.pattern)
    return data
