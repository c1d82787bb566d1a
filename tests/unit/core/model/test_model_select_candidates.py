"""Auto never picks a technique the model cannot be trusted on: XBZRLE (and the other modelled-only techniques).

The lab showed XBZRLE's real behaviour near its cache size to be noisy beyond what the model knows (docs/model.md,
"Where the model still misses"; docs/benchmarks.md, held-out downtime), and KubeVirt has no knob for it.
"""

from __future__ import annotations

import itertools

import pytest

from livemig.core.model import LinkParams, SelectionPolicy, VmParams, select_technique
from livemig.core.model.select import candidates
from livemig.core.vocabulary import Objective, Technique, TechniqueMode

AUTO_CANDIDATES = {Technique.PRE_COPY, Technique.AUTO_CONVERGE, Technique.POST_COPY}
MIB = 2**20


@pytest.mark.parametrize(
    ("mode", "allow_post_copy", "allow_auto_converge"),
    list(itertools.product(list(TechniqueMode), [False, True], [False, True])),
)
def test_no_policy_makes_a_modelled_only_technique_a_candidate(
    mode: TechniqueMode, allow_post_copy: bool, allow_auto_converge: bool
) -> None:
    policy = SelectionPolicy(mode=mode, allow_post_copy=allow_post_copy, allow_auto_converge=allow_auto_converge)
    chosen_from, _ = candidates(policy)
    assert chosen_from
    assert set(chosen_from) <= AUTO_CANDIDATES
    assert not policy.allows(Technique.XBZRLE)


@pytest.mark.parametrize("objective", list(Objective))
def test_auto_does_not_pick_xbzrle_even_where_the_model_predicts_it_best(objective: Objective) -> None:
    # Writes faster than the link into a hot set the XBZRLE cache mostly holds: pre-copy does not converge, and the
    # model's XBZRLE finishes faster than any candidate.
    vm = VmParams(memory_bytes=256 * MIB, dirty_rate_bps=160e6, working_set_bytes=48 * MIB)
    link = LinkParams(125e6)
    policy = SelectionPolicy(objective=objective, allow_post_copy=True, allow_auto_converge=True)
    selection = select_technique(vm, link, policy, compare_all=True)
    xbzrle = selection.predictions[Technique.XBZRLE]
    pre_copy = selection.predictions[Technique.PRE_COPY]
    assert xbzrle.outcome.succeeded
    assert not pre_copy.outcome.succeeded
    assert xbzrle.total_time_s < min(selection.predictions[t].total_time_s for t in AUTO_CANDIDATES)
    assert Technique.XBZRLE not in selection.candidates
    assert selection.chosen in AUTO_CANDIDATES
