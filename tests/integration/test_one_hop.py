"""One-hop reads on real processes: every node serves the Feed API, a map-aware client follows a map
that moved under it, and clients that know nothing of feedring's Python code (a reflection-only
client, grpc-js, a WatchTimeline stream too) work against a router and against a node alike.
Kill -9 and SIGSTOP of the node a map-aware client uses are in test_replicas.py; node add and
remove under its load in test_membership.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from client import FeedClient
from client.routing import RoutingTable
from ops.local_cluster import PROJECT_ROOT
from tests.integration.conftest import ClusterHandle
from tests.support import eventually


def test_every_node_answers_the_feed_api_and_the_routing_map(cluster: ClusterHandle) -> None:
    writer = cluster.client()
    writer.follow("onehop-reader", "onehop-author")
    post = writer.post("onehop-author", "read me in one hop")
    tables = []
    for node in cluster.config.nodes:
        with FeedClient(node.feed, map_aware=False) as direct:
            eventually(lambda d=direct: _assert([p.id for p in d.timeline("onehop-reader").items] == [post.id]))
        tables.append(RoutingTable.from_proto(_routing_map(node.feed)))
    router_table = RoutingTable.from_proto(_routing_map(cluster.router_address))
    assert all(t == router_table for t in tables)
    assert sorted(router_table.all_addresses()) == sorted(n.feed for n in cluster.config.nodes)


def test_a_client_handed_a_stale_map_follows_the_new_one_without_an_error(cluster: ClusterHandle) -> None:
    client = cluster.client()
    client.follow("stale-reader", "stale-author")
    current = client.routed.table()  # type: ignore[union-attr]
    assert current is not None
    # An older map that sends every key to one node's address, and a dead address for another.
    dead = "127.0.0.1:1"
    stale = replace(current, epoch=current.epoch - 1, addresses=(dead, *current.addresses[1:]))
    client.routed.routing = stale  # type: ignore[union-attr]
    for i in range(20):
        client.post("stale-author", f"through a stale map {i}")
        client.timeline("stale-reader")
    assert client.routed.routing.epoch == current.epoch  # type: ignore[union-attr]
    assert dead not in client.routed.routing.addresses  # type: ignore[union-attr]


def _assert(condition: bool) -> None:
    assert condition


def _routing_map(address: str) -> object:
    from protos import feed_pb2, feed_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        return feed_pb2_grpc.FeedStub(channel).GetRoutingMap(feed_pb2.GetRoutingMapRequest(), timeout=10)


def _reflection_timeline(address: str, user: str) -> list[str]:
    """GetTimeline through nothing but server reflection: no generated code, no .proto file."""
    with grpc.insecure_channel(address) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName("feedring.v1.Feed")
        method = service.methods_by_name["GetTimeline"]
        request_class = message_factory.GetMessageClass(method.input_type)
        reply_class = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=reply_class.FromString,
        )
        reply = call(request_class(user=user), timeout=10)
        return [p.text for p in reply.posts]


def test_a_reflection_only_client_reads_from_a_router_and_from_a_node(cluster: ClusterHandle) -> None:
    client = cluster.client()
    client.follow("reflect-reader", "reflect-author")
    client.post("reflect-author", "found by reflection")
    for address in (cluster.router_address, cluster.config.nodes[1].feed):
        eventually(lambda a=address: _assert(_reflection_timeline(a, "reflect-reader") == ["found by reflection"]))


_GRPC_JS_CLIENT = """
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
const [protoRoot, address, author, reader] = process.argv.slice(2);
const definition = loader.loadSync('protos/feed.proto', {includeDirs: [protoRoot], longs: String});
const Feed = grpc.loadPackageDefinition(definition).feedring.v1.Feed;
const feed = new Feed(address, grpc.credentials.createInsecure());
const deadline = () => new Date(Date.now() + 10000);
feed.Follow({follower: reader, followee: author}, {deadline: deadline()}, (err) => {
  if (err) { console.error(err.message); process.exit(1); }
  feed.Post({author, text: 'from grpc-js'}, {deadline: deadline()}, (err, post) => {
    if (err) { console.error(err.message); process.exit(1); }
    feed.GetRoutingMap({}, {deadline: deadline()}, (err, map) => {
      if (err) { console.error(err.message); process.exit(1); }
      console.log(JSON.stringify({id: post.id, nodes: map.nodes.length}));
    });
  });
});
"""


# Opens WatchTimeline from the proto alone, prints the first post the stream sends, and ends.
_GRPC_JS_WATCH = """
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
const [protoRoot, address, user, afterId] = process.argv.slice(2);
const definition = loader.loadSync('protos/feed.proto', {includeDirs: [protoRoot], longs: String});
const Feed = grpc.loadPackageDefinition(definition).feedring.v1.Feed;
const feed = new Feed(address, grpc.credentials.createInsecure());
const stream = feed.WatchTimeline({user, afterId});  // proto-loader camel-cases field names
stream.on('data', (event) => {
  if (event.post) { console.log(JSON.stringify({id: event.post.id, text: event.post.text})); process.exit(0); }
});
stream.on('error', (err) => { console.error(err.message); process.exit(1); });
setTimeout(() => { console.error('no event within 20 s'); process.exit(1); }, 20000);
"""


@pytest.fixture(scope="module")
def grpc_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with @grpc/grpc-js and @grpc/proto-loader installed (from the npm registry)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed: the grpc-js client cannot run here")
    directory = tmp_path_factory.mktemp("grpc-js")
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "@grpc/grpc-js@1", "@grpc/proto-loader@0.7"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        pytest.skip(f"npm could not install @grpc/grpc-js: {installed.stderr.strip()[:300]}")
    (directory / "client.js").write_text(_GRPC_JS_CLIENT)
    (directory / "watch.js").write_text(_GRPC_JS_WATCH)
    return directory


def test_grpc_js_posts_and_reads_the_map_through_a_router_and_a_node(cluster: ClusterHandle, grpc_js: Path) -> None:
    for i, address in enumerate((cluster.router_address, cluster.config.nodes[2].feed)):
        done = subprocess.run(
            ["node", str(grpc_js / "client.js"), str(PROJECT_ROOT), address, f"js-author{i}", f"js-reader{i}"],
            cwd=grpc_js,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["nodes"] == len(cluster.config.nodes)
        reader = cluster.client()
        expected = [int(answer["id"])]
        eventually(lambda r=reader, i=i, e=expected: _assert([p.id for p in r.timeline(f"js-reader{i}").items] == e))


def test_grpc_js_watches_a_timeline_from_the_proto_alone(cluster: ClusterHandle, grpc_js: Path) -> None:
    client = cluster.client()
    client.follow("js-watcher", "js-watched")
    before = client.post("js-watched", "already seen")
    live = client.post("js-watched", "streamed to grpc-js")
    address = cluster.config.nodes[0].feed
    eventually(lambda: _assert([p.id for p in client.timeline("js-watcher").items][:1] == [live.id]))
    done = subprocess.run(
        ["node", str(grpc_js / "watch.js"), str(PROJECT_ROOT), address, "js-watcher", str(before.id)],
        cwd=grpc_js,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"id": str(live.id), "text": "streamed to grpc-js"}
