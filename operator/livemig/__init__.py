"""livemig: live-migrates KubeVirt VMs for maintenance, evacuation, balancing and consolidation."""

__version__ = "0.1.0"
