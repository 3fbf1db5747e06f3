"""The LevelDB key layout: partitions are contiguous, byte order is time order, prefixes are exact."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common import post_bytes
from node import keys
from protos import feed_pb2


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_post_keys_sort_like_post_ids(a: int, b: int) -> None:
    ka, kb = (keys.post_key(7, keys.INBOX, "alice", x) for x in (a, b))
    assert (ka < kb) == (a < b)
    assert keys.post_id_of(ka) == a


def test_a_user_prefix_never_matches_a_longer_name() -> None:
    ann = keys.user_prefix(3, keys.INBOX, "ann")
    assert not keys.post_key(3, keys.INBOX, "anna", 1).startswith(ann)
    assert keys.post_key(3, keys.INBOX, "ann", 1).startswith(ann)


def test_every_key_of_a_partition_shares_its_prefix_and_families_differ() -> None:
    made = [
        keys.post_key(513, keys.POSTS, "bob", 9),
        keys.edge_key(513, keys.FOLLOWERS, "bob", "alice"),
        keys.meta_key(513, "bob"),
        keys.registry_key(513, "bob"),
    ]
    assert all(k.startswith(keys.partition_prefix(513)) for k in made)
    assert len({keys.family_of(k) for k in made}) == 4
    assert not keys.CLUSTER_MAP_KEY.startswith(keys.partition_prefix(65534))


@given(st.integers(1, 2**64 - 1))
def test_the_id_of_an_encoded_post_is_read_without_decoding(post_id: int) -> None:
    raw = feed_pb2.Post(id=post_id, author="a", text="t").SerializeToString()
    assert post_bytes.post_id(raw) == post_id
