"""Parsing the guest console and QEMU's query-migrate series into the run's figures."""

from __future__ import annotations

import pytest

from livemig.lab.results import (
    Sample,
    guest_errors,
    parse_dirty_lines,
    steady_busy,
    steady_rate,
    summarize,
    throttle_steps,
)

CONSOLE = """\
INIT up: console=ttyS0 quiet dirtier.wss_mib=64
DIRTIER start wss_mib=64 wss_pages=16384 rate=5000 bpp=8 pattern=hot-cold hot_pct=10 hot_share=90
DIRTY t=5.070 pages=10050 rate=5024 target=5000 wss_pages=16384 pattern=hot-cold
DIRTY t=7.080 pages=10050 rate=5000 target=5000 wss_pages=16384 pattern=hot-cold
some kernel noise
DIRTY t=9.080 pages=9000 rate=4500 target=5000 wss_pages=16384 pattern=hot-cold
"""


def test_dirty_lines_are_parsed_and_the_first_period_is_skipped() -> None:
    reports = parse_dirty_lines(CONSOLE)
    assert [(r.guest_t_s, r.pages, r.rate) for r in reports] == [
        (5.07, 10050, 5024.0),
        (7.08, 10050, 5000.0),
        (9.08, 9000, 4500.0),
    ]
    assert steady_rate(reports) == 4750.0
    assert steady_rate(reports[:1]) == 5024.0  # one report: use it
    assert steady_rate([]) is None


def test_guest_errors_find_kernel_oopses() -> None:
    assert guest_errors(CONSOLE) == []
    broken = CONSOLE + "[   12.3] BUG: unable to handle page fault for address: ffffffff8de52e30\n"
    assert guest_errors(broken) == ["[   12.3] BUG: unable to handle page fault for address: ffffffff8de52e30"]


def _ram(**values: int) -> dict[str, int]:
    return values


def test_summary_takes_counters_from_the_series_and_times_from_the_final_record() -> None:
    samples = [
        Sample(0.0, {"status": "active", "ram": _ram(transferred=1_000, **{"dirty-sync-count": 1})}),
        Sample(
            0.25,
            {
                "status": "active",
                "cpu-throttle-percentage": 20,
                "ram": _ram(transferred=50_000, **{"dirty-sync-count": 3, "dirty-pages-rate": 6000}),
            },
        ),
        Sample(
            0.5,
            {
                "status": "postcopy-active",
                "cpu-throttle-percentage": 30,
                "ram": _ram(transferred=90_000, **{"dirty-sync-count": 3, "postcopy-bytes": 40_000}),
            },
        ),
        Sample(
            0.75,
            {
                "status": "completed",
                "total-time": 12430,
                "downtime": 3,
                "setup-time": 2,
                "ram": _ram(
                    transferred=120_000,
                    **{"dirty-sync-count": 3, "dirty-pages-rate": 0, "postcopy-bytes": 70_000, "postcopy-requests": 9},
                ),
            },
        ),
    ]
    summary = summarize(samples)
    assert summary.final_status == "completed"
    assert summary.total_time_s == 12.43
    assert summary.downtime_s == 0.003
    assert summary.transferred_bytes == 120_000
    assert summary.dirty_syncs == 3
    assert summary.postcopy_bytes == 70_000
    assert summary.postcopy_requests == 9
    assert summary.max_dirty_pages_rate == 6000  # 0 in the final record: the maximum of the series counts
    assert summary.max_throttle_pct == 30
    assert throttle_steps(samples) == [20, 30]


def test_a_cancelled_run_has_no_downtime_and_keeps_the_error() -> None:
    samples = [
        Sample(0.0, {"status": "active", "ram": _ram(transferred=10)}),
        Sample(60.0, {"status": "cancelled", "total-time": 60_016, "downtime": 0, "ram": _ram(transferred=99)}),
    ]
    summary = summarize(samples)
    assert summary.final_status == "cancelled"
    assert summary.downtime_s is None
    assert summary.total_time_s == 60.016
    failed = summarize([Sample(3.0, {"status": "failed", "error-desc": "Unable to write to socket: Broken pipe"})])
    assert failed.error == "Unable to write to socket: Broken pipe"


def test_a_run_without_total_time_lasted_until_the_last_poll() -> None:
    samples = [Sample(0.0, {"status": "active"}), Sample(20.25, {"status": "cancelled"})]
    assert summarize(samples).total_time_s == 20.25


def test_busy_share_is_parsed_when_the_guest_reports_it() -> None:
    text = (
        "DIRTY t=5.0 pages=40000 rate=40000 target=40000 wss_pages=32768 pattern=sequential busy=0.500\n"
        "DIRTY t=6.0 pages=40000 rate=40000 target=40000 wss_pages=32768 pattern=sequential busy=0.150\n"
        "DIRTY t=7.0 pages=40000 rate=40000 target=40000 wss_pages=32768 pattern=sequential busy=0.170\n"
        "DIRTY t=8.0 pages=40000 rate=40000 target=40000 wss_pages=32768 pattern=sequential busy=-1.000\n"
    )
    reports = parse_dirty_lines(text)
    assert [r.busy for r in reports] == [0.5, 0.15, 0.17, None]
    assert steady_busy(reports) == pytest.approx(0.16)
    assert steady_busy(parse_dirty_lines(CONSOLE)) is None  # an older guest without busy=


def test_post_copy_downtime_is_the_switchs_not_qemus_completion_figure() -> None:
    # A switch under 1 ms is recorded as 0 and QEMU then records "downtime" again at completion (switch -> end of the
    # post-copy phase); a switch of 2 ms stays 2 ms at completion too.
    def run(switch_ms: int, completion_ms: int) -> float | None:
        return summarize(
            [
                Sample(0.0, {"status": "active", "ram": _ram(transferred=1_000)}),
                Sample(1.25, {"status": "postcopy-active", "downtime": switch_ms, "ram": _ram(transferred=9_000)}),
                Sample(
                    1.75,
                    {"status": "completed", "total-time": 1647, "downtime": completion_ms, "ram": _ram(transferred=9)},
                ),
            ]
        ).downtime_s

    assert run(0, 547) == 0.0
    assert run(2, 2) == 0.002
    pre_copy = summarize([Sample(0.5, {"status": "completed", "total-time": 1500, "downtime": 41, "ram": {}})])
    assert pre_copy.downtime_s == 0.041
