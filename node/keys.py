"""Every LevelDB key a node writes, in one place. Nobody concatenates key bytes elsewhere.

A key starts with its partition (2 bytes, big-endian), so one partition is one contiguous range and
moving it means streaming that range. Then one byte names the data family:

    family     key                                            value
    P posts    part | 'P' | author_key  0x00 | post_id (8B BE)   Post (protobuf)
    I inbox    part | 'I' | consumer    0x00 | post_id (8B BE)   Post (protobuf, a copy)
               part | 'I' | consumer    0x00 | post_id | 'x'     b""  (inbox tombstone: right after
                                                              its entry, so a newest-first scan
                                                              meets it first and skips the entry)
               part | 'I' | consumer    0x00 | 0xFF x 8 | 'u' | author
                                                              unfollow mark: ms (8B BE); above every
                                                              entry, so a newest-first scan meets
                                                              the marks first and skips the
                                                              author's entries below them
    X deleted  part | 'X' | consumer    0x00 | post_id (8B BE)   (format 1 only: inbox tombstones
                                                              before they moved beside their
                                                              entries; node/store_format.py)
    Y removed  part | 'Y' | author_key  0x00 | post_id (8B BE)   b""  (post tombstone)
    F follower part | 'F' | followee_key 0x00 | follower         versioned edge (node/versioned.py)
    G follows  part | 'G' | follower    0x00 | followee          versioned edge + followee key
    K hot      part | 'K' | follower    0x00 | followee          versioned edge (merged at read)
    M meta     part | 'M' | user_key                             counters (5 x u64 BE)
    H hot reg. part | 'H' | user                                 state, pinned, version (10 bytes)
    D deliver  part | 'D' | author_key  0x00 | post_id (8B BE) | kind (1B)
                                                              Delivery (protobuf): work owed
    S salted   part | 'S' | user        0x00 | salted_key      count, version (2 x u64 BE): a
                                                              salted key's followers, as reported
    R request  part | 'R' | author_key  0x00 | request_id      post id (8B BE): the post a client's
                                                              Post request_id was stored as
    U muted    part | 'U' | user        0x00 | target          versioned edge: user mutes target
    V blocks   part | 'V' | user        0x00 | target          versioned edge: user blocked target
    W blocked  part | 'W' | user        0x00 | blocker         versioned edge: blocker blocked user
               (U, V and W sit beside the user's inbox: one node filters a timeline read with them
               and refuses a follow across a block in the follow edge's own batch)
    A active   part | 'A' | user                             last timeline read: ms (8B BE) and
                                                              phase (1B: 0 rebuilding, 1 done);
                                                              the newest (ms, phase) wins

The value of a G edge ends with the followee key its F edge was written under ("" before that was
kept). Node-wide records live under 0xFFFF: the cluster map, the store's format version
(node/store_format.py), and hints (writes held for a replica that did not answer, node/hints.py):
0xFFFF | 'h' | target node id 0x00 | sequence (8B BE).

User ids never contain 0x00, so ``user 0x00`` ends every user prefix exactly ("ann" never matches
"anna"). Post ids are big-endian so byte order is time order: iterating an inbox or an author's
posts in reverse yields newest first. Node-wide records (the cluster map) live under 0xFFFF, above
every partition id (partitions are at most 65535, so ids stop at 0xFFFE).
"""

from __future__ import annotations

import struct

__all__ = [
    "POSTS",
    "INBOX",
    "DELETED",
    "POST_TOMBSTONES",
    "FOLLOWERS",
    "FOLLOWING",
    "META",
    "HOT_FOLLOWING",
    "HOT_REGISTRY",
    "DELIVERIES",
    "SALT_COUNTS",
    "REQUESTS",
    "MUTES",
    "BLOCKS",
    "BLOCKED_BY",
    "RELATIONS",
    "ACTIVITY",
    "activity_key",
    "FAMILY_NAMES",
    "CLUSTER_MAP_KEY",
    "HINTS_PREFIX",
    "hint_prefix",
    "hint_key",
    "FORMAT_KEY",
    "HEARTBEAT_KEY",
    "DISK_PROBE_KEY",
    "TOMBSTONE_SUFFIX",
    "inbox_prefixes",
    "encoded_post_id",
    "inbox_tombstone_key",
    "inbox_key_kind",
    "inbox_unfollow_mark_key",
    "UNFOLLOW_MARK",
    "INBOX_ENTRY",
    "INBOX_TOMBSTONE",
    "INBOX_MARK",
    "inbox_prefix_of",
    "old_tombstone_to_inbox",
    "partition_prefix",
    "user_prefix",
    "post_key",
    "edge_key",
    "meta_key",
    "registry_key",
    "registry_prefix",
    "delivery_key",
    "request_key",
    "family_prefix",
    "post_id_of",
    "decode_post_id",
    "edge_user_of",
    "family_of",
    "partition_of_key",
    "user_of",
    "other_user_of",
    "registry_user_of",
    "meta_user_of",
    "delivery_parts",
    "hint_target_of",
    "hint_sequence_of",
    "is_node_wide",
]

