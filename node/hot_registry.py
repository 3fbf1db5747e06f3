"""The hot-user registry on a node (family H) and the salted keys' follower counts it decides on (S).

A user's registry entry lives on its home partition: its hot state (common/hot_state.py), whether a
configured hot user pinned it, and a version (last writer wins, node/versioned.py). A transition
starts where a follower count crosses a mark: the home key's own edges plus every salted key's
count, as each salted key's node last reported it (newest version per key wins, so reports may
repeat or arrive out of order). Routers poll the registry; its writes are counted here so that
the poll can be answered from a cache between them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from common.hot_state import HotPolicy, HotState, HotUser
from common.versions import VersionClock
from node import keys
from node.batch import SALT_COUNT, Batch, Batches
from node.sparse_families import SparseFamilies
from node.versioned import read_registry, registry_value

__all__ = ["HotRegistry"]

_HOT_LIST_MAX_AGE_S = 5.0


class HotRegistry:
    def __init__(
        self,
        batches: Batches,
        partition: Callable[[str], int],
        clock: VersionClock,
        policy: HotPolicy,
        sparse: SparseFamilies,
    ) -> None:
        self.batches = batches
        self.sparse = sparse  # who has a registry entry at all
        self.store = batches.store
        self.partition = partition
        self.clock = clock
        self.policy = policy
        self.generation = 0  # grows with every registry entry written here (a transfer brings
        # whole partitions, which changes the partitions a listing is for)
        self._hot_list: tuple[int, frozenset[int], float, list[HotUser]] | None = None

    # -- state -----------------------------------------------------------------------------------

    def state_in(self, batch: Batch, part: int, user: str) -> tuple[HotState, bool]:
        """(state, pinned) of a user, as `batch` sees it."""
        entry = read_registry(batch.get(keys.registry_key(part, user)))
        if entry is None:
            return HotState.NORMAL, False
        return HotState(entry.state), entry.pinned

    def state(self, user: str) -> HotState:
        if not self.sparse.may_have(keys.HOT_REGISTRY, user):
            return HotState.NORMAL  # no entry: what state_in would say, without a store read
        return self.state_in(self.batches.new(), self.partition(user), user)[0]

    def _set(self, batch: Batch, part: int, user: str, state: HotState, pinned: bool, version: int = 0) -> None:
        key = keys.registry_key(part, user)
        value = registry_value(int(state), pinned, version or self.clock.next())
        if not batch.put_new(key, value):
            batch.put(key, value)
        self.generation += 1

    def evaluate(self, batch: Batch, part: int, user: str, follower_count: int) -> HotState:
        """Starts a transition when the follower count crosses a mark (common/hot_state.py's policy)."""
        state, pinned = self.state_in(batch, part, user)
        after = self.policy.next_state(state, pinned, follower_count)
        if after is not state:
            self._set(batch, part, user, after, pinned)
        return after

    def set_state(
        self, user: str, state: HotState, expect: Iterable[HotState] = (), pin: bool = False, version: int = 0
    ) -> tuple[HotState, bool]:
        """Compare-and-set: with `expect`, only from one of those states (on the coordinating node).
        Without, the newest version wins (a replica applying what its coordinator decided).
        Returns (state, changed)."""
        version = self.clock.stamp(version)
        part = self.partition(user)
        batch = self.batches.new()
        entry = read_registry(batch.get(keys.registry_key(part, user)))
        current = HotState(entry.state) if entry else HotState.NORMAL
        pinned = entry.pinned if entry else False
        expected = set(expect)
        if expected and current not in expected:
            return current, False
        if not expected and entry is not None and entry.version >= version:
            return current, False
        self._set(batch, part, user, state, pinned or pin, version)
        batch.counters_of(part, user)
        batch.commit()
        return state, current != state

    # -- follower counts -------------------------------------------------------------------------

    def report_follower_count(self, user: str, salted_key: str, count: int, version: int) -> HotState:
        """A salted key's follower count, as its node reports it; the newest version wins."""
        part = self.partition(user)
        batch = self.batches.new()
        entry = keys.edge_key(part, keys.SALT_COUNTS, user, salted_key)
        raw = batch.get(entry)
        if raw is None or SALT_COUNT.unpack(raw)[1] < version:
            raw = SALT_COUNT.pack(count, version)
            if not batch.put_new(entry, raw):
                batch.put(entry, raw)
        home = batch.counters_of(part, user).follower_count
        state = self.evaluate(batch, part, user, home + self.salted_followers(part, user, {entry: raw}))
        batch.commit()
        return state

    def salted_followers(self, part: int, user: str, written: dict[bytes, bytes] | None = None) -> int:
        """The follower edges under a user's salted keys, as last reported to its home (with the
        reports `written` by a batch not yet committed)."""
        reports = dict(self.store.scan(keys.user_prefix(part, keys.SALT_COUNTS, user)))
        reports.update(written or {})
        return sum(SALT_COUNT.unpack(raw)[0] for raw in reports.values())

    def follower_count(self, user: str) -> int:
        """A user's followers: its home key's edges plus its salted keys' reported counts."""
        part = self.partition(user)
        counters = self.batches.user_counters(part, user)
        return (counters.follower_count if counters else 0) + self.salted_followers(part, user)

    # -- listing ---------------------------------------------------------------------------------

    def list_hot_users(self, partitions: Iterable[int]) -> list[HotUser]:
        """Every registry entry of `partitions`. Every router polls every node twice a second, and a
        scan costs one LevelDB seek per partition, so only partitions that may hold an entry are
        scanned (node/sparse_families.py), and the answer is kept until a write touches the
        registry (follower counts in it may lag by up to _HOT_LIST_MAX_AGE_S)."""
        parts = frozenset(partitions)
        generation, cached = self.generation, self._hot_list
        fresh = cached is not None and time.monotonic() - cached[2] < _HOT_LIST_MAX_AGE_S
        if cached is not None and fresh and cached[:2] == (generation, parts):
            return cached[3]
        entries = []
        for part in self.sparse.partitions_of(keys.HOT_REGISTRY, parts):
            for key, raw in self.store.scan(keys.registry_prefix(part)):
                user = keys.registry_user_of(key)
                entry = read_registry(raw)
                assert entry is not None
                entries.append(
                    HotUser(user, HotState(entry.state), entry.pinned, self.follower_count(user), entry.version)
                )
        self._hot_list = (generation, parts, time.monotonic(), entries)
        return entries

    # -- repair merge rules (node/repair.py) -----------------------------------------------------

    def merge_entry(self, key: bytes, value: bytes) -> int:
        """Another replica's registry entry: the newer version wins."""
        theirs, mine = read_registry(value), read_registry(self.store.get(key))
        if theirs is None or (mine is not None and mine.version >= theirs.version):
            return 0
        batch = self.batches.new()
        if not batch.put_new(key, value):
            batch.put(key, value)
        batch.counters_of(keys.partition_of_key(key), keys.registry_user_of(key))
        batch.commit()
        self.generation += 1
        return 1

    def merge_salt_count(self, key: bytes, value: bytes) -> int:
        """Another replica's report of a salted key's count: as if reported here (newer wins)."""
        mine = self.store.get(key)
        if mine is not None and SALT_COUNT.unpack(mine)[1] >= SALT_COUNT.unpack(value)[1]:
            return 0
        count, version = SALT_COUNT.unpack(value)
        self.report_follower_count(keys.user_of(key).decode("utf-8"), keys.other_user_of(key), count, version)
        return 1
