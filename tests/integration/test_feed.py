"""The public API against a real 3-node cluster: what a user of the app would check. Every scenario
runs twice: with FeedClient and with AsyncFeedClient (same methods, results and errors)."""

from __future__ import annotations

import time
import uuid

import pytest

from client import FeedClient
from common.errors import InvalidArgument, NotFound
from tests.integration.conftest import ClusterHandle
from tests.support import eventually


@pytest.fixture(params=["FeedClient", "AsyncFeedClient"])
def client(request: pytest.FixtureRequest, cluster: ClusterHandle) -> FeedClient:
    if request.param == "AsyncFeedClient":
        return cluster.async_client()  # type: ignore[return-value]  # the same methods, driven blocking
    return cluster.client()


def users(*names: str) -> list[str]:
    """Fresh user ids, so tests sharing the session cluster never see each other's data."""
    tag = uuid.uuid4().hex[:8]
    return [f"{name}-{tag}" for name in names]


def timeline_texts(client: FeedClient, user: str) -> list[str]:
    return [p.text for p in client.iter_timeline(user, page_size=200)]


def test_a_post_reaches_followers_within_a_second(client: FeedClient) -> None:
    alice, bob, carol = users("alice", "bob", "carol")
    assert client.follow(alice, bob) is True
    assert client.follow(carol, bob) is True
    sent = time.monotonic()
    post = client.post(bob, "hello world")
    assert post.author == bob and post.text == "hello world" and post.id > 0

    def delivered() -> None:
        assert [p.id for p in client.timeline(alice).items] == [post.id]
        assert [p.id for p in client.timeline(carol).items] == [post.id]

    eventually(delivered, timeout_s=1.0, interval_s=0.01)
    assert time.monotonic() - sent < 1.0
    assert [p.id for p in client.timeline(bob).items] == [post.id]  # an author sees its own post at once


def test_timeline_is_newest_first_and_merges_followees(client: FeedClient) -> None:
    reader, a, b = users("reader", "a", "b")
    client.follow(reader, a)
    client.follow(reader, b)
    posted = [client.post(author, f"{author} #{i}") for i in range(5) for author in (a, b)]
    expected = [p.id for p in sorted(posted, key=lambda p: p.id, reverse=True)]
    eventually(lambda: _assert_equal([p.id for p in client.iter_timeline(reader, page_size=3)], expected))
    assert [p.created_at_ms for p in posted] == sorted(p.created_at_ms for p in posted)


def _assert_equal(actual: object, expected: object) -> None:
    assert actual == expected


def test_follow_backfills_and_unfollow_removes(client: FeedClient) -> None:
    fan, star, other = users("fan", "star", "other")
    old = [client.post(star, f"old {i}") for i in range(3)]
    keep = client.post(other, "stays")
    client.follow(fan, other)
    assert client.follow(fan, star) is True
    assert client.follow(fan, star) is False  # idempotent: nothing changes
    eventually(
        lambda: _assert_equal([p.id for p in client.iter_timeline(fan)], [keep.id] + [p.id for p in reversed(old)])
    )
    assert client.get_user(star).follower_count == 1
    assert client.unfollow(fan, star) is True
    assert [p.id for p in client.iter_timeline(fan)] == [keep.id]
    assert client.unfollow(fan, star) is False
    assert client.get_user(star).follower_count == 0
    assert client.get_user(fan).following_count == 1


def test_delete_removes_the_post_everywhere(client: FeedClient) -> None:
    f1, f2, author = users("f1", "f2", "author")
    client.follow(f1, author)
    client.follow(f2, author)
    keep = client.post(author, "keep")
    gone = client.post(author, "gone")
    eventually(lambda: _assert_equal(len(client.timeline(f2).items), 2))
    client.delete_post(author, gone.id)
    assert [p.id for p in client.iter_user_posts(author)] == [keep.id]
    eventually(lambda: _assert_equal([p.id for p in client.timeline(f1).items], [keep.id]))
    eventually(lambda: _assert_equal([p.id for p in client.timeline(f2).items], [keep.id]))
    with pytest.raises(NotFound, match="no post"):
        client.delete_post(author, gone.id)
    with pytest.raises(NotFound):
        client.delete_post(f1, keep.id)  # not f1's post
    assert client.get_user(author).post_count == 1


def test_delete_right_after_post_never_leaves_a_ghost(client: FeedClient) -> None:
    """The delete's retraction may overtake the post's fan-out; tombstones keep it deleted."""
    author, *fans = users("ghost-author", *[f"fan{i}" for i in range(20)])
    for fan in fans:
        client.follow(fan, author)
    ghosts = []
    for i in range(10):
        post = client.post(author, f"blink {i}")
        client.delete_post(author, post.id)
        ghosts.append(post.id)
    marker = client.post(author, "after")
    for fan in fans:
        eventually(lambda fan=fan: _assert_equal([p.id for p in client.timeline(fan).items], [marker.id]))


