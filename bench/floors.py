"""The floors under feedring's figures: what a read and an inbox entry cost with no feedring in them.

`python -m bench.floors` (about 90 s; `make bench` runs both parts too, with 3 rounds):

**Reads.** A timeline read through a router is two gRPC hops (client -> router -> node). A bare
relay process that forwards each call's bytes to a bare echo server is the same two hops with
nothing else in them. A map-aware client's read is one hop to a node that reads its own store: an
echo server that reads one LevelDB key per call is that hop with nothing else in it. The page
floor is feedring's own public server (options, call guards) answering every GetTimeline with the
same 20-post page: a one-hop read's wire and guards with no read in it, so a map-aware read over
it is the node's own work per read. A map-aware client spreads its reads over three nodes, three
processes sharing this machine's two cores with the client's two: the page floor served by three
processes, the reads spread over them as FeedClient spreads them, is that read's QPS floor (with
one call at a time the client keeps to one node, so the single-call floor is the page floor's).
Echo, relay, one-hop echo and the page floors are measured in alternating rounds (the machine is
shared and noisy), single calls (p50) and 2 x 16 in flight (QPS); each figure is the median over
the rounds of x / echo.

**Inbox entries.** Three loops over the same LevelDB and values, each a ratio to the first:
- raw plyvel batched puts (the bench's baseline);
- the least an edge-checked inbox write can do in Python: per entry one get (the follower's edge)
  and one put, keys built from per-consumer prefixes, one batch per page;
- feedring's own store work per delivered page: FeedStore.insert_inbox of one post into 500
  consumers who follow its author (edge, tombstone and entry reads, the put, the consumer's counter).
No gRPC, no event loop: what is left between the last two is the price of tombstones and exact
inbox counts; what is left between the first two is Python's per-entry cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import tempfile
import time
from pathlib import Path

import plyvel

from bench.baselines import node_table_sizes, plyvel_batched_puts_per_second
from bench.harness import Mix, run_load, start_echo_server
from bench.stats import summary
from node.feed_store import FeedStore
from node.store import LevelDBStore
from protos import feed_pb2

__all__ = ["store_floors", "relay_floor"]

_PAGE = 500
_READS, _READERS = Mix(1, 0, 0), 1000  # timeline reads only, of u0..u999 (the page floor answers all alike)


def _minimal_edge_checked(directory: Path, consumers: list[str], posts: int, value: bytes) -> float:
    db = plyvel.DB(  # as a node opens it
        str(directory), create_if_missing=True, bloom_filter_bits=10, compression=None, **node_table_sizes()
    )
    with db.write_batch() as wb:
        for c in consumers:
            wb.put(b"G" + c.encode() + b"\x00author", b"\x01")
    get, post_id = db.get, struct.Struct(">Q")
    started = time.perf_counter()
    for p in range(posts):
        suffix = post_id.pack(p)
        for start in range(0, len(consumers), _PAGE):
            with db.write_batch() as wb:
                for c in consumers[start : start + _PAGE]:
                    user = c.encode() + b"\x00"
                    if get(b"G" + user + b"author") is not None:
                        wb.put(b"I" + user + suffix, value)
    elapsed = time.perf_counter() - started
    db.close()
    return posts * len(consumers) / elapsed


def _insert_inbox(directory: Path, consumers: list[str], posts: int, text: str) -> float:
    feed = FeedStore(LevelDBStore(directory), partitions=1024, timeline_cap=800)
    feed.graph.add_following_many((c, "author", False, "author") for c in consumers)
    messages = [feed_pb2.Post(id=1 + p, author="author", text=text, created_at_ms=1) for p in range(posts)]
    started = time.perf_counter()
    for message in messages:
        for start in range(0, len(consumers), _PAGE):
            feed.inboxes.insert([message], consumers[start : start + _PAGE])
    return posts * len(consumers) / (time.perf_counter() - started)


def store_floors(consumers: int = 20_000, posts: int = 10) -> dict[str, float]:
    """Entries per second of each loop and their ratios to raw plyvel batched puts."""
    names = [f"user{i}" for i in range(consumers)]
    text = "x" * 150
    value = feed_pb2.Post(id=1, author="author", text=text, created_at_ms=1).SerializeToString()
    with tempfile.TemporaryDirectory() as root:
        plyvel_rate = plyvel_batched_puts_per_second(consumers * posts)
        minimal = _minimal_edge_checked(Path(root) / "minimal", names, posts, value)
        feedring = _insert_inbox(Path(root) / "feedring", names, posts, text)
    return {
        "plyvel_puts_per_s": plyvel_rate,
        "minimal_edge_checked_per_s": minimal,
        "insert_inbox_per_s": feedring,
        "minimal_over_plyvel": minimal / plyvel_rate,
        "insert_inbox_over_plyvel": feedring / plyvel_rate,
        "insert_inbox_over_minimal": feedring / minimal,
    }


def relay_floor(rounds: int = 3, seconds: float = 3.0, processes: int = 2, concurrency: int = 16) -> dict[str, float]:
    """Two bare hops, one hop with a LevelDB read, and one hop to the Feed API answering a fixed
    timeline page (the page floor; for QPS also from three servers, the reads spread over them),
    against one bare hop, in alternating rounds: medians of x/echo p50 and QPS."""
    echo_process, echo_target = start_echo_server()
    relay_process, relay_target = start_echo_server(upstream=echo_target)
    store_dir = tempfile.TemporaryDirectory()
    one_hop_process, one_hop_target = start_echo_server(leveldb=store_dir.name)
    pages = [start_echo_server(page=True) for _ in range(3)]
    page_target, page_targets = pages[0][1], [target for _, target in pages]
    p50_ratios, qps_ratios, echo_p50, relay_p50 = [], [], [], []
    one_p50_ratios, one_qps_ratios, page_p50_ratios, page_qps_ratios = [], [], [], []
    spread_qps_ratios = []
    try:
        for _ in range(rounds):
            e = summary(run_load(echo_target, "echo", seconds, 1, 1)["echo"])
            r = summary(run_load(relay_target, "echo", seconds, 1, 1)["echo"])
            o = summary(run_load(one_hop_target, "echo", seconds, 1, 1)["echo"])
            g = summary(run_load(page_target, "feed", seconds, 1, 1, _READS, _READERS)["read"])
            eq = summary(run_load(echo_target, "echo", seconds, processes, concurrency)["echo"], seconds)
            rq = summary(run_load(relay_target, "echo", seconds, processes, concurrency)["echo"], seconds)
            oq = summary(run_load(one_hop_target, "echo", seconds, processes, concurrency)["echo"], seconds)
            gq = summary(
                run_load(page_target, "feed", seconds, processes, concurrency, _READS, _READERS)["read"], seconds
            )
            sq = summary(
                run_load(page_target, "feed", seconds, processes, concurrency, _READS, _READERS, spread=page_targets)[
                    "read"
                ],
                seconds,
            )
            echo_p50.append(e["p50_ms"])
            relay_p50.append(r["p50_ms"])
            p50_ratios.append(r["p50_ms"] / e["p50_ms"])
            qps_ratios.append(rq["qps"] / eq["qps"])
            one_p50_ratios.append(o["p50_ms"] / e["p50_ms"])
            one_qps_ratios.append(oq["qps"] / eq["qps"])
            page_p50_ratios.append(g["p50_ms"] / e["p50_ms"])
            page_qps_ratios.append(gq["qps"] / eq["qps"])
            spread_qps_ratios.append(sq["qps"] / eq["qps"])
    finally:
        for page_process, _ in pages:
            page_process.terminate()
        relay_process.terminate()
        echo_process.terminate()
        one_hop_process.terminate()
        one_hop_process.join(5)
        store_dir.cleanup()
    return {
        "one_hop_p50_over_echo": statistics.median(one_p50_ratios),
        "one_hop_qps_over_echo": statistics.median(one_qps_ratios),
        "page_p50_over_echo": statistics.median(page_p50_ratios),
        "page_qps_over_echo": statistics.median(page_qps_ratios),
        "page_spread_qps_over_echo": statistics.median(spread_qps_ratios),
        "rounds": float(rounds),
        "echo_p50_ms": statistics.median(echo_p50),
        "relay_p50_ms": statistics.median(relay_p50),
        "p50_over_echo": statistics.median(p50_ratios),
        "p50_over_echo_min": min(p50_ratios),
        "p50_over_echo_max": max(p50_ratios),
        "qps_over_echo": statistics.median(qps_ratios),
        "qps_over_echo_min": min(qps_ratios),
        "qps_over_echo_max": max(qps_ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consumers", type=int, default=20_000, help="followers of the author (default 20,000)")
    parser.add_argument("--posts", type=int, default=10, help="posts delivered to all of them (default 10)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--rounds", type=int, default=5, help="echo/relay rounds (default 5)")
    args = parser.parse_args()
    relay = relay_floor(args.rounds)
    figures = store_floors(args.consumers, args.posts)
    if args.json:
        print(json.dumps({"relay": relay, "store": figures}, indent=2))
        return
    print(
        f"two-hop bare relay / echo, median of {args.rounds} rounds: single-call p50 {relay['p50_over_echo']:.2f}x "
        f"({relay['p50_over_echo_min']:.2f}-{relay['p50_over_echo_max']:.2f}), QPS {relay['qps_over_echo']:.2f}x "
        f"({relay['qps_over_echo_min']:.2f}-{relay['qps_over_echo_max']:.2f}); one hop with a LevelDB read / "
        f"echo: p50 {relay['one_hop_p50_over_echo']:.2f}x, QPS {relay['one_hop_qps_over_echo']:.2f}x; the page floor "
        f"(the Feed API answering a fixed page) / echo: p50 {relay['page_p50_over_echo']:.2f}x, "
        f"QPS {relay['page_qps_over_echo']:.2f}x, from three servers: QPS {relay['page_spread_qps_over_echo']:.2f}x"
    )
    base = figures["plyvel_puts_per_s"]
    print(f"raw plyvel batched puts           {base:>12,.0f} /s  1.00x")
    for label, key in (
        ("minimal edge-checked insert", "minimal_edge_checked_per_s"),
        ("FeedStore.insert_inbox (feedring)", "insert_inbox_per_s"),
    ):
        print(f"{label:<33} {figures[key]:>12,.0f} /s  {figures[key] / base:.3f}x")


if __name__ == "__main__":
    main()
