"""Hostile and malformed MigrationPolicies (issue 12, item 5): `hypothesis` generates documents from the CRD's own
schema (valid, borderline and invalid values for every field, unknown fields, missing required ones, hostile strings)
and each is sent to the real kube-apiserver (dry-run=All, fieldValidation=Strict) and to the offline parser.

Both must agree: accepted by both, or rejected by both with the server's message naming a field the parser names.
A disagreement is a bug in the CRD or the parser.  One shared API server for the whole run; the seed is printed
(`LIVEMIG_FUZZ_SEED`, default 20261204) and the run is derandomized by it, so a failure replays.
"""

from __future__ import annotations

import collections
import json
import os
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from livemig.core.errors import SpecErrors
from livemig.core.policy import parse_policy
from livemig.devcluster import DevCluster

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((REPO / "crds" / "livemig.io_migrationpolicies.yaml").read_text())
SCHEMA: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC_SCHEMA: dict[str, Any] = SCHEMA["properties"]["spec"]
EXAMPLES = 300
FUZZ_SEED = int(os.environ.get("LIVEMIG_FUZZ_SEED", "20261204"))

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"
URL_PATTERN = r"^https?://[^\s]+$"

# Strings that try to break out of a PromQL label matcher, a selector or a log line.
HOSTILE = [
    '"}',
    '"} or vector(1)',
    "or vector(1)",
    '=~".*"',
    '{node=~".*"}',
    "a\nb",
    "\\",
    "' OR 1=1 --",
    "${window}",
    "$window",
    "\u202e\u0000x",
    "",
    " ",
    "x" * 63,
    "x" * 64,
    "a,b!=c",
    "!x",
    "v\n",
]

# --- strategies from the schema -------------------------------------------------------------------------------------

UNITS = ["ns", "us", "ms", "s", "m", "h"]


def durations(wild: bool) -> st.SearchStrategy[Any]:
    part = st.tuples(
        st.integers(0, 2000), st.one_of(st.none(), st.integers(0, 999).map(str)), st.sampled_from(UNITS)
    ).map(lambda t: f"{t[0]}{'' if t[1] is None else '.' + t[1]}{t[2]}")
    composed = st.lists(part, min_size=1, max_size=3).map("".join)
    plain = st.one_of(st.integers(5, 3600).map("{}s".format), st.integers(1, 300).map("{}m".format))
    valid = st.one_of(plain, plain, composed)
    borderline = st.sampled_from(
        ["0s", "5s", "4.999s", "24h", "24h0m0.000000001s", "720h", "720h1ns", "2000s", "2000.000000001s", "5m", "1h"]
    )
    invalid = st.sampled_from(
        ["10", "ten minutes", "-1s", "1d", "1.s", "s", "1H", "9" * 33 + "s", "99999999999999h", "10s\n", "\u0665s"]
    )
    if not wild:
        return st.one_of(valid, valid, valid, borderline)
    return st.one_of(valid, borderline, invalid, st.integers(-5, 100), st.booleans())


def quantities(wild: bool) -> st.SearchStrategy[Any]:
    valid = st.one_of(
        st.integers(0, 10**12),
        st.tuples(st.integers(0, 4096), st.sampled_from(["", "Ki", "Mi", "Gi", "k", "M", "G", "m", "e3", "E"])).map(
            lambda t: f"{t[0]}{t[1]}"
        ),
    )
    borderline = st.sampled_from([0, "0", "0.5", ".5Gi", "1.Mi", "1e-3", "100m", "1n", "1E+2"])
    invalid = st.sampled_from([-1, "-1", "fast", "10 Mi", "1.5.5", "1Mib", 1.5, True, "1e"])
    return st.one_of(valid, borderline, invalid) if wild else st.one_of(valid, valid, valid, borderline)


def date_times(wild: bool) -> st.SearchStrategy[Any]:
    valid = st.tuples(st.integers(2020, 2030), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23)).map(
        lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:00:00Z"
    )
    borderline = st.sampled_from(["2026-11-29T02:00:00+02:00", "2026-11-29T02:00:00.5Z", "2026-11-29t02:00:00z"])
    invalid = st.sampled_from(
        [
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "2026-11-29 02:00:00",
            "",
            3,
            "2026-11-29T02:00:00Z\n",
            "\u0662026-11-29T02:00:00Z",
        ]
    )
    return st.one_of(valid, borderline, invalid) if wild else st.one_of(valid, valid, valid, borderline)