def test_pagination_is_stable_while_new_posts_arrive(client: FeedClient) -> None:
    reader, author = users("reader", "author")
    client.follow(reader, author)
    first = [client.post(author, f"p{i}") for i in range(12)]
    eventually(lambda: _assert_equal(len(list(client.iter_timeline(reader))), 12))
    page1 = client.timeline(reader, page_size=5)
    newer = [client.post(author, f"new{i}") for i in range(3)]
    eventually(lambda: _assert_equal(client.timeline(reader).items[0].id, newer[-1].id))
    page2 = client.timeline(reader, page_size=5, page_token=page1.next_page_token)
    page3 = client.timeline(reader, page_size=5, page_token=page2.next_page_token)
    seen = [p.id for p in page1.items + page2.items + page3.items]
    assert seen == [p.id for p in reversed(first)]  # no duplicates, no gaps, new posts not mixed in
    assert page3.next_page_token == ""


def test_a_refresh_gets_only_what_is_newer_than_the_newest_post_shown(client: FeedClient) -> None:
    reader, author = users("reader", "author")
    client.follow(reader, author)
    shown = client.post(author, "seen already")
    eventually(lambda: _assert_equal([p.id for p in client.timeline(reader).items], [shown.id]))
    assert client.timeline(reader, newer_than_id=shown.id).items == []
    newer = [client.post(author, f"new{i}") for i in range(4)] + [client.post(reader, "mine")]
    want = [p.id for p in reversed(newer)]
    eventually(lambda: _assert_equal([p.id for p in client.timeline(reader, newer_than_id=shown.id).items], want))
    first = client.timeline(reader, page_size=3, newer_than_id=shown.id)
    assert [p.id for p in first.items] == want[:3] and first.gap  # more is newer than one page
    rest = client.timeline(reader, page_size=3, page_token=first.next_page_token, newer_than_id=shown.id)
    assert [p.id for p in rest.items] == want[3:] and not rest.gap and rest.next_page_token == ""


def test_timeline_is_trimmed_to_the_cap(client: FeedClient, cluster) -> None:  # type: ignore[no-untyped-def]
    cap = cluster.config.limits.timeline_cap
    reader, author = users("reader", "prolific")
    client.follow(reader, author)
    posts = [client.post(author, f"n{i}") for i in range(cap + 15)]
    newest = [p.id for p in reversed(posts)][:cap]
    eventually(lambda: _assert_equal([p.id for p in client.iter_timeline(reader, page_size=25)], newest))
    assert len(list(client.iter_user_posts(author, page_size=200))) == cap + 15  # the author keeps all


def test_followers_and_following_page_in_a_stable_order(client: FeedClient) -> None:
    star, *fans = users("star", *[f"f{i:02d}" for i in range(23)])
    for fan in fans:
        client.follow(fan, star)
    assert list(client.iter_followers(star, page_size=5)) == sorted(fans)
    first = client.followers(star, page_size=10)
    assert len(first.items) == 10 and first.next_page_token
    assert list(client.iter_following(fans[0])) == [star]
    user = client.get_user(star)
    assert (user.follower_count, user.following_count, user.post_count, user.hot) == (23, 0, 0, False)


def test_bad_input_gets_invalid_argument_with_a_clear_message(client: FeedClient) -> None:
    (alice,) = users("alice")
    cases = [
        (lambda: client.follow(alice, alice), "cannot follow themselves"),
        (lambda: client.post(alice, ""), "text is empty"),
        (lambda: client.post(alice, "   "), "text is empty"),
        (lambda: client.post(alice, "é" * 600), "1200 bytes of UTF-8; the limit is 1024"),
        (lambda: client.post("no spaces allowed", "x"), "not a valid user id"),
        (lambda: client.post("x" * 65, "x"), "not a valid user id"),
        (lambda: client.timeline(alice, page_size=201), "page_size must be from 1 to 200"),
        (lambda: client.timeline(alice, page_size=-1), "page_size"),
        (lambda: client.timeline(alice, page_token="not-a-token"), "page_token is not valid"),
        (lambda: client.followers(alice, page_token="AAAA"), "page_token"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            call()
    # A token from one user's timeline does not page another's.
    (bob, star) = users("bob", "star")
    client.follow(bob, star)
    for i in range(3):
        client.post(star, f"s{i}")
    eventually(lambda: _assert_equal(len(client.timeline(bob).items), 3))
    token = client.timeline(bob, page_size=1).next_page_token
    with pytest.raises(InvalidArgument, match="different request"):
        client.timeline(alice, page_token=token)
    # ...and the server is still serving.
    assert len(client.timeline(bob, page_size=1, page_token=token).items) == 1


def test_unknown_user_is_not_found_but_has_an_empty_timeline(client: FeedClient) -> None:
    (ghost,) = users("nobody")
    with pytest.raises(NotFound, match="not found"):
        client.get_user(ghost)
    page = client.timeline(ghost)
    assert page.items == [] and page.next_page_token == ""


def test_status_shows_every_node_healthy_with_its_share(client: FeedClient, cluster) -> None:  # type: ignore[no-untyped-def]
    status = client.cluster_status()
    assert status.epoch >= 1
    assert status.partitions == cluster.config.partitions
    assert sorted(n.id for n in status.nodes) == ["n1", "n2", "n3"]
    assert all(n.healthy for n in status.nodes)
    assert sum(n.partitions for n in status.nodes) == cluster.config.partitions
    assert all(n.partitions > 0 for n in status.nodes)