POSTS = b"P"
INBOX = b"I"
DELETED = b"X"
POST_TOMBSTONES = b"Y"
FOLLOWERS = b"F"
FOLLOWING = b"G"
META = b"M"
HOT_FOLLOWING = b"K"
HOT_REGISTRY = b"H"
DELIVERIES = b"D"
SALT_COUNTS = b"S"
REQUESTS = b"R"
MUTES = b"U"
BLOCKS = b"V"
BLOCKED_BY = b"W"
RELATIONS = (MUTES, BLOCKS, BLOCKED_BY)  # what hides one user's posts from another's timeline
ACTIVITY = b"A"

FAMILY_NAMES = {
    POSTS: "posts",
    INBOX: "inbox",
    DELETED: "inbox_tombstones",
    POST_TOMBSTONES: "post_tombstones",
    FOLLOWERS: "followers",
    FOLLOWING: "following",
    META: "users",
    HOT_FOLLOWING: "hot_following",
    HOT_REGISTRY: "hot_registry",
    DELIVERIES: "deliveries",
    SALT_COUNTS: "salted_counts",
    REQUESTS: "post_requests",
    MUTES: "mutes",
    BLOCKS: "blocks",
    BLOCKED_BY: "blocked_by",
    ACTIVITY: "readers",
}

CLUSTER_MAP_KEY = b"\xff\xff" + b"cluster_map"
FORMAT_KEY = b"\xff\xff" + b"format"
DISK_PROBE_KEY = b"\xff\xff" + b"disk_probe"  # written to learn whether the disk takes writes again
HEARTBEAT_KEY = b"\xff\xff" + b"alive_at"  # ms (8B BE): the node ran then (node/heartbeat.py; not "h": hints)
HINTS_PREFIX = b"\xff\xffh"
TOMBSTONE_SUFFIX = b"x"  # after an inbox entry's key: its tombstone
UNFOLLOW_MARK = b"\xff" * 8 + b"u"  # after an inbox's prefix, before an author: an unfollow mark
INBOX_ENTRY, INBOX_TOMBSTONE, INBOX_MARK = 0, 1, 2  # what an inbox key is (inbox_key_kind)

_PARTITION = struct.Struct(">H")
_POST_ID = struct.Struct(">Q")


def partition_prefix(partition: int) -> bytes:
    return _PARTITION.pack(partition)


def user_prefix(partition: int, family: bytes, user_key: str) -> bytes:
    """All keys of one user in one family: the range to scan for a timeline, posts or edges."""
    return _PARTITION.pack(partition) + family + user_key.encode("utf-8") + b"\x00"


def post_key(partition: int, family: bytes, user_key: str, post_id: int) -> bytes:
    return user_prefix(partition, family, user_key) + _POST_ID.pack(post_id)


def inbox_prefixes(partition: int, consumer: str) -> tuple[bytes, bytes]:
    """The fan-out's hot loop builds its keys from these: (the consumer's following-edge prefix, to
    which a followee's id is appended; the consumer's inbox prefix, to which an encoded post id is)."""
    part = _PARTITION.pack(partition)
    user = consumer.encode("utf-8") + b"\x00"
    return part + FOLLOWING + user, part + INBOX + user


def encoded_post_id(post_id: int) -> bytes:
    return _POST_ID.pack(post_id)


def inbox_tombstone_key(partition: int, consumer: str, post_id: int) -> bytes:
    return post_key(partition, INBOX, consumer, post_id) + TOMBSTONE_SUFFIX


def inbox_unfollow_mark_key(partition: int, consumer: str, author: str) -> bytes:
    return user_prefix(partition, INBOX, consumer) + UNFOLLOW_MARK + author.encode("utf-8")


