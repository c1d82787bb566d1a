"""Post-copy (Hines & Gopalan 2009) as KubeVirt reaches it.

KubeVirt cannot request post-copy directly: with allowPostCopy it switches at the completion timeout, so livemig sets
completionTimeoutPerGiB of its post-copy policy (default 1) and the switch happens at T = that x ceil(M / 10^9) s, or
never if pre-copy completes first.  At the switch the guest stops for the CPU/device state (S/R + T_res: the
downtime), resumes on the target, and every page not yet up to date there (the unsent rest of the current pass plus
the pages dirtied since the last sync) is pulled exactly once at the link rate.  During that phase the VM is lost if
the link fails (risk window) and its vCPUs stall on remote page faults (a fraction of the time, from the lab).
"""

from __future__ import annotations

from livemig.core.units import completion_timeout_s


def switch_time_s(post_copy_timeout_per_gib: float, memory_bytes: float) -> float:
    """When KubeVirt switches to post-copy under livemig's post-copy policy (0: at once, as in the papers)."""
    return completion_timeout_s(post_copy_timeout_per_gib, memory_bytes)


def post_copy_bytes(pass_left_bytes: float, dirty_bytes: float, held_bytes: float, memory_bytes: float) -> float:
    """Pages not yet up to date on the target at the switch: each is sent once, never more than all of memory."""
    return min(memory_bytes, pass_left_bytes + dirty_bytes + held_bytes)
