"""A server's start-up objects are exempt from garbage collection (common/heap.py), new garbage is
still collected, and every collection's pause is counted. Runs in a child process: freezing the
test runner's own heap would outlive the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import gc, json, time
import node.server, router.server  # everything a node and a router import
from common.heap import GC_PAUSE, freeze_long_lived

def full_collection_ms():
    started = time.perf_counter(); gc.collect(); return (time.perf_counter() - started) * 1000

tracked_before, ms_before = len(gc.get_objects()), min(full_collection_ms() for _ in range(3))
frozen = freeze_long_lived()
tracked_after, ms_after = len(gc.get_objects()), min(full_collection_ms() for _ in range(3))

class Node:  # a reference cycle made after the freeze: garbage a collection must still find
    pass
a, b = Node(), Node()
a.other, b.other = b, a
del a, b
collected = gc.collect()
pauses = sum(s.value for m in GC_PAUSE.collect() for s in m.samples if s.name.endswith("_count"))
print(json.dumps(dict(tracked_before=tracked_before, tracked_after=tracked_after, frozen=frozen,
                      ms_before=ms_before, ms_after=ms_after, collected=collected, pauses=pauses)))
"""


def test_start_up_objects_leave_the_collector_and_new_garbage_is_still_collected() -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["tracked_before"] > 10_000, seen  # the imports alone
    assert seen["frozen"] >= seen["tracked_before"] * 0.9, seen
    assert seen["tracked_after"] < seen["tracked_before"] / 10, seen  # what a full collection still walks
    assert seen["ms_after"] < seen["ms_before"], seen
    assert seen["collected"] >= 2, seen  # the cycle made after the freeze
    assert seen["pauses"] >= 4, seen  # the three timed full collections and the last one, at least
