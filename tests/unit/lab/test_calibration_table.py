"""The calibration table in docs/model.md must show the model as it is: re-predicting the recorded lab runs with the
model in the tree gives the same rows (pure: no QEMU needed, the runs are in examples/lab/results.jsonl)."""

from __future__ import annotations

from pathlib import Path

from livemig.lab.calibration import BEGIN, END, load_rows, render, write_between_markers

REPO = Path(__file__).resolve().parents[3]
LOOPBACK_BPS = 480e6  # the figure the documented command passes (--loopback-bps 480e6)
REGENERATE = (
    ".venv/bin/python hack/lab/calibration_table.py examples/lab/results.jsonl --loopback-bps 480e6 "
    "--notes examples/lab/calibration-notes.md --write docs/model.md"
)


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| run ")]


def test_docs_calibration_table_matches_the_model_in_the_tree() -> None:
    rows = load_rows((REPO / "examples" / "lab" / "results.jsonl").read_text().splitlines(), LOOPBACK_BPS)
    assert len(rows) >= 16
    fresh = render(rows, command="-", qemu_version="-", kernel="-", loopback_bps=LOOPBACK_BPS)
    document = (REPO / "docs" / "model.md").read_text()
    section = document[document.index(BEGIN) : document.index(END)]
    assert _table_rows(section) == _table_rows(fresh), f"docs/model.md's calibration table is stale: run {REGENERATE}"


def test_writing_keeps_everything_outside_the_markers() -> None:
    document = f"# Model\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## After\n"
    updated = write_between_markers(document, "new table\n")
    assert updated == f"# Model\n\nintro\n\n{BEGIN}\nnew table\n{END}\n\n## After\n"
    assert write_between_markers("# Model\n", "t\n") == f"# Model\n\n{BEGIN}\nt\n{END}\n"
