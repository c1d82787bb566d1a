"""livemig's MigrationPolicy: frozen value objects (spec) and the parser/validator (parse, which reads each family of
spec sections with its own module: selection, purposes, execution, prometheus).

Label selectors (`LabelSelector`, `matches`, ...) are livemig.core.selectors', re-exported here for policy users.

`parse_policy` enforces the same schema, defaults and CEL rules as crds/livemig.io_migrationpolicies.yaml, so
`livemig plan --policy` rejects what the API server would, naming the same field.
"""

from livemig.core.policy.parse import load_policy, parse_policy
from livemig.core.policy.spec import (
    Comparison,
    Consolidation,
    Evacuation,
    Limits,
    LivemigPolicy,
    LoadBalancing,
    Maintenance,
    PressureThresholds,
    PrometheusOverrides,
    PrometheusQueries,
    ResourceFractions,
    TechniquePolicy,
    Threshold,
    TimeWindow,
    VmiSelector,
)
from livemig.core.selectors import LabelSelector, LabelSelectorRequirement, SelectorOperator, matches

__all__ = [
    "Comparison",
    "Consolidation",
    "Evacuation",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Limits",
    "LivemigPolicy",
    "LoadBalancing",
    "Maintenance",
    "PressureThresholds",
    "PrometheusOverrides",
    "PrometheusQueries",
    "ResourceFractions",
    "SelectorOperator",
    "TechniquePolicy",
    "Threshold",
    "TimeWindow",
    "VmiSelector",
    "load_policy",
    "matches",
    "parse_policy",
]
