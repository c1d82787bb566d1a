"""A move's KubeVirt objects and reading a finished migration back (core.actuation)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from livemig.core.actuation import (
    MOVE_LABEL,
    MoveRequest,
    kv_migration_policy,
    read_result,
    supports_added_node_selector,
    technique_settings,
    vmim_manifest,
    vmim_name,
)
from livemig.core.kubevirt import match_kv_migration_policy, parse_kv_migration_policy
from livemig.core.vocabulary import AbortReason, Outcome, Technique

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def request(technique: Technique = Technique.PRE_COPY, **kw: object) -> MoveRequest:
    base: dict[str, object] = dict(
        policy="drain",
        namespace="prod",
        vmi="web-01",
        source="n1",
        target="n2",
        technique=technique,
        reason="r",
        technique_reason="t",
        predicted_time_s=10.0,
        predicted_downtime_s=0.2,
        plan_id="plan-x",
    )
    base.update(kw)
    return MoveRequest(**base)  # type: ignore[arg-type]


def test_vmim_names_are_deterministic_short_and_valid_label_values() -> None:
    assert vmim_name(request()) == vmim_name(request())
    long = request(vmi="a" * 200 + "-Z.x")
    for r in (request(), long):
        name = vmim_name(r)
        assert len(name) <= 63
        assert LABEL_VALUE.match(name)
        assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name), "a DNS-1123 label (a valid object name)"
    # A retry after a finished migration (a new history tag) or another target is another migration.
    assert vmim_name(request(history_tag="lm-web-01-aaaa")) != vmim_name(request())
    assert vmim_name(request(target="n3")) != vmim_name(request())


def test_technique_switches_are_explicit() -> None:
    assert technique_settings(request()) == {
        "allowPostCopy": False,
        "allowAutoConverge": False,
        "allowWorkloadDisruption": False,
    }
    post = technique_settings(request(Technique.POST_COPY, completion_timeout_per_gib=150))
    assert post["allowPostCopy"] is True
    assert post["allowWorkloadDisruption"] is True
    assert post["completionTimeoutPerGiB"] == 1, "post-copy switches at the completion timeout: livemig lowers it"
    ac = technique_settings(request(Technique.AUTO_CONVERGE, bandwidth_per_migration_bps=64 * 2**20))
    assert ac["allowAutoConverge"] is True
    assert ac["bandwidthPerMigration"] == str(64 * 2**20)


def test_vmim_pins_the_target_only_where_kubevirt_has_added_node_selector() -> None:
    assert vmim_manifest(request(), "m")["spec"] == {
        "vmiName": "web-01",
        "addedNodeSelector": {"kubernetes.io/hostname": "n2"},
    }
    assert vmim_manifest(request(), "m", pin_target=False)["spec"] == {"vmiName": "web-01"}
    assert supports_added_node_selector("v1.6.0")
    assert supports_added_node_selector("v1.8.4")
    assert not supports_added_node_selector("v1.5.2")
    assert supports_added_node_selector(None)


labels = st.dictionaries(
    st.sampled_from(["app", "tier", "team", "kubevirt.io/nodeName", "env"]),
    st.sampled_from(["a", "b", "c"]),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    vmi_labels=labels,
    ns_labels=labels,
    users=st.lists(st.tuples(labels, labels, st.text("abz-", min_size=1, max_size=8)), max_size=6),
)
def test_livemigs_kubevirt_policy_outranks_every_user_policy_under_kubevirts_matcher(
    vmi_labels: dict[str, str], ns_labels: dict[str, str], users: list[tuple[dict[str, str], dict[str, str], str]]
) -> None:
    """KubeVirt's matcher (most matching labels, then VMI labels, then name): livemig's policy wins for the VMI it
    labelled, whatever user policies exist (user policies cannot know livemig's per-move label)."""
    name = vmim_name(request())
    on_vmi = {**vmi_labels, MOVE_LABEL: name}
    ours = parse_kv_migration_policy(kv_migration_policy(request(), name, on_vmi, ns_labels))
    theirs = [
        parse_kv_migration_policy(
            {
                "metadata": {"name": f"{n}-{i}"},
                "spec": {"selectors": {"virtualMachineInstanceSelector": v, "namespaceSelector": s}},
            }
        )
        for i, (v, s, n) in enumerate(users)
    ]
    # A user policy that selects a subset of what the VMI carries matches too, with fewer labels.
    theirs.append(
        parse_kv_migration_policy(
            {
                "metadata": {"name": "a"},
                "spec": {
                    "selectors": {
                        "virtualMachineInstanceSelector": dict(vmi_labels),
                        "namespaceSelector": dict(ns_labels),
                    }
                },
            }
        )
    )
    chosen = match_kv_migration_policy([*theirs, ours], on_vmi, ns_labels)
    assert chosen is not None
    assert chosen.name == ours.name


def vmim(phase: str, state: dict[str, object]) -> dict[str, object]:
    return {
        "metadata": {
            "name": "lm-web-01-x",
            "namespace": "prod",
            "labels": {"app.kubernetes.io/managed-by": "livemig", "livemig.io/policy": "drain"},
            "annotations": {
                "livemig.io/target": "n2",
                "livemig.io/technique": "pre-copy",
                "livemig.io/kv-policy": "livemig-lm-web-01-x",
                "livemig.io/predicted-duration": "10.0",
            },
        },
        "spec": {"vmiName": "web-01"},
        "status": {"phase": phase, "migrationState": state},
    }


def test_reading_kubevirts_outcomes() -> None:
    done = read_result(
        vmim(
            "Succeeded",
            {
                "mode": "PreCopy",
                "sourceNode": "n1",
                "targetNode": "n2",
                "startTimestamp": "2026-01-01T00:00:00Z",
                "endTimestamp": "2026-01-01T00:00:12Z",
                "migrationPolicyName": "livemig-lm-web-01-x",
                "completed": True,
            },
        )
    )
    assert done is not None
    assert done.outcome is Outcome.COMPLETED
    assert done.duration_s == 12.0
    assert not done.policy_mismatch
    post = read_result(vmim("Succeeded", {"mode": "PostCopy", "migrationPolicyName": "someone-else"}))
    assert post is not None
    assert post.outcome is Outcome.SWITCHED_TO_POST_COPY
    assert post.policy_mismatch, "KubeVirt applied another policy: reported"
    for reason, expected in (
        ("Live migration is not completed after 1350 seconds and has been aborted", AbortReason.COMPLETION_TIMEOUT),
        ("Live migration stuck for 150 seconds and has been aborted", AbortReason.PROGRESS_TIMEOUT),
        ("Live migration aborted ", AbortReason.REQUESTED),
    ):
        result = read_result(vmim("Failed", {"failed": True, "abortStatus": "Succeeded", "failureReason": reason}))
        assert result is not None
        assert result.outcome is Outcome.ABORTED
        assert result.abort_reason is expected
    # v1.6+: a failure leaves `completed` false; livemig keys on the phase, not on `completed`.
    broken = read_result(
        vmim("Failed", {"failed": True, "completed": False, "failureReason": "Live migration failed: connection lost"})
    )
    assert broken is not None
    assert broken.outcome is Outcome.FAILED
    assert read_result(vmim("Running", {"completed": False})) is None
