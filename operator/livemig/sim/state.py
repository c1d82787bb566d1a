"""The simulated cluster: VMIs, nodes and migrations in memory, advanced by `Simulation.tick(now)`.

This is virt-controller's and virt-handler's logic without the API server: inputs arrive as method calls (a VMIM was
created or is being deleted, the KubeVirt CR or a MigrationPolicy changed, a fault was posted), and `tick` returns the
writes the engine must make (`Write` values) plus outcome records.  Time is always passed in (`now`, simulated
seconds), so tests drive it with a `ManualClock`.
"""

from __future__ import annotations

from livemig.sim.admission import Admission
from livemig.sim.failures import FailureHandling
from livemig.sim.inputs import Inputs
from livemig.sim.objects import MigrationState
from livemig.sim.rules import Phase
from livemig.sim.writes import TickResult


class Simulation(Inputs, Admission, FailureHandling):
    """All of the simulated cluster's state and KubeVirt's rules applied to it.

    The rules live in its bases, one concern a module (`Admission` brings `MigrationPhases` and `RunningMigrations`
    with it), all on the state of `base.SimulationBase`."""

    def tick(self, now: float) -> TickResult:
        self._fire_faults(now)
        self._node_lifecycle(now)
        for m in sorted(self.open.values(), key=lambda x: x.seq):
            if m.phase is Phase.UNSET:
                self._start_pending(m, now)
        self._handle_deletions(now)
        self._admit(now)
        self._evacuate(now)
        for m in sorted(self.open.values(), key=lambda x: x.seq):
            if not m.phase.is_final:
                self._advance(m, now)
        self._garbage_collect()
        writes, outcomes = tuple(self._writes), tuple(self._outcomes)
        self._writes.clear()
        self._outcomes.clear()
        return TickResult(writes, outcomes)

    def latest_handed_off(self) -> dict[str, MigrationState]:
        """Per VMI, the migration its `status.migrationState` describes: the newest one past the hand-off (KubeVirt
        replaces the struct there, so older ones are no longer visible on the VMI)."""
        out: dict[str, MigrationState] = {}
        for m in sorted(self.migrations.values(), key=lambda x: x.seq):
            if m.config is not None and m.vmi_key in self.vmis:
                out[m.vmi_key] = m
        return out
