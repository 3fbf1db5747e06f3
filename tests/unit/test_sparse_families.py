"""The index of who has mutes, blocks or a hot registry entry (node/sparse_families.py): a read
skips the store for everyone else, so it must never say "no" for a user whose key was written by
any path: the API's own batches, a transfer's raw copy, a repair merge, or a run before a restart."""

from __future__ import annotations

from common.hot_state import HotState
from node import keys
from node.change_feed import ChangeFeed, ObservedStore
from node.feed_store import FeedStore
from node.store import MemoryStore
from protos import storage_pb2

PARTITIONS = 16


def feed_store(inner: MemoryStore, loaded: bool = True) -> FeedStore:
    """A node's FeedStore as node/build.py wires it, its index loaded as at start."""
    observed = ObservedStore(inner, ChangeFeed())
    data = FeedStore(observed, PARTITIONS, timeline_cap=800, sparse=observed.sparse)
    if loaded:
        data.sparse.load(observed, PARTITIONS)
    return data


def test_a_reader_with_no_relations_is_answered_without_a_scan_and_a_mute_is_seen_at_once() -> None:
    data = feed_store(MemoryStore())
    assert not data.sparse.may_have(keys.MUTES, "ann")
    assert data.relations.hidden_from("ann") == set()
    data.relations.change("ann", storage_pb2.MUTES, "bob", True)
    assert data.sparse.may_have(keys.MUTES, "ann")
    assert not data.sparse.may_have(keys.BLOCKS, "ann")  # per family: the other scans stay skipped
    assert data.relations.hidden_from("ann") == {b"bob"}
    data.relations.change("ann", storage_pb2.MUTES, "bob", False)
    assert data.relations.hidden_from("ann") == set()  # still indexed (a false yes): scanned, none live


def test_keys_copied_raw_by_a_transfer_or_merged_by_repair_are_seen() -> None:
    source = feed_store(MemoryStore())
    source.relations.change("cy", storage_pb2.BLOCKS, "dee", True)
    source.relations.change("eve", storage_pb2.MUTES, "fay", True)
    source.registry.set_state("gil", HotState.HOT, pin=True)
    part = source.partition
    target = feed_store(MemoryStore())
    # A transfer writes the partition's keys as they are (node/transfer.py).
    cy_prefix = keys.partition_prefix(part("cy"))
    gil_prefix = keys.partition_prefix(part("gil"))
    copied = list(source.store.scan(cy_prefix)) + list(source.store.scan(gil_prefix))
    assert isinstance(target.store, ObservedStore)
    target.store.write_unpublished(copied, [])
    assert target.relations.hidden_from("cy") == {b"dee"}
    assert target.registry.state("gil") is HotState.HOT
    # Repair merges one key at a time through the family's rule.
    mute = keys.edge_key(part("eve"), keys.MUTES, "eve", "fay")
    target.merge_rules()[keys.MUTES](mute, source.store.get(mute) or b"")
    assert target.relations.hidden_from("eve") == {b"fay"}


def test_after_a_restart_the_start_up_scan_finds_what_the_last_run_wrote() -> None:
    inner = MemoryStore()
    before = feed_store(inner)
    before.relations.change("hal", storage_pb2.BLOCKED_BY, "ivy", True)
    before.registry.set_state("jo", HotState.HOT, pin=True)
    restarted = feed_store(inner, loaded=False)
    assert restarted.sparse.may_have(keys.MUTES, "kim")  # not loaded yet: every answer is "maybe"
    assert restarted.relations.hidden_from("hal") == {b"ivy"}
    restarted.sparse.load(restarted.store, PARTITIONS)
    assert restarted.sparse.may_have(keys.BLOCKED_BY, "hal")
    assert restarted.relations.hidden_from("hal") == {b"ivy"}
    assert restarted.registry.state("jo") is HotState.HOT
    assert not restarted.sparse.may_have(keys.HOT_REGISTRY, "hal")
    assert restarted.registry.state("hal") is HotState.NORMAL


def test_the_hot_list_reads_only_partitions_holding_an_entry_and_misses_none() -> None:
    inner = MemoryStore()
    data = feed_store(inner)
    users = ["kai", "lu", "max"]
    for user in users:
        data.registry.set_state(user, HotState.HOT, pin=True)
    everywhere = range(PARTITIONS)
    holding = sorted({data.partition(u) for u in users})
    assert data.sparse.partitions_of(keys.HOT_REGISTRY, everywhere) == holding
    assert sorted(h.user for h in data.registry.list_hot_users(everywhere)) == users
    # After a restart, from the start-up scan (before it, every partition is read).
    restarted = feed_store(inner, loaded=False)
    assert restarted.sparse.partitions_of(keys.HOT_REGISTRY, everywhere) == list(everywhere)
    restarted.sparse.load(restarted.store, PARTITIONS)
    assert restarted.sparse.partitions_of(keys.HOT_REGISTRY, everywhere) == holding
    assert sorted(h.user for h in restarted.registry.list_hot_users(everywhere)) == users
    # Only the partitions asked about: a node lists what it owns.
    assert restarted.sparse.partitions_of(keys.HOT_REGISTRY, holding[:1]) == holding[:1]
