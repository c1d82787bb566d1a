"""A cluster snapshot document (YAML/JSON) read into a `ClusterSnapshot`.

`parse_snapshot` collects every problem as a `SpecError` with a dotted path (`vmis[3].usage.dirtyRate: ...`) before
raising `SpecErrors`.  `load_snapshot` and `read_document` are the only I/O here.  The schema is documented field by
field in docs/snapshot.md.

One module per part of the document: document.py (top-level keys, the order sections are read in), nodes.py,
vmis.py, scheduling.py (taints, tolerations, label selectors, affinity: what both nodes and VMIs carry),
kubevirt_section.py (KubeVirt's migration configuration and the virt-launcher sizing keys), all on fields.py's
`FieldReader` and value parsers.
"""

from livemig.core.snapshot_parser.document import load_snapshot, parse_snapshot, read_document
from livemig.core.snapshot_parser.fields import parse_cpu, parse_timestamp
from livemig.core.snapshot_parser.kubevirt_section import LAUNCHER_KEYS

__all__ = ["LAUNCHER_KEYS", "load_snapshot", "parse_cpu", "parse_snapshot", "parse_timestamp", "read_document"]
