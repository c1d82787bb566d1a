"""The local control plane (etcd + kube-apiserver built from Go modules) for tests, the demo and benchmarks."""

from livemig.devcluster.binaries import BinariesMissingError, control_plane_bin_dir
from livemig.devcluster.cluster import DevCluster, DevClusterError, DevClusterState, free_loopback_port

__all__ = [
    "BinariesMissingError",
    "DevCluster",
    "DevClusterError",
    "DevClusterState",
    "control_plane_bin_dir",
    "free_loopback_port",
]
