"""docs/benchmarks.md, where each benchmark script writes its own section between its markers."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(begin: str, end: str, text: str, doc_path: Path = DOC) -> None:
    """Replace the text between `begin` and `end` (the markers kept), or append the section if it is not there."""
    doc = doc_path.read_text()
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        doc = head + block + tail
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    doc_path.write_text(doc)