def urls(wild: bool) -> st.SearchStrategy[Any]:
    valid = st.sampled_from(
        ["http://prometheus:9090", "https://p.example/x?q=1", 'http://a/"}or vector(1)', "http://a\u00a0b\u2003"]
    )
    invalid = st.sampled_from(["prometheus:9090", "http://a b", "ftp://x", "", "http://", 8080, "http://a\n"])
    return st.one_of(valid, invalid) if wild else valid


def free_strings(schema: dict[str, Any], wild: bool) -> st.SearchStrategy[Any]:
    low, high = schema.get("minLength", 0), schema.get("maxLength", 64)
    valid = st.one_of(
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=low, max_size=min(high, 40)),
        st.sampled_from(HOSTILE),
        st.just("y" * high),
    )
    invalid = st.sampled_from(["y" * (high + 1), 42, True, None, ["x"]])
    return st.one_of(valid, valid, invalid) if wild else valid


def numbers(schema: dict[str, Any], integer: bool, wild: bool) -> st.SearchStrategy[Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    lo = -(10**6) if low is None else low
    hi = 10**6 if high is None else high
    edges: list[Any] = [lo, hi]
    if integer:
        valid: st.SearchStrategy[Any] = st.integers(int(lo), int(hi))
        edges += [int(lo) - 1, int(hi) + 1, float(hi), 2**31, 2**63, 2**64, -(2**63) - 1, 1.5]
    else:
        valid = st.floats(float(lo), float(hi), allow_nan=False, allow_infinity=False)
        edges += [lo - 1e-9, hi + 1e-9, 1e-300, 5e-324, int(hi), 1e308]
    invalid = st.sampled_from(["80%", "0.5", True, [1]])
    if not wild:
        return st.one_of(valid, valid, valid, st.sampled_from(edges[:2]))
    return st.one_of(valid, valid, st.sampled_from(edges), invalid)


def for_schema(schema: dict[str, Any], wild: bool) -> st.SearchStrategy[Any]:
    """Values for one property: what its schema allows (and borderline values); `wild` mixes in invalid ones."""
    if schema.get("x-kubernetes-int-or-string"):
        return quantities(wild)
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return objects(schema, wild)
    if kind == "object" and "additionalProperties" in schema:
        keys = st.one_of(st.sampled_from(["app", "tier", "kubernetes.io/hostname"]), st.sampled_from(HOSTILE))
        return st.dictionaries(keys, for_schema(schema["additionalProperties"], wild), max_size=3)
    if kind == "object":
        return st.one_of(st.just({}), st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2))
    if kind == "array":
        item = for_schema(schema["items"], wild)
        lists = st.lists(item, max_size=4)
        if not wild:
            return lists
        too_long = st.lists(item, min_size=schema["maxItems"] + 1, max_size=schema["maxItems"] + 1)
        return st.one_of(lists, lists, lists, too_long, st.sampled_from(["x", 1]))
    if kind == "string":
        if "enum" in schema:
            enum = schema["enum"]
            wrong = [e.lower() for e in enum[:2]] + ["Other", "", 3]
            return st.one_of(st.sampled_from(enum), st.sampled_from(wrong)) if wild else st.sampled_from(enum)
        if schema.get("pattern") == DURATION_PATTERN:
            return durations(wild)
        if schema.get("pattern") == URL_PATTERN:
            return urls(wild)
        if schema.get("format") == "date-time":
            return date_times(wild)
        return free_strings(schema, wild)
    if kind == "integer":
        return numbers(schema, integer=True, wild=wild)
    if kind == "number":
        return numbers(schema, integer=False, wild=wild)
    if kind == "boolean":
        return st.one_of(st.booleans(), st.sampled_from(["yes", 1, "true"])) if wild else st.booleans()
    raise AssertionError(f"no strategy for {schema}")


