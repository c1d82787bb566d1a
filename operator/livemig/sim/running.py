"""A Running migration stepped by the performance model: its link share, its start, each step in simulated time, and
how its end becomes the migration's outcome."""

from __future__ import annotations

from livemig.core.guest import guest_params
from livemig.core.model import LinkParams
from livemig.core.vocabulary import AbortReason, Outcome
from livemig.sim.backend import MigrationStart, backend_factory, settings_for, technique_for
from livemig.sim.faults import link_bandwidth_bps, link_failure_due
from livemig.sim.objects import MigrationState
from livemig.sim.outcomes import LINK_FAILURE_REASON, SOURCE_REPORTED_FAILED_REASON, VM_LOST_REASON, MigrationOutcomes
from livemig.sim.rules import Phase


class RunningMigrations(MigrationOutcomes):
    """virt-handler's side of a Running migration, with the model as its QEMU."""

    def _link_bandwidth(self, m: MigrationState, now: float, *, with_faults: bool = True) -> float:
        """Each node's link is shared by the migrations running from or to it; faults and the per-migration cap
        apply on top."""
        assert m.target_node is not None
        active: dict[str, int] = {}
        for other in self.open.values():
            if other.phase is Phase.RUNNING and other.target_node is not None:
                for node in (other.source_node, other.target_node):
                    active[node] = active.get(node, 0) + 1
        source = self.nodes[m.source_node].spec
        target = self.nodes[m.target_node].spec
        share = min(
            source.link_bandwidth_bps / max(1, active.get(source.name, 1)),
            target.link_bandwidth_bps / max(1, active.get(target.name, 1)),
        )
        rate = link_bandwidth_bps(self.faults, share, source.name, target.name, now) if with_faults else share
        cap = m.config.bandwidth_per_migration_bps if m.config is not None else 0
        return min(rate, float(cap)) if cap else rate

    def _start_running(self, m: MigrationState, now: float) -> None:
        assert m.config is not None
        vmi = self.vmis[m.vmi_key]
        m.technique = technique_for(m.config)
        spec = vmi.spec
        dirty = spec.usage.dirty_rate.value_at(now)
        vm = guest_params(
            spec,
            dirty_rate_bps=dirty,
            cpu_cores=spec.usage.cpu.value_at(now),
            memory_used_bytes=spec.usage.memory.value_at(now),
        )
        bandwidth = self._link_bandwidth(m, now)
        # A stalled link (slowLink factor 0) gives the model no rate to set a run up with: the run is set up at the
        # link's unfaulted rate, and its first step already moves at the stalled one.
        link = LinkParams(bandwidth_bps=bandwidth if bandwidth > 0 else self._link_bandwidth(m, now, with_faults=False))
        settings = settings_for(m.config)
        start = MigrationStart(vmi.key, m.technique, vm, link, settings)
        m.backend = backend_factory(spec.backend)(start)
        prediction = m.backend.predict()
        m.predicted = {
            "total_time_s": prediction.total_time_s,
            "downtime_s": prediction.downtime_s,
            "transferred_bytes": prediction.transferred_bytes,
            "outcome": str(prediction.outcome),
            "abort_reason": None if prediction.abort_reason is None else str(prediction.abort_reason),
        }
        m.running_since = now
        m.mode = "PreCopy"
        m.bandwidth_bps = bandwidth
        m.dirty_rate_bps = dirty
        self._set_phase(m, Phase.RUNNING, now)
        self._vmi_event(m, "Migrating", "VirtualMachineInstance is migrating.")
        self._publish(m, now)

    def _step_running(self, m: MigrationState, now: float) -> None:
        assert m.backend is not None
        assert m.running_since is not None
        vmi = self.vmis[m.vmi_key]
        for i, fault in enumerate(self.faults):
            if i not in self.fired and link_failure_due(fault, m.vmi_key, m.running_since, now):
                self.fired.add(i)
                self.faults_fired[fault.type.value] += 1
                m.backend.fail_link()
                m.last = m.backend.state()
        elapsed = m.last.elapsed_s if m.last is not None else 0.0
        target_elapsed = now - m.running_since
        step = self.settings.step_s
        while (m.last is None or not m.last.done) and elapsed < target_elapsed - 1e-9:
            dt = min(step, target_elapsed - elapsed)
            t = m.running_since + elapsed + dt
            m.dirty_rate_bps = vmi.spec.usage.dirty_rate.value_at(t)
            m.bandwidth_bps = self._link_bandwidth(m, t)
            m.last = m.backend.advance(dt, dirty_rate_bps=m.dirty_rate_bps, bandwidth_bps=m.bandwidth_bps)
            if m.last.elapsed_s <= elapsed:  # a backend that does not move time would loop forever
                break
            elapsed = m.last.elapsed_s
        if m.last is None:
            return
        vmi.throttle = float(m.last.throttle or 0.0)
        m.max_throttle = max(m.max_throttle, vmi.throttle)
        mode = str(m.last.mode)
        vmi.paused = mode == "Paused"
        if mode != m.mode and not m.last.done:
            m.mode = mode
            self._vmi_patch(vmi, {"status": {"migrationState": self._migration_state_manifest(m, now)}})
        if m.last.done:
            self._finish_running(m, min(now, m.running_since + m.last.elapsed_s))

    def _finish_running(self, m: MigrationState, end: float) -> None:
        assert m.last is not None
        assert m.config is not None
        vmi = self.vmis[m.vmi_key]
        outcome = Outcome(m.last.outcome) if m.last.outcome is not None else Outcome.FAILED
        vmi.throttle = 0.0
        vmi.paused = False
        mode = str(m.last.mode)
        if mode in ("PreCopy", "PostCopy", "Paused"):
            m.mode = mode
        if outcome.succeeded:
            m.outcome = outcome
            m.end_at = end
            self._succeed(m, end)
            return
        abort_reason = getattr(m.last, "abort_reason", None)
        if outcome is Outcome.ABORTED:
            m.abort_status = "Succeeded"
            reason = _abort_message(abort_reason, m, self.vmis[m.vmi_key].spec.memory_bytes)
        else:
            reason = LINK_FAILURE_REASON
            if m.last.vm_lost or m.mode == "PostCopy":
                m.vm_lost = True
                reason = VM_LOST_REASON
        # The source virt-handler reports it in migrationState.failed; the controller's event says only that.
        self._fail(m, end, reason, outcome=outcome, abort_reason=abort_reason, event=SOURCE_REPORTED_FAILED_REASON)


def _abort_message(reason: object, m: MigrationState, memory_bytes: float) -> str:
    from livemig.core.units import completion_timeout_s

    if reason == AbortReason.COMPLETION_TIMEOUT and m.config is not None:
        limit = completion_timeout_s(m.config.completion_timeout_per_gib, memory_bytes)
        return f"Live migration is not completed after {int(limit)} seconds and has been aborted"
    if reason == AbortReason.PROGRESS_TIMEOUT and m.config is not None:
        return f"Live migration stuck for {m.config.progress_timeout_s} seconds and has been aborted"
    return "Live migration aborted "  # sic, trailing space: live-migration-source.go (v1.5.0-v1.8.0)
