"""Hot users on a real cluster with a low threshold: hybrid fan-out, salting, merge, cache, cool-down."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from client import FeedClient, top
from common.errors import NotFound
from tests.integration.conftest import ClusterHandle, start_cluster
from tests.support import eventually

THRESHOLD = 10


@pytest.fixture(scope="module")
def hot_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    handle = start_cluster(
        tmp_path_factory.mktemp("hot"),
        hot_users={
            "users": ["pinned-celebrity"],
            "follower_threshold": THRESHOLD,
            "cooldown_ratio": 0.5,
            "salt_buckets": 4,
            "cache_max_entries": 3,
            "cache_ttl_ms": 500,
        },
        metrics=True,
    )
    yield handle
    handle.stop()


@pytest.fixture
def client(hot_cluster: ClusterHandle) -> FeedClient:
    return hot_cluster.client(map_aware=False)  # the router's view of hot users and its cache are checked


def tagged(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def make_hot(client: FeedClient, star: str, extra: int = 2) -> list[str]:
    fans = [f"{star}-fan{i:02d}" for i in range(THRESHOLD + extra)]
    for fan in fans:
        client.follow(fan, star)
    eventually(lambda: _check(client.get_user(star).hot))
    return fans


def follower_count_becomes(client: FeedClient, star: str, expected: int) -> None:
    """Follows of a salted user are counted by the salted keys' nodes and reported to its home
    within a moment; the count must settle at exactly `expected` and stay there."""
    eventually(lambda: _check(client.get_user(star).follower_count == expected))
    time.sleep(0.2)
    assert client.get_user(star).follower_count == expected


def inbox_entries(client: FeedClient) -> int:
    """Inbox entries written by deliveries, cluster-wide (each counted once, by the node driving it;
    a node's count of inbox keys is an estimate since inboxes are written blind)."""
    return sum(n.delivery.inbox_writes for n in client.cluster_status().nodes)


def settled_inbox_entries(client: FeedClient, quiet_s: float = 0.5, timeout_s: float = 10.0) -> int:
    """The count of delivered inbox entries once it has stopped moving."""
    deadline = time.monotonic() + timeout_s
    last = inbox_entries(client)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = inbox_entries(client)
        if now == last:
            return now
        last = now
    raise AssertionError(f"inbox entry count still moving after {timeout_s} s (last {last})")


def ids(posts: object) -> list[int]:
    return [p.id for p in posts]  # type: ignore[attr-defined]


def _check(condition: bool) -> None:
    assert condition


def _equal(actual: object, expected: object) -> None:
    assert actual == expected


def test_crossing_the_threshold_turns_a_user_hot_and_its_posts_are_merged_not_fanned_out(client: FeedClient) -> None:
    star = tagged("star")
    before = client.post(star, "posted while normal")
    fans = make_hot(client, star)
    assert star in client.cluster_status().hot_users
    follower_count_becomes(client, star, len(fans))
    assert client.get_user(star).hot

    writes_before = settled_inbox_entries(client)
    hot_post = client.post(star, "posted while hot")
    for fan in fans:  # visible at once through this router's cache and the read-time merge
        assert ids(client.timeline(fan).items) == [hot_post.id, before.id]
    assert settled_inbox_entries(client) == writes_before  # not one inbox write for a hot post
    assert ids(client.iter_user_posts(star)) == [hot_post.id, before.id]
    assert client.get_user(star).post_count == 2


def test_a_burst_of_hot_posts_lands_on_several_nodes(client: FeedClient) -> None:
    star = "burst-star"  # a fixed name: its 4 salted keys are known to span nodes
    make_hot(client, star)
    posts_before = {n.id: n.keys_by_family.get("posts", 0) for n in client.cluster_status().nodes}
    for i in range(40):
        client.post(star, f"burst {i}")
    posts_after = {n.id: n.keys_by_family.get("posts", 0) for n in client.cluster_status().nodes}
    grew = [node for node in posts_after if posts_after[node] > posts_before[node]]
    assert len(grew) >= 2, f"all 40 posts landed on {grew}"
    assert len(list(client.iter_user_posts(star, page_size=7))) == 40


def test_pagination_is_exact_across_the_inbox_and_several_hot_authors(client: FeedClient) -> None:
    reader = tagged("reader")
    stars = [tagged(f"star{i}") for i in range(3)]
    normals = [tagged(f"normal{i}") for i in range(2)]
    for star in stars:
        make_hot(client, star)
    for author in stars + normals:
        client.follow(reader, author)
    posted = [client.post(author, f"{author} {i}") for i in range(6) for author in stars + normals]
    expected = sorted((p.id for p in posted), reverse=True)
    eventually(lambda: _equal(ids(client.iter_timeline(reader, page_size=200)), expected))
    for size in (1, 4, 7):
        assert ids(client.iter_timeline(reader, page_size=size)) == expected

    # New posts arriving between pages never shift or repeat what is still to come.
    first = client.timeline(reader, page_size=5)
    for star in stars:
        client.post(star, "late")
    rest = []
    token = first.next_page_token
    while token:
        page = client.timeline(reader, page_size=5, page_token=token)
        rest += ids(page.items)
        token = page.next_page_token
    assert ids(first.items) + rest == expected


def test_deleting_a_hot_post_removes_it_from_timelines(client: FeedClient) -> None:
    star = tagged("star")
    fans = make_hot(client, star)
    keep = client.post(star, "keep")
    gone = client.post(star, "gone")
    client.delete_post(star, gone.id)
    for fan in fans[:3]:
        assert ids(client.timeline(fan).items) == [keep.id]
    assert ids(client.iter_user_posts(star)) == [keep.id]
    with pytest.raises(NotFound):
        client.delete_post(star, gone.id)


def test_salted_follower_listing_is_complete_and_ordered(client: FeedClient) -> None:
    star = tagged("star")
    fans = make_hot(client, star, extra=15)  # the last 15 follow after the turn: salted edges
    listed = list(client.iter_followers(star, page_size=4))
    assert listed == sorted(fans)
    client.unfollow(fans[-1], star)  # a salted edge
    client.unfollow(fans[0], star)  # an edge from before the turn
    assert list(client.iter_followers(star, page_size=6)) == sorted(fans[1:-1])
    follower_count_becomes(client, star, len(fans) - 2)


def test_following_a_hot_user_shows_its_posts_and_unfollowing_hides_them(client: FeedClient) -> None:
    star, late = tagged("star"), tagged("late-fan")
    make_hot(client, star)
    posts = [client.post(star, f"s{i}") for i in range(3)]
    client.follow(late, star)
    assert ids(client.timeline(late).items) == ids(reversed(posts))
    client.unfollow(late, star)
    assert client.timeline(late).items == []


def test_cooling_down_resumes_fan_out_and_keeps_recent_posts(client: FeedClient) -> None:
    star = tagged("star")
    fans = make_hot(client, star)
    hot_post = client.post(star, "while hot")
    # Fall below threshold x cooldown_ratio (5): keep 4 followers.
    for fan in fans[4:]:
        client.unfollow(fan, star)
    eventually(lambda: _check(not client.get_user(star).hot), timeout_s=5.0)
    eventually(lambda: _check(star not in client.cluster_status().hot_users))
    writes_before = inbox_entries(client)
    cold_post = client.post(star, "after cooling")
    for fan in fans[:4]:
        eventually(lambda fan=fan: _equal(ids(client.timeline(fan).items), [cold_post.id, hot_post.id]))
    assert inbox_entries(client) >= writes_before + 4  # fanned out again
    for fan in fans[4:]:
        assert client.timeline(fan).items == []


def test_the_hot_post_cache_stays_bounded(client: FeedClient, hot_cluster: ClusterHandle) -> None:
    reader = tagged("reader")
    stars = [tagged(f"star{i}") for i in range(5)]
    for star in stars:
        make_hot(client, star)
        client.follow(reader, star)
        client.post(star, "hello")
    assert len(client.timeline(reader).items) == 5
    assert client.cluster_status().router.cache_capacity == 3
    # The router relays timeline reads to nodes (router/read_relay.py): their caches served them.
    nodes = [t for t in top.targets(hot_cluster.config) if t.role == "node"]

    def bounded() -> None:
        entries = [top.scrape(t).total("feedring_hot_cache_entries") for t in nodes]
        assert max(entries) <= 3 and sum(entries) > 0, entries

    eventually(bounded, timeout_s=5.0)


def test_a_configured_hot_user_is_hot_from_the_start(client: FeedClient) -> None:
    fan = tagged("fan")
    client.follow(fan, "pinned-celebrity")
    user = client.get_user("pinned-celebrity")
    assert user.hot and user.follower_count >= 1
    post = client.post("pinned-celebrity", "I was always hot")
    assert ids(client.timeline(fan).items)[0] == post.id
    client.unfollow(fan, "pinned-celebrity")
    assert client.get_user("pinned-celebrity").hot  # pinned: never cools down


def test_a_map_aware_clients_hot_posts_are_stored_where_they_arrive(hot_cluster: ClusterHandle) -> None:
    """A hot author's Post tells a map-aware client that the author is salted; its next posts go to
    the salted key's primary, which stores them with no StorePost call to another node. Through the
    router, every one is forwarded."""

    def store_posts() -> float:
        scrapes = [top.scrape(t) for t in top.targets(hot_cluster.config) if t.name.startswith("n")]
        return sum(s.total("feedring_rpc_calls_total", method="StorePost") for s in scrapes)

    direct, routed = hot_cluster.client(), hot_cluster.client(map_aware=False)
    star = "pinned-celebrity"
    direct.post(star, "learns that the author is salted")
    before = store_posts()
    posted = [direct.post(star, f"straight to its key {i}").id for i in range(20)]
    assert store_posts() == before
    routed.post(star, "through the router")
    assert store_posts() == before + 1
    assert set(posted) <= set(ids(direct.iter_user_posts(star)))


def test_following_again_after_the_turn_counts_once(client: FeedClient) -> None:
    star = tagged("star")
    early = f"{star}-early"
    client.follow(early, star)  # a home edge, before the user is salted
    fans = make_hot(client, star)
    count = len(fans) + 1
    follower_count_becomes(client, star, count)
    assert client.follow(early, star) is False  # idempotent after the turn too
    assert list(client.iter_followers(star)).count(early) == 1
    follower_count_becomes(client, star, count)
    assert client.unfollow(early, star) is True
    follower_count_becomes(client, star, count - 1)
    assert early not in set(client.iter_followers(star))
