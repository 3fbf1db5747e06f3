"""Checks on what clients send, with messages a person can act on (all INVALID_ARGUMENT)."""

from __future__ import annotations

import re

from common.config import Limits
from common.errors import InvalidArgument

__all__ = ["check_user", "check_text", "check_request_id", "page_size", "USER_ID_RULE"]

USER_ID_RULE = "1-64 characters of letters, digits, '_', '.' or '-'"
_USER_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def check_user(value: str, field: str = "user") -> str:
    if not value:
        raise InvalidArgument(f"{field} is empty: a user id is {USER_ID_RULE}")
    if not _USER_ID.fullmatch(value):
        raise InvalidArgument(f"{field} {value[:80]!r} is not a valid user id: a user id is {USER_ID_RULE}")
    return value


def check_text(text: str, limits: Limits) -> str:
    if not text.strip():
        raise InvalidArgument("text is empty: a post needs at least one visible character")
    size = len(text.encode("utf-8"))
    if size > limits.post_max_bytes:
        raise InvalidArgument(f"text is {size} bytes of UTF-8; the limit is {limits.post_max_bytes} bytes")
    return text


def check_request_id(value: str) -> str:
    """A Post's optional request_id: up to 64 printable ASCII characters ("" for none)."""
    if len(value) > 64 or not value.isascii() or not value.isprintable():
        raise InvalidArgument(f"request_id {value[:80]!r} must be at most 64 printable ASCII characters")
    return value


def page_size(requested: int, limits: Limits) -> int:
    if requested == 0:
        return limits.page_size_default
    if not 0 < requested <= limits.page_size_max:
        raise InvalidArgument(
            f"page_size must be from 1 to {limits.page_size_max}, or 0 for the default "
            f"of {limits.page_size_default} (got {requested})"
        )
    return requested