def objects(schema: dict[str, Any], wild: bool) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", []))
    fields = {key: for_schema(sub, wild) for key, sub in properties.items()}
    base = st.fixed_dictionaries(
        {k: v for k, v in fields.items() if k in required},
        optional={k: v for k, v in fields.items() if k not in required},
    )
    if not wild:
        return base

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        value = dict(draw(base))
        roll = draw(st.integers(0, 9))
        if roll == 0 and required:
            value.pop(draw(st.sampled_from(sorted(required))), None)
        elif roll == 1:
            value[draw(st.sampled_from(["extra", "Mode", "maxDownTime"]))] = 1
        return value

    return build()


PURPOSE_SECTION = {
    "Maintenance": "maintenance",
    "Evacuation": "evacuation",
    "LoadBalancing": "loadBalancing",
    "Consolidation": "consolidation",
}
COMMON = [k for k in SPEC_SCHEMA["properties"] if k not in PURPOSE_SECTION.values() and k != "purpose"]
FIELDS = {
    wild: {key: for_schema(SPEC_SCHEMA["properties"][key], wild) for key in SPEC_SCHEMA["properties"]}
    for wild in (False, True)
}

NAMES = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]{1,5})?\Z")
BAD_NAMES = st.sampled_from(["UPPER", "a_b", "-a", "a" * 253, "a" * 254, '"}', "a\nb", "", "x.y-", ".", "abc\n"])
LABEL_VALUES = st.one_of(
    st.from_regex(r"\A([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?\Z"),
    st.just("v" * 63),
)


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """One MigrationPolicy.  Three in five are drawn from valid values only (CEL rules between fields may still
    reject them), one in five valid but for one wild field, one in five wild throughout: wrong purposes, another
    purpose's section, missing or unknown fields, hostile names and label values."""
    style = draw(st.sampled_from(["valid", "valid", "valid", "one-wild", "wild"]))
    wild_keys = set(SPEC_SCHEMA["properties"]) if style == "wild" else set()
    if style == "one-wild":
        wild_keys = {draw(st.sampled_from([*sorted(SPEC_SCHEMA["properties"]), "metadata.name", "metadata.labels"]))}
    purpose: str | None = draw(st.sampled_from(list(PURPOSE_SECTION)))
    if "purpose" in wild_keys:
        purpose = draw(st.one_of(st.sampled_from(list(PURPOSE_SECTION)), st.sampled_from(["Rebalance", "", None])))
    spec: dict[str, Any] = {} if purpose is None else {"purpose": purpose}
    own = PURPOSE_SECTION.get(purpose or "")
    if own is not None and (style != "wild" or draw(st.integers(0, 9)) > 0):
        spec[own] = draw(FIELDS[own in wild_keys][own])
    if style == "wild" and (own is None or draw(st.integers(0, 9)) == 0):
        other = draw(st.sampled_from(sorted(PURPOSE_SECTION.values())))
        spec[other] = draw(FIELDS[True][other])
    keys = draw(st.lists(st.sampled_from(COMMON), max_size=4, unique=True))
    keys += [k for k in sorted(wild_keys) if k in COMMON and k not in keys]
    for key in keys:
        spec[key] = draw(FIELDS[key in wild_keys][key])
    metadata: dict[str, Any] = {"name": draw(NAMES)}
    if "metadata.name" in wild_keys or (style == "wild" and draw(st.integers(0, 4)) == 0):
        metadata["name"] = draw(BAD_NAMES)
    if "metadata.labels" in wild_keys or draw(st.integers(0, 3)) == 0:
        wild_labels = style == "wild" or "metadata.labels" in wild_keys
        values = st.one_of(LABEL_VALUES, st.sampled_from(HOSTILE)) if wild_labels else LABEL_VALUES
        metadata["labels"] = draw(st.dictionaries(st.sampled_from(["team", "livemig.io/x"]), values, max_size=2))
    return {"apiVersion": "livemig.io/v1alpha1", "kind": "MigrationPolicy", "metadata": metadata, "spec": spec}


# --- the API server ---------------------------------------------------------------------------------------------------


