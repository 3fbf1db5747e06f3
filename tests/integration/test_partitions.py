"""Network partitions and a rolling restart across emulated hosts (ops/netns.py): every node and
router in its own network namespace, RF=3, majority writes. For each fault — a node isolated, a node isolated one way, a
majority/minority split, a router cut off from one node — two writers post through the two routers
for 2 s, 10 s under the fault, and 2 s after healing; every operation is recorded as acknowledged,
failed or unknown (Jepsen's set check). Then, once hints and repair have run: every acknowledged post
is stored and in every follower's timeline, nothing appears that was never written, and every
replica of every partition holds the same data. Skipped (with the reason) where namespaces are not
allowed; runs in `make test` on these machines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from client import FeedClient
from client.cli import main as cli_main
from common.config import load
from common.errors import DeadlineExceeded, FeedringError, Unavailable
from ops.local_cluster import ClusterStartError
from ops.netcluster import NetCluster
from ops.netns import Hosts, available
from tests.integration.conftest import wait_settled
from tests.support import eventually, node_digests, write_cluster_file

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "namespaces available")

FAULT_S = 10.0
SKEW_S = 5.0
FOLLOWERS = 6
AUTHORS = 3


@dataclass
class Op:
    writer: str  # "r0" or "r1": the router it went through
    author: str
    text: str
    started: float
    ended: float = 0.0
    outcome: str = ""  # ok / failed / unknown
    error: str = ""


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Net:
    cluster: NetCluster
    clients: dict[str, FeedClient]  # router host name -> client
    secret: str

    @property
    def hosts(self) -> Hosts:
        return self.cluster.hosts


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    base = write_cluster_file(
        tmp_path_factory.mktemp("partitions"),
        nodes=3,
        partitions=32,
        replication_factor=3,
        routers=2,
        limits={"timeline_cap": 5000},
        replication={"repair_interval_s": 0},  # the test runs repair itself, after healing
    )
    # Node clocks 5 s apart each way (libfaketime): n1 ahead, n3 behind. Every scenario runs so.
    cluster = NetCluster(base, prefix="frt", subnet="10.77.77", skew_clocks_s=SKEW_S)
    try:
        local = cluster.start(quiet=True)
        config = load(cluster.config_path)
        # Each writer goes through its router: which side of a split a router is on is what is tested.
        clients = {
            f"r{r.id}": FeedClient(r.address, timeout_s=10.0, token=local.secret, map_aware=False)
            for r in config.routers
        }
        yield Net(cluster, clients, local.secret)
        for client in clients.values():
            client.close()
    finally:
        cluster.stop(quiet=True)
    assert not cluster.hosts.leftovers(), f"namespaces or links left behind: {cluster.hosts.leftovers()}"


def _writer(client: FeedClient, name: str, authors: list[str], history: History, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        op = Op(name, authors[n % len(authors)], f"{authors[0]}-{name}-{n}", time.monotonic())
        try:
            client.post(op.author, op.text)
            op.outcome = "ok"
        except (Unavailable, DeadlineExceeded) as exc:  # may have been applied somewhere: unknown
            op.outcome, op.error = "unknown", exc.message
        except FeedringError as exc:
            op.outcome, op.error = "failed", exc.message
        op.ended = time.monotonic()
        with history.lock:
            history.ops.append(op)
        time.sleep(0.02)


def _run(net: Net, scenario: str, fault: Callable[[Hosts], None]) -> tuple[History, float, float]:
    authors = [f"{scenario}-a{i}" for i in range(AUTHORS)]
    followers = [f"{scenario}-f{i}" for i in range(FOLLOWERS)]
    net.clients["r0"].bulk_follow([(f, a) for f in followers for a in authors])
    history, stop = History(), threading.Event()
    threads = [
        threading.Thread(target=_writer, args=(client, name, authors, history, stop), daemon=True)
        for name, client in net.clients.items()
    ]
    for t in threads:
        t.start()
    time.sleep(2.0)
    fault(net.hosts)
    fault_start = time.monotonic()
    try:
        time.sleep(FAULT_S)
    finally:
        fault_end = time.monotonic()
        net.hosts.heal()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    _check(net, history, authors, followers)
    return history, fault_start, fault_end


def _check(net: Net, history: History, authors: list[str], followers: list[str]) -> None:
    client = net.clients["r0"]
    wait_settled(client, timeout_s=90.0)  # hints replayed, deliveries done
    progress = list(client.repair())  # anti-entropy for anything hints missed
    assert progress and progress[-1].done and not progress[-1].unreachable, progress[-1:]
    attempted = {op.text: op for op in history.ops}
    acknowledged = {op.text for op in history.ops if op.outcome == "ok"}
    stored = {p.text for a in authors for p in client.iter_user_posts(a, 200)}
    lost = acknowledged - stored
    assert not lost, f"{len(lost)} acknowledged posts lost, e.g. {sorted(lost)[:5]}"
    unwritten = {t for t in stored if t not in attempted or attempted[t].outcome == "failed"}
    assert not unwritten, f"posts that were never acknowledged as possible appeared: {sorted(unwritten)[:5]}"

    def delivered() -> None:
        for follower in followers:
            timeline = {p.text for p in client.iter_timeline(follower, 200)}
            missing = acknowledged - timeline
            assert not missing, f"{follower} misses {len(missing)} acknowledged posts"

    eventually(delivered, timeout_s=60.0, interval_s=1.0)
    config = load(net.cluster.config_path)
    digests = {n.id: node_digests(n.address, config.partitions, net.secret) for n in config.nodes}
    assert digests["n1"] == digests["n2"] == digests["n3"], "replicas differ after healing and repair"


def _fractions(history: History, start: float, end: float) -> dict[str, tuple[float, int]]:
    """Per writer: the fraction of operations started during the fault that did not succeed."""
    out = {}
    for writer in sorted({op.writer for op in history.ops}):
        ops = [op for op in history.ops if op.writer == writer and start <= op.started < end]
        out[writer] = (sum(op.outcome != "ok" for op in ops) / len(ops) if ops else 0.0, len(ops))
    return out


def _report(scenario: str, fractions: dict[str, tuple[float, int]]) -> None:
    shown = ", ".join(f"via {w}: {f:.0%} of {n} not acknowledged" for w, (f, n) in fractions.items())
    print(f"\n{scenario}: {shown}")


def test_a_node_isolated_both_ways(net: Net) -> None:
    history, start, end = _run(net, "isolated", lambda hosts: hosts.isolate("n2"))
    fractions = _fractions(history, start, end)
    _report("node isolated", fractions)
    # Both routers are on the majority side: every partition still has two replicas they reach.
    assert all(n >= 10 for _, n in fractions.values())
    assert all(f < 0.25 for f, _ in fractions.values()), fractions


def test_a_node_isolated_one_way(net: Net) -> None:
    history, start, end = _run(net, "oneway", lambda hosts: hosts.isolate_outbound("n3"))
    fractions = _fractions(history, start, end)
    _report("node isolated one way (its packets dropped)", fractions)
    assert all(f < 0.25 for f, _ in fractions.values()), fractions


def test_a_majority_minority_split(net: Net) -> None:
    history, start, end = _run(net, "split", lambda hosts: hosts.split(["n1", "n2", "r0"], ["n3", "r1"]))
    fractions = _fractions(history, start, end)
    _report("split {n1, n2, r0} | {n3, r1}", fractions)
    assert fractions["r0"][0] < 0.25, fractions  # the majority side keeps serving
    # The minority side acknowledges nothing while it cannot reach a quorum: every write it answered
    # during the split was refused, and said why. (A write it was still retrying when the split
    # healed may succeed then: a quorum acknowledged it.)
    answered = [op for op in history.ops if op.writer == "r1" and start + 1.0 < op.ended < end]
    assert len(answered) >= 2, "the minority router does not answer promptly during the split"
    assert not [op for op in answered if op.outcome == "ok"], answered
    assert all("replica" in op.error for op in answered), [op.error for op in answered]


def test_a_router_cut_off_from_one_node(net: Net) -> None:
    history, start, end = _run(net, "routercut", lambda hosts: hosts.cut("r0", "n1"))
    fractions = _fractions(history, start, end)
    _report("router r0 cut off from n1", fractions)
    assert all(f < 0.25 for f, _ in fractions.values()), fractions


def test_the_last_acknowledged_state_wins_on_every_replica_whatever_the_clocks_say(net: Net) -> None:
    """n1's clock is 5 s ahead, n3's 5 s behind. With r1 reaching only n1 and r0 only n3, and n1
    and n3 cut from each other (n2 reaches both), r1's writes are coordinated by the fast clock and
    r0's by the slow one, which has not seen them (their hints wait on n1). Follow / unfollow /
    follow, mute / unmute and post / delete alternate between the routers; after healing, every
    replica holds the last acknowledged state, and status shows the skew."""
    r0, r1, hosts = net.clients["r0"], net.clients["r1"], net.hosts
    ann, bob, cat, dan = "skew-ann", "skew-bob", "skew-cat", "skew-dan"
    cuts = [("n1", "n3"), ("r1", "n2"), ("r1", "n3"), ("r0", "n1"), ("r0", "n2")]
    for a, b in cuts:
        hosts.cut(a, b)
    try:
        time.sleep(2.0)  # the failure detectors (two missed checks) see the cuts
        r1.follow(ann, bob)  # by n1: a version 5 s ahead
        r1.follow(ann, cat)
        r1.mute(ann, dan)
        post = r1.post(bob, "deleted under skew")
        kept = r1.post(bob, "kept under skew")
        r0.unfollow(ann, bob)  # by n3: 10 s behind the follow's version, which it has not seen
        r0.unmute(ann, dan)
        r0.delete_post(bob, post.id)
        r0.unfollow(ann, cat)
        r1.follow(ann, cat)  # and back: follow / unfollow / follow across the two clocks
    finally:
        hosts.heal()
    client = r0
    wait_settled(client, timeout_s=90.0)  # hints replayed
    config = load(net.cluster.config_path)
    digests = {n.id: node_digests(n.address, config.partitions, net.secret) for n in config.nodes}
    assert digests["n1"] == digests["n2"] == digests["n3"], "replicas differ once hints are replayed"
    for via in (r0, r1):
        assert list(via.iter_following(ann)) == [cat]
        assert cat in set(via.iter_following(ann)) and ann not in set(via.iter_followers(bob))
        assert list(via.iter_muted(ann)) == []
        assert [p.text for p in via.iter_user_posts(bob)] == [kept.text]
    status = client.cluster_status()
    seen = {n.id: n.replication.clock_skewed() for n in status.nodes}
    # Each coordinated writes to n2 (whose clock is right): n1 sees it 5 s behind, n3 5 s ahead.
    assert abs(seen["n1"].get("n2", 0) + 5_000) < 1_500 and abs(seen["n3"].get("n2", 0) - 5_000) < 1_500, seen
    assert sum(n.replication.writes_restamped for n in status.nodes) >= 1


def test_a_rolling_restart_of_every_node_under_load(net: Net) -> None:
    """An upgrade as docs/deployment.md describes it: each node in turn stopped gracefully (SIGTERM),
    started again, and the next one only once the cluster has settled (it is back, caught up, no
    hints owed). A writer and a reader run throughout, map-aware (one hop to the nodes' hosts):
    not one call fails, and every acknowledged post is stored and delivered."""
    authors = [f"rolling-a{i}" for i in range(AUTHORS)]
    readers = [f"rolling-f{i}" for i in range(FOLLOWERS)]
    admin = net.clients["r0"]
    admin.bulk_follow([(f, a) for f in readers for a in authors])
    config = load(net.cluster.config_path)
    writer = FeedClient(config.routers[0].address, timeout_s=10.0)
    reader = FeedClient(config.routers[1].address, timeout_s=10.0)
    history, stop = History(), threading.Event()
    read_failures: list[str] = []
    reads = 0

    def read_forever() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                reader.timeline(readers[reads % len(readers)])
            except FeedringError as exc:
                read_failures.append(exc.message)
            reads += 1
            time.sleep(0.01)

    threads = [
        threading.Thread(target=_writer, args=(writer, "w", authors, history, stop), daemon=True),
        threading.Thread(target=read_forever, daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        local = net.cluster.local()
        for node in config.nodes:
            local.restart(node.id)
            wait_settled(admin, timeout_s=60.0, owed_for_under_s=1.0)  # the writer never pauses
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        writer.close()
        reader.close()
    failed = [(op.outcome, op.error) for op in history.ops if op.outcome != "ok"]
    print(f"\nrolling restart: {len(history.ops)} posts, {reads} reads, {len(failed) + len(read_failures)} failed")
    assert len(history.ops) >= 50 and reads >= 100, (len(history.ops), reads)
    assert not failed, failed[:5]
    assert not read_failures, read_failures[:5]
    _check(net, history, authors, readers)


def test_netcluster_cli_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make netcluster`'s code path on its own bridge: start, the CLI from the root namespace, stop,
    nothing left behind."""
    base = write_cluster_file(tmp_path, nodes=3, partitions=16, replication_factor=3)
    cluster = NetCluster(base, prefix="frs", subnet="10.77.78")
    try:
        cluster.start(quiet=True)
        config = str(cluster.config_path)
        assert load(config).nodes[0].address.startswith("10.77.78.")
        assert cli_main(["--config", config, "follow", "ns-fan", "ns-author"]) == 0
        assert cli_main(["--config", config, "post", "ns-author", "across hosts"]) == 0

        def delivered() -> None:
            capsys.readouterr()
            assert cli_main(["--config", config, "timeline", "ns-fan"]) == 0
            assert "across hosts" in capsys.readouterr().out

        eventually(delivered, timeout_s=10.0, interval_s=0.2)
    finally:
        cluster.stop(quiet=True)
    assert not cluster.hosts.leftovers()


def test_a_failed_netcluster_start_leaves_nothing_behind(tmp_path: Path) -> None:
    base = write_cluster_file(tmp_path, nodes=2, partitions=8, replication_factor=1)
    cluster = NetCluster(base, prefix="frf", subnet="10.77.79")
    with pytest.raises(ClusterStartError, match="not healthy"):
        cluster.start(timeout_s=0.01, quiet=True)  # no process can be healthy that fast
    assert not cluster.hosts.leftovers()
    assert not any(cluster.local().pid(name) for name in cluster.host_names())
