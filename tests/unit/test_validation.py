"""What the router accepts from clients, with messages a person can act on."""

from __future__ import annotations

import pytest

from common.config import Limits
from common.errors import InvalidArgument
from feed.validation import check_text, check_user, page_size

LIMITS = Limits()


@pytest.mark.parametrize("user", ["a", "Alice_01", "x.y-z", "9" * 64])
def test_valid_user_ids(user: str) -> None:
    assert check_user(user) == user


@pytest.mark.parametrize("user", ["", "a b", "x" * 65, "tab\t", "émile", "star#1", "a/b"])
def test_invalid_user_ids(user: str) -> None:
    with pytest.raises(InvalidArgument, match="user id is 1-64 characters"):
        check_user(user, "author")


def test_text_limits_count_utf8_bytes() -> None:
    assert check_text("é" * 512, LIMITS)  # 1024 bytes: exactly the limit
    with pytest.raises(InvalidArgument, match="1026 bytes of UTF-8; the limit is 1024"):
        check_text("é" * 513, LIMITS)
    for empty in ("", "   \n\t"):
        with pytest.raises(InvalidArgument, match="text is empty"):
            check_text(empty, LIMITS)


def test_page_size() -> None:
    assert page_size(0, LIMITS) == 20
    assert page_size(200, LIMITS) == 200
    for bad in (-1, 201):
        with pytest.raises(InvalidArgument, match="page_size must be from 1 to 200"):
            page_size(bad, LIMITS)
