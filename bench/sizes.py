"""How big each phase of a benchmark run is: the full run (the figures README quotes), the quick one
(a look in a few minutes), and the smoke run the test suite makes (every figure produced, none
meaningful: it only proves the benchmark still runs end to end)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Sizes", "FULL", "QUICK", "SMOKE"]


@dataclass(frozen=True)
class Sizes:
    name: str
    seconds: float  # each load phase (--seconds overrides)
    users: int  # synthetic users (--users overrides)
    classes: dict[str, int]  # follower-count classes of the post-ack figure
    hot_threshold: int
    plyvel_puts: int  # the raw LevelDB baseline
    floor_posts: int  # bench/floors.py store floors
    relay_rounds: int
    relay_seconds: float
    fanout_followers: int  # each of the four fan-out authors
    samples: int  # post-ack probes per class, visibility probes, replication ack probes
    delivery_posts_per_author: int
    watch_posts: int
    watchers: tuple[int, ...]
    stress_step_s: float
    stress_read_rate: float
    stress_post_rates: tuple[float, ...]
    phase_s: float  # the burst and rebalance phases (at most)
    hot_reads: int
    salting_posts: int
    node_entries: int  # the big-node memory figure (--node-entries overrides; 0 skips it)
    replication_down_s: float
    replication_fanout_followers: int
    inactive_after_s: float
    inactive_posters: int


FULL = Sizes(
    name="full",
    seconds=20.0,
    users=50_000,
    classes={"10": 10, "1K": 1_000, "100K": 100_000, "1M": 1_000_000},
    hot_threshold=10_000,  # the default: the 100K and 1M classes are hot
    plyvel_puts=300_000,
    floor_posts=10,
    relay_rounds=3,
    relay_seconds=3.0,
    fanout_followers=5_000,
    samples=100,
    delivery_posts_per_author=50,
    watch_posts=20,
    watchers=(100, 1000),
    stress_step_s=8.0,
    stress_read_rate=100.0,
    # Steps of 5 from 10 to 50 (the target is 45): with a step from 20 straight to 40, any
    # capacity in between was reported as 20.
    stress_post_rates=(2.5, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 60.0, 80.0, 120.0, 160.0),
    phase_s=6.0,
    hot_reads=300,
    salting_posts=300,
    node_entries=5_000_000,
    replication_down_s=30.0,
    replication_fanout_followers=2_500,
    inactive_after_s=45.0,
    inactive_posters=400,
)

QUICK = Sizes(
    name="quick",
    seconds=6.0,
    users=5_000,
    classes={"10": 10, "1K": 1_000, "10K": 10_000},
    hot_threshold=5_000,
    plyvel_puts=100_000,
    floor_posts=3,
    relay_rounds=2,
    relay_seconds=2.0,
    fanout_followers=2_000,
    samples=30,
    delivery_posts_per_author=20,
    watch_posts=10,
    watchers=(100,),
    stress_step_s=4.0,
    stress_read_rate=50.0,
    stress_post_rates=(5.0, 10.0, 20.0, 30.0, 40.0, 60.0, 80.0),
    phase_s=6.0,
    hot_reads=300,
    salting_posts=300,
    node_entries=0,
    replication_down_s=8.0,
    replication_fanout_followers=1_000,
    inactive_after_s=30.0,
    inactive_posters=150,
)

SMOKE = Sizes(
    name="smoke",
    seconds=2.0,
    users=2_000,
    classes=QUICK.classes,
    hot_threshold=QUICK.hot_threshold,
    plyvel_puts=20_000,
    floor_posts=1,
    relay_rounds=1,
    relay_seconds=1.0,
    fanout_followers=500,
    samples=8,
    delivery_posts_per_author=5,
    watch_posts=4,
    watchers=(100,),
    stress_step_s=2.0,
    stress_read_rate=30.0,
    stress_post_rates=(5.0, 40.0),
    phase_s=2.0,
    hot_reads=60,
    salting_posts=100,
    node_entries=0,
    replication_down_s=3.0,
    replication_fanout_followers=300,
    inactive_after_s=28.0,
    inactive_posters=50,
)
