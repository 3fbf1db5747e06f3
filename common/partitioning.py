"""key -> partition: one stable hash used by every process.

Python's ``hash()`` changes with PYTHONHASHSEED, so partitions come from BLAKE2b of the key's UTF-8
bytes. Keys are always ``str`` (uhashring hashes ``str(key)``, so bytes and str would diverge).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

__all__ = ["partition_of"]


# A request's keys are looked up several times on their way (coordinator, ownership check, store).
@lru_cache(maxsize=1 << 16)
def partition_of(key: str, partitions: int) -> int:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions
