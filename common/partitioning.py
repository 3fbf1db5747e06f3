"""key -> partition: one stable hash used by every process.

Python's ``hash()`` changes with PYTHONHASHSEED, so partitions come from BLAKE2b of the key's UTF-8
bytes. Keys are always ``str`` (uhashring hashes ``str(key)``, so bytes and str would diverge).
"""

from __future__ import annotations

import hashlib

__all__ = ["partition_of"]


def partition_of(key: str, partitions: int) -> int:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions
