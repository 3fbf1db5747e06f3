"""The bench cluster's server processes and their CPU time (from /proc)."""

from __future__ import annotations

import os

from ops.local_cluster import LocalCluster

__all__ = ["cpu_seconds", "resident_bytes", "server_pids"]


def cpu_seconds(pid: int) -> float:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_bytes(pid: int) -> tuple[int, int]:
    """(anonymous, file-backed) resident memory. LevelDB maps its table files into memory, so a
    node's file-backed part grows with its data (and the kernel reclaims it when memory is short);
    a leak shows in the anonymous part."""
    anon = mapped = 0
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1]) * 1024
            elif line.startswith("RssFile:"):
                mapped = int(line.split()[1]) * 1024
    except OSError:
        pass
    return anon, mapped


def server_pids(cluster: LocalCluster) -> dict[str, int]:
    """Every server process: nodes by id, router workers as router-<id>/<n>."""
    pids: dict[str, int] = {}
    for proc in cluster.processes:
        pid = cluster.pid(proc.name)
        if pid is None:
            continue
        children = _children(pid)
        if children:
            pids.update({f"{proc.name}/{i}": child for i, child in enumerate(children)})
        else:
            pids[proc.name] = pid
    return pids


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []
