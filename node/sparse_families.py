"""Which users have any key in the families most users never have: mutes and blocks (U, V, W) and
the hot registry (H). A timeline read asks here before it looks in the store: for almost every
reader the answer is no, and the read skips three relation scans and a registry get (measured on
a node's store with cold caches, as a read between gRPC calls finds them: the three scans took
~40 us of a ~125 us inbox read). A listing of the hot registry likewise seeks only the partitions
that may hold an entry: every feed layer polls every node's list twice a second, and a seek into
each of 1,024 partitions was among the longest stalls (over 15 ms) of a loaded node's event loop,
measured under the bench's open-loop workload.

The answer may be a false yes, never a false no. A user is added when any write puts a key of
theirs in one of these families (every write of a node goes through its ObservedStore: batches,
a transfer's raw copy, a repair's merge), and at start from a scan of these families; nobody is
removed (a user whose mutes were all undone is scanned, and nothing is found). Until the start-up
scan is done (`load`), every answer is yes.
"""

from __future__ import annotations

from collections.abc import Iterable

from node import keys
from node.store import Store

__all__ = ["SparseFamilies", "SPARSE"]

SPARSE = (keys.MUTES, keys.BLOCKS, keys.BLOCKED_BY, keys.HOT_REGISTRY)
_FAMILY_BYTES = frozenset(f[0] for f in SPARSE)


class SparseFamilies:
    def __init__(self) -> None:
        self._users: dict[bytes, set[bytes]] = {family: set() for family in SPARSE}
        self._partitions: dict[bytes, set[int]] = {family: set() for family in SPARSE}
        self.loaded = False

    def noted(self, puts: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """`puts` (as a list, to be written next): each sparse-family key's user is added first,
        so no read can miss a key once it is in the store."""
        puts = puts if isinstance(puts, list) else list(puts)
        for key, _ in puts:
            if len(key) > 2 and key[2] in _FAMILY_BYTES and not keys.is_node_wide(key):
                self._users[key[2:3]].add(keys.user_of(key))
                self._partitions[key[2:3]].add(keys.partition_of_key(key))
        return puts

    def load(self, store: Store, partitions: int) -> None:
        """Adds the users of every sparse-family key already stored (at start, before reads)."""
        for part in range(partitions):
            for family in SPARSE:
                prefix = keys.family_prefix(part, family)
                found = {keys.user_of(key) for key in store.scan_keys(prefix)}
                if found:
                    self._users[family] |= found
                    self._partitions[family].add(part)
        self.loaded = True

    def may_have(self, family: bytes, user: str) -> bool:
        """False only if the user has no key in `family` (SPARSE) on this node."""
        return not self.loaded or user.encode("utf-8") in self._users[family]

    def partitions_of(self, family: bytes, partitions: Iterable[int]) -> list[int]:
        """Those of `partitions` that may hold a `family` key (all of them until `load`)."""
        if not self.loaded:
            return sorted(partitions)
        return sorted(set(partitions) & self._partitions[family])

    def users(self) -> int:
        return sum(len(users) for users in self._users.values())