def dry_run_client(devcluster: DevCluster) -> Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]:
    """POST a policy with dryRun=All and fieldValidation=Strict (what `kubectl create --dry-run=server
    --validate=strict` sends), straight over HTTPS: 300 kubectl processes would cost a minute on 2 cores."""
    config = yaml.safe_load(devcluster.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    tls = ssl.create_default_context(cafile=cluster["certificate-authority"])
    tls.load_cert_chain(user["client-certificate"], user["client-key"])
    url = f"{cluster['server']}/apis/livemig.io/v1alpha1/migrationpolicies?dryRun=All&fieldValidation=Strict"

    def send(doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = json.dumps(doc).encode()
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, context=tls, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return send


def server_fields(status: dict[str, Any]) -> set[str]:
    """The fields a rejection names: its causes' fields, and the dotted paths its message quotes."""
    fields = {c.get("field", "").lstrip(".") for c in (status.get("details") or {}).get("causes") or []}
    message = status.get("message", "")
    fields |= set(re.findall(r'unknown field "([^"]+)"', message))
    fields |= set(re.findall(r"(?:^|[\s,:])((?:metadata|spec)(?:\.[\w]+|\[\d+\])*(?:\.[\w.\-/\"]+)?)", message))
    return {f for f in fields if f}


def parser_verdict(doc: dict[str, Any]) -> list[str] | None:
    """None if the parser accepts `doc`, else the paths it names."""
    try:
        parse_policy(doc)
    except SpecErrors as exc:
        return [e.path for e in exc.errors]
    return None


def short(value: Any) -> str:
    """The document for a failure message, long strings cut (a 4096-character query hides the field at fault)."""

    def cut(v: Any) -> Any:
        if isinstance(v, str) and len(v) > 40:
            return f"{v[:20]}...({len(v)} chars)"
        if isinstance(v, dict):
            return {k: cut(x) for k, x in v.items()}
        if isinstance(v, list):
            return [cut(x) for x in v[:8]]
        return v

    return json.dumps(cut(value))


def names_field(path: str, fields: set[str], message: str) -> bool:
    return (
        path in fields or any(f.startswith(path + ".") or path.startswith(f + ".") for f in fields) or (path in message)
    )


# --- the test ---------------------------------------------------------------------------------------------------------


def test_fuzzed_policies_are_judged_alike_by_the_api_server_and_the_parser(
    devcluster: DevCluster, livemig_crds: list[str]
) -> None:
    print(f"LIVEMIG_FUZZ_SEED={FUZZ_SEED}, {EXAMPLES} examples")
    send = dry_run_client(devcluster)
    tally: collections.Counter[str] = collections.Counter()
    disagreements: list[str] = []
    fields_rejected: collections.Counter[str] = collections.Counter()

    @seed(FUZZ_SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # every example is judged; disagreements are collected, not shrunk
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(policies())
    def judge(generated: dict[str, Any]) -> None:
        doc = json.loads(json.dumps(generated))  # what the server decodes: JSON types only
        code, status = send(doc)
        paths = parser_verdict(doc)
        tally["examples"] += 1
        if code == 201 and paths is None:
            tally["accepted by both"] += 1
            return
        if code == 201:
            disagreements.append(f"server accepted, parser rejected {paths}: {short(doc)}")
            return
        message = status.get("message", "")
        if code >= 500 or code not in (400, 422):
            disagreements.append(f"server answered {code}: {message[:300]}")
            return
        if paths is None:
            disagreements.append(f"parser accepted, server rejected ({message[:400]}): {short(doc)}")
            return
        fields = server_fields(status)
        if not fields:
            disagreements.append(f"server rejection names no field: {message[:400]}")
            return
        if not any(names_field(p, fields, message) for p in paths):
            disagreements.append(
                f"different fields: parser {paths}, server {sorted(fields)} ({message[:300]}): {short(doc)}"
            )
            return
        tally["rejected by both, same field"] += 1
        fields_rejected.update({re.sub(r"\[\d+\]", "[]", p) for p in paths})

    judge()
    print(dict(tally))
    print("fields named in rejections:", dict(fields_rejected.most_common()))
    for line in disagreements[:15]:
        print("DISAGREEMENT", line)
    assert tally["examples"] >= EXAMPLES
    assert not disagreements, f"{len(disagreements)} disagreements between the API server and the parser"
    assert tally["accepted by both"] >= EXAMPLES // 10, "too few valid documents generated to mean anything"
    assert tally["rejected by both, same field"] >= EXAMPLES // 10
