"""Emulated hosts whose wall clocks disagree: a process started under libfaketime (LD_PRELOAD) sees
the real time shifted by a fixed offset, as a host whose NTP drifted would. Only the wall clock is
shifted (DONT_FAKE_MONOTONIC): timeouts and the event loop keep the real pace.

libfaketime's library comes with the `libfaketime` Python package (a dev dependency of feedring:
`make install` has it). ops/netcluster.py puts this prefix after `ip netns exec`, so a node gets
its own network and its own clock.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ops.local_cluster import ClusterStartError

__all__ = ["faketime_library", "skew_prefix", "offsets_for"]


def faketime_library() -> Path:
    spec = importlib.util.find_spec("libfaketime")
    if spec is None or spec.origin is None:
        raise ClusterStartError("skewed clocks need libfaketime: pip install libfaketime (make install has it)")
    library = Path(spec.origin).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    if not library.exists():
        raise ClusterStartError(f"the libfaketime package has no {library.name} at {library.parent}")
    return library


def skew_prefix(offset_s: float) -> list[str]:
    """What a command runs under to see the wall clock `offset_s` seconds off (+: ahead)."""
    if not offset_s:
        return []
    return [
        "env",
        f"LD_PRELOAD={faketime_library()}",
        f"FAKETIME={offset_s:+g}s",
        "DONT_FAKE_MONOTONIC=1",
    ]


def offsets_for(node_ids: list[str], skew_s: float) -> dict[str, float]:
    """Node clocks spread over [-skew_s, +skew_s]: the first ahead, the last behind, any between exact."""
    if not skew_s or not node_ids:
        return {}
    cycle = (skew_s, 0.0, -skew_s)
    offsets = {node_id: cycle[i % 3] for i, node_id in enumerate(node_ids)}
    offsets[node_ids[-1]] = -skew_s if len(node_ids) > 1 else skew_s
    return {n: o for n, o in offsets.items() if o}