def inbox_key_kind(key: bytes, prefix_len: int) -> tuple[bytes, int]:
    """(encoded post id, or for a mark its author; INBOX_ENTRY, INBOX_TOMBSTONE or INBOX_MARK) of an
    inbox key whose consumer prefix (user_prefix, inbox_prefixes) is `prefix_len` bytes long."""
    if len(key) == prefix_len + 8:
        return key[prefix_len:], INBOX_ENTRY
    if key[prefix_len : prefix_len + 9] == UNFOLLOW_MARK:
        return key[prefix_len + 9 :], INBOX_MARK
    return key[prefix_len : prefix_len + 8], INBOX_TOMBSTONE


def inbox_prefix_of(key: bytes) -> bytes:
    """The consumer prefix of an inbox key (everything up to the post id)."""
    return key[: key.index(b"\x00", 3) + 1]


def old_tombstone_to_inbox(key: bytes) -> bytes:
    """Format 1's tombstone key (family X) as format 2's (beside its entry, family I)."""
    return key[:2] + INBOX + key[3:] + TOMBSTONE_SUFFIX


def edge_key(partition: int, family: bytes, user_key: str, other: str) -> bytes:
    return user_prefix(partition, family, user_key) + other.encode("utf-8")


def meta_key(partition: int, user_key: str) -> bytes:
    return _PARTITION.pack(partition) + META + user_key.encode("utf-8")


def registry_key(partition: int, user: str) -> bytes:
    return _PARTITION.pack(partition) + HOT_REGISTRY + user.encode("utf-8")


def registry_prefix(partition: int) -> bytes:
    return family_prefix(partition, HOT_REGISTRY)


def activity_key(partition: int, user: str) -> bytes:
    return _PARTITION.pack(partition) + ACTIVITY + user.encode("utf-8")


def family_prefix(partition: int, family: bytes) -> bytes:
    """Every key of one family in one partition."""
    return _PARTITION.pack(partition) + family


def delivery_key(partition: int, author_key: str, post_id: int, kind: int) -> bytes:
    """A post's delivery record (kind: Delivery.Kind), under the author key it is stored by."""
    return post_key(partition, DELIVERIES, author_key, post_id) + bytes([kind])


def request_key(partition: int, author_key: str, request_id: str) -> bytes:
    """Which post a client's Post request_id was stored as (a retried request stores nothing new)."""
    return user_prefix(partition, REQUESTS, author_key) + request_id.encode("utf-8")


def hint_prefix(target: str) -> bytes:
    return HINTS_PREFIX + target.encode("utf-8") + b"\x00"


def hint_key(target: str, sequence: int) -> bytes:
    return hint_prefix(target) + _POST_ID.pack(sequence)


# -- parsing: the inverse of the builders above -------------------------------------------------


def post_id_of(key: bytes) -> int:
    """The post id a P, I (entry, not tombstone), X, Y key ends with."""
    return int(_POST_ID.unpack_from(key, len(key) - 8)[0])


def decode_post_id(encoded: bytes) -> int:
    return int(_POST_ID.unpack(encoded)[0])


def edge_user_of(key: bytes, prefix_len: int) -> str:
    """The other user of an edge key whose user prefix (user_prefix) is `prefix_len` bytes long."""
    return key[prefix_len:].decode("utf-8")


def family_of(key: bytes) -> bytes:
    return key[2:3]


def partition_of_key(key: bytes) -> int:
    return int(_PARTITION.unpack_from(key)[0])


def is_node_wide(key: bytes) -> bool:
    """A node's own record (cluster map, hints), not part of any partition."""
    return key.startswith(b"\xff\xff")


def user_of(key: bytes) -> bytes:
    """The user key (encoded) a partition key belongs to: what decides its repair bucket."""
    return key[3:].split(b"\x00", 1)[0]


def other_user_of(key: bytes) -> str:
    """The second user of an edge key (F, G, K: the follower, the followee) or an S key's salted key."""
    return key[3:].split(b"\x00", 1)[1].decode("utf-8")


def registry_user_of(key: bytes) -> str:
    """The user of a hot registry (H) key."""
    return key[3:].decode("utf-8")


def meta_user_of(key: bytes) -> str:
    """The user key of a counters (M) key."""
    return key[3:].decode("utf-8")


def delivery_parts(key: bytes) -> tuple[str, int, int]:
    """(author key, post id, kind) of a delivery record key."""
    return user_of(key).decode("utf-8"), post_id_of(key[:-1]), key[-1]


def hint_target_of(key: bytes) -> str:
    return key[len(HINTS_PREFIX) :].split(b"\x00", 1)[0].decode("utf-8")


def hint_sequence_of(key: bytes) -> int:
    return post_id_of(key)
