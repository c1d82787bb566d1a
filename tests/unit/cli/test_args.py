"""Every number a `livemig` flag takes: any text parses to a finite value in the flag's range or is refused by
argparse as one line naming the flag, exit 2, never a traceback.

The flags are found by walking the real parser, so a new numeric flag is covered as soon as it exists, and one
typed with a bare `int` or `float` fails here.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import livemig.cli
from livemig.cli import build_parser, main
from livemig.cli.args import ArgType


def _flags(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str, object]]:
    """(subcommand, flag, type) for every option of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _flags(sub, (*path, name))
        elif action.option_strings:
            yield " ".join(path), max(action.option_strings, key=len), action.type


FLAGS = list(_flags(build_parser()))
NUMERIC = [(command, flag, kind) for command, flag, kind in FLAGS if isinstance(kind, ArgType)]

# A valid command line to which a bad flag is appended (argparse converts every occurrence, so the last one fails).
BASE = {
    "predict": ["predict", "--memory", "4Gi", "--dirty-rate", "1Mi", "--bandwidth", "1Gbit"],
    "sim run": ["sim", "run", "--scenario", "s.yaml", "--kubeconfig", "k"],
    "lab run": ["lab", "run", "--technique", "pre-copy"],
    "devcluster up": ["devcluster", "up"],
    "operator run": ["operator", "run"],
    "demo": ["demo"],
}
BAD = ("inf", "nan", "1e400", "-1", "", "4Xi", "-inf", "1e999999999Ei", "9" * 500)
# The only bad-list values a flag accepts: a peering priority may be negative.
ACCEPTED = {("operator run", "--priority", "-1")}


def test_every_numeric_flag_uses_a_shared_parser() -> None:
    bare = [(command, flag) for command, flag, kind in FLAGS if kind in (int, float)]
    assert bare == []
    commands = {command for command, _, _ in NUMERIC}
    assert commands == set(BASE)  # each subcommand with numbers has a base command line below
    assert len(NUMERIC) >= 25


def _kinds() -> list[tuple[str, ArgType]]:
    seen: dict[tuple[object, ...], tuple[str, ArgType]] = {}
    for command, flag, kind in NUMERIC:
        assert isinstance(kind, ArgType)
        key = (kind.kind, kind.minimum, kind.maximum, kind.zero_allowed)
        seen.setdefault(key, (f"{command} {flag}", kind))
    return list(seen.values())


NUMBER_TEXT = st.one_of(
    st.floats().map(repr),
    st.floats().map(lambda x: f"{x:f}"),
    st.integers().map(str),
    st.from_regex(r"\A[-+]?\d{0,30}(\.\d{0,5})?([eE][-+]?\d{1,12})?\Z"),
)
UNITS = ["", " ", "Ki", "Mi", "Gi", "Ei", "k", "M", "E", "bit", "Mbit", "Gbps", "b/s", "ns", "µs", "ms", "s", "m"]
SUFFIX = st.sampled_from([*UNITS, "h", "Xi", "%", "1h30m", "x"])
TEXT = st.one_of(st.text(), st.builds(lambda n, s: n + s, NUMBER_TEXT, SUFFIX), st.lists(NUMBER_TEXT).map("h".join))


@pytest.mark.parametrize(("where", "kind"), _kinds(), ids=[where for where, _ in _kinds()])
@settings(max_examples=200, deadline=None)
@given(text=TEXT)
@example(text="1" * 400 + "s")  # a duration beyond int64 nanoseconds: an OverflowError once
@example(text="0." + "1" * 400 + "s")
@example(text="2562048h")
def test_any_text_is_a_finite_value_in_range_or_an_argument_error(where: str, kind: ArgType, text: str) -> None:
    try:
        value = kind(text)
    except argparse.ArgumentTypeError as exc:
        message = str(exc)
        assert message
        assert "\n" not in message
        assert len(message) < 200
        return
    assert isinstance(value, int | float)
    assert not isinstance(value, bool)
    assert math.isfinite(value)
    assert kind.minimum <= value <= kind.maximum
    assert value != 0 or kind.zero_allowed
    if kind.integral:
        assert isinstance(value, int)


@pytest.fixture
def no_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value the parser wrongly accepts must not start anything (a cluster, QEMU): handlers fail the test."""

    def refuse(args: argparse.Namespace) -> int:
        pytest.fail(f"the command ran with {args}")

    def parser_without_handlers() -> argparse.ArgumentParser:
        parser = build_parser()
        stack = [parser]
        while stack:
            current = stack.pop()
            current.set_defaults(handler=refuse)
            for action in current._actions:
                if isinstance(action, argparse._SubParsersAction):
                    stack.extend(action.choices.values())
        return parser

    monkeypatch.setattr(livemig.cli, "build_parser", parser_without_handlers)


CASES = [(command, flag, bad) for command, flag, _ in NUMERIC for bad in BAD if (command, flag, bad) not in ACCEPTED]


@pytest.mark.usefixtures("no_handlers")
@pytest.mark.parametrize(("command", "flag", "bad"), CASES, ids=[f"{c} {f}={b[:12]!r}" for c, f, b in CASES])
def test_a_bad_value_exits_2_with_one_line_naming_the_flag(
    command: str, flag: str, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*BASE[command], f"{flag}={bad}"])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"livemig {command}: error: argument {flag}: ")


def test_accepted_exceptions_are_really_accepted() -> None:
    parser = build_parser()
    for command, flag, value in ACCEPTED:
        args = parser.parse_args([*BASE[command], f"{flag}={value}"])
        assert getattr(args, flag[2:].replace("-", "_")) == float(value)


@pytest.mark.parametrize(
    ("argv", "flag", "value"),
    [
        (["predict", *BASE["predict"][1:], "--memory", "1.5Gi"], "memory", 3 * 2**29),
        (["predict", *BASE["predict"][1:], "--bandwidth", "8Mbit"], "bandwidth", 1e6),
        (["predict", *BASE["predict"][1:], "--downtime-limit", "1m30s"], "downtime_limit", 90.0),
        (["sim", "run", "--scenario", "s", "--kubeconfig", "k", "--time-scale", "0.001"], "time_scale", 0.001),
        (["operator", "run", "--metrics-port", "0"], "metrics_port", 0),
        (["lab", "run", "--technique", "pre-copy", "--dirty-pages-per-s", "30000"], "dirty_pages_per_s", 30000),
    ],
)
def test_good_values_parse_to_base_units(argv: list[str], flag: str, value: float) -> None:
    assert getattr(build_parser().parse_args(argv), flag) == value


def test_lab_ranges_beyond_the_parsers_still_name_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # The parser accepts any quantity; the lab's own range (128Mi to 2Gi) is checked by parse_case, also exit 2.
    assert main(["lab", "run", "--technique", "pre-copy", "--memory", "3Gi"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["livemig lab: error: --memory: must be between 128Mi and 2Gi, got 3221225472 bytes"]
