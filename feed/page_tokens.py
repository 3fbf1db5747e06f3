"""Opaque page tokens (AIP-158): a cursor, bound to the request it came from, with a checksum.

A token is urlsafe base64 of ``version | listing | request hash (4B) | cursor | crc32 (4B)``. The
cursor is a post id (timelines, a user's posts: the next page holds ids below it, so posts arriving
meanwhile never shift a page) or a user id (follower listings: the next page starts after it). A
token is only valid for the same listing of the same user; anything else is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib

from common.errors import InvalidArgument

__all__ = ["encode_post_cursor", "decode_post_cursor", "encode_user_cursor", "decode_user_cursor"]

_VERSION = 1
_HEADER = struct.Struct(">BBI")
_CRC = struct.Struct(">I")
_POST_ID = struct.Struct(">Q")


def _request_hash(listing: int, user: str) -> int:
    return zlib.crc32(f"{listing}:{user}".encode())


def _encode(listing: int, user: str, cursor: bytes) -> str:
    body = _HEADER.pack(_VERSION, listing, _request_hash(listing, user)) + cursor
    return base64.urlsafe_b64encode(body + _CRC.pack(zlib.crc32(body))).decode().rstrip("=")


def _decode(listing: int, user: str, token: str) -> bytes:
    bad = InvalidArgument("page_token is not valid: pass the next_page_token of the previous page unchanged")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    if len(raw) < _HEADER.size + _CRC.size:
        raise bad
    body, (crc,) = raw[: -_CRC.size], _CRC.unpack(raw[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise bad
    version, got_listing, request_hash = _HEADER.unpack_from(body)
    if version != _VERSION or got_listing != listing or request_hash != _request_hash(listing, user):
        raise InvalidArgument(
            "page_token belongs to a different request: it is only valid for the same listing and user"
        )
    return body[_HEADER.size :]


def encode_post_cursor(listing: int, user: str, before_id: int) -> str:
    return _encode(listing, user, _POST_ID.pack(before_id))


def decode_post_cursor(listing: int, user: str, token: str) -> int:
    """The post id the next page starts below; 0 for an empty token (the first page)."""
    if not token:
        return 0
    cursor = _decode(listing, user, token)
    if len(cursor) != _POST_ID.size:
        raise InvalidArgument("page_token is not valid: pass the next_page_token of the previous page unchanged")
    return int(_POST_ID.unpack(cursor)[0])


def encode_user_cursor(listing: int, user: str, after: str) -> str:
    return _encode(listing, user, after.encode())


def decode_user_cursor(listing: int, user: str, token: str) -> str:
    """The user id the next page starts after; "" for an empty token."""
    if not token:
        return ""
    try:
        return _decode(listing, user, token).decode()
    except UnicodeDecodeError:
        raise InvalidArgument(
            "page_token is not valid: pass the next_page_token of the previous page unchanged"
        ) from None
