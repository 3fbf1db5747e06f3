"""A randomized model test: random follows, unfollows, posts and deletes by a few hundred users,
then every timeline, read page by page, must equal what a plain in-test model says, in order.

The model is the specification in miniature: a timeline holds the newest `timeline_cap` posts that
were delivered to it; following copies the followee's newest `backfill_posts` posts; unfollowing
removes all of the followee's posts; deleting removes the post everywhere; a user's own posts are
in its timeline too (merged in at read time, so the cap does not cut them).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict

from client import FeedClient
from tests.support import eventually


class TimelineModel:
    def __init__(self, cap: int, backfill: int) -> None:
        self.cap, self.backfill = cap, backfill
        self.following: dict[str, set[str]] = defaultdict(set)
        self.followers: dict[str, set[str]] = defaultdict(set)
        self.posts: dict[str, list[int]] = defaultdict(list)  # author -> ids, oldest first
        self.author_of: dict[int, str] = {}
        self.inbox: dict[str, set[int]] = defaultdict(set)

    def _insert(self, user: str, ids: list[int]) -> None:
        box = self.inbox[user]
        box.update(ids)
        while len(box) > self.cap:
            box.remove(min(box))

    def follow(self, follower: str, followee: str) -> None:
        if followee in self.following[follower]:
            return
        self.following[follower].add(followee)
        self.followers[followee].add(follower)
        self._insert(follower, self.posts[followee][-self.backfill :])

    def unfollow(self, follower: str, followee: str) -> None:
        self.following[follower].discard(followee)
        self.followers[followee].discard(follower)
        self.inbox[follower] -= set(self.posts[followee])

    def post(self, author: str, post_id: int) -> None:
        self.posts[author].append(post_id)
        self.author_of[post_id] = author
        for follower in self.followers[author]:
            self._insert(follower, [post_id])

    def delete(self, post_id: int) -> None:
        author = self.author_of.pop(post_id)
        self.posts[author].remove(post_id)
        for box in self.inbox.values():
            box.discard(post_id)

    def timeline(self, user: str) -> list[int]:
        return sorted(self.inbox[user] | set(self.posts[user]), reverse=True)


def test_random_operations_match_the_model(client: FeedClient, cluster) -> None:  # type: ignore[no-untyped-def]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    limits = cluster.config.limits
    model = TimelineModel(limits.timeline_cap, limits.backfill_posts)
    tag = uuid.uuid4().hex[:6]
    people = [f"u{i:03d}-{tag}" for i in range(200)]

    # A skewed graph: a few popular users, as in real networks.
    popular = people[:10]
    for user in people:
        for followee in rng.sample(popular, 2) + rng.sample(people, 4):
            if followee != user:
                client.follow(user, followee)
                model.follow(user, followee)

    for _ in range(900):
        roll = rng.random()
        user = rng.choice(people)
        if roll < 0.45:
            post = client.post(user, f"{user} says {rng.random():.6f}")
            model.post(user, post.id)
        elif roll < 0.65:
            followee = rng.choice(people)
            if followee != user:
                client.follow(user, followee)
                model.follow(user, followee)
        elif roll < 0.85:
            if model.following[user]:
                followee = rng.choice(sorted(model.following[user]))
                assert client.unfollow(user, followee) is True
                model.unfollow(user, followee)
        elif model.posts[user]:
            victim = rng.choice(model.posts[user])
            client.delete_post(user, victim)
            model.delete(victim)

    def every_timeline_matches() -> None:
        for user in people:
            got = [p.id for p in client.iter_timeline(user, page_size=rng.choice([1, 3, 7, 50]))]
            assert got == model.timeline(user), f"timeline of {user} differs (seed {seed})"

    eventually(every_timeline_matches, timeout_s=10.0, interval_s=0.2)
    for user in rng.sample(people, 20):
        assert list(client.iter_following(user, page_size=4)) == sorted(model.following[user]), f"seed {seed}"
        assert list(client.iter_followers(user, page_size=4)) == sorted(model.followers[user]), f"seed {seed}"
        assert [p.id for p in client.iter_user_posts(user, page_size=5)] == model.posts[user][::-1], f"seed {seed}"
        info = client.get_user(user)
        assert info.follower_count == len(model.followers[user]), f"seed {seed}"
        assert info.following_count == len(model.following[user]), f"seed {seed}"
        assert info.post_count == len(model.posts[user]), f"seed {seed}"
