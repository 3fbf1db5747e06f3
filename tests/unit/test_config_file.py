"""cluster.toml: the shipped file loads, defaults apply, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = '[[nodes]]\nid = "n1"\naddress = "127.0.0.1:7101"\n[[routers]]\nid = 0\naddress = "127.0.0.1:7100"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return path


def test_the_shipped_cluster_file_loads() -> None:
    config = load(ROOT / "cluster.toml")
    assert [n.id for n in config.nodes] == ["n1", "n2", "n3"]
    assert config.partitions == 1024 and config.limits.timeline_cap == 800
    assert config.limits.page_size_default == 20 and config.limits.page_size_max == 200
    assert config.limits.post_max_bytes == 1024 and config.hot.salt_buckets == 8
    assert config.nodes[0].metrics == "127.0.0.1:9101" and config.routers[0].metrics_address(1) == "127.0.0.1:9201"


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load(write(tmp_path, MINIMAL))
    assert config.replication_factor == 1 and config.vnodes == 160
    assert config.nodes[0].data_dir == tmp_path / "data" / "n1"  # relative to the file, not the cwd
    assert config.run_dir == tmp_path / ".run"
    assert config.hot.follower_threshold == 10_000 and config.hot.cooldown_ratio == 0.8


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[limits]\npage_size_max = 0\n" + MINIMAL, "limits.page_size_max"),
        ("[limits]\npage_size_default = 300\n" + MINIMAL, "page_size_default"),
        ('[limits]\npost_max_bytes = "big"\n' + MINIMAL, "limits.post_max_bytes"),
        ("[cluster]\npartitons = 10\n" + MINIMAL, "cluster.partitons"),
        ("[cluster]\nreplication_factor = 0\n" + MINIMAL, "cluster.replication_factor"),
        ("[cluster]\nreplication_factor = 3\n[replication]\nwrite_quorum = 4\n" + MINIMAL, "replication.write_quorum"),
        ("[replication]\nreplica_timeout = 1\n" + MINIMAL, "replication.replica_timeout"),
        ("[hot_users]\ncooldown_ratio = 1.5\n" + MINIMAL, "hot_users.cooldown_ratio"),
        ("[hot_users]\nusers = [1]\n" + MINIMAL, "hot_users.users"),
        ('[storage]\ncompression = "zstd"\n' + MINIMAL, "storage.compression must be one of 'none', 'snappy'"),
        ("[storage]\ntimeline_cache = -1\n" + MINIMAL, "storage.timeline_cache must be an integer from 0"),
        ("[storage]\nwrite_buffer_mb = 0\n" + MINIMAL, "storage.write_buffer_mb must be an integer from 1 to 1024"),
        ("[storage]\ntable_file_mb = 4096\n" + MINIMAL, "storage.table_file_mb must be an integer from 1 to 1024"),
        (MINIMAL + '[[nodes]]\nid = "n1"\naddress = "127.0.0.1:7102"\n', "nodes[1].id 'n1' is used twice"),
        (MINIMAL + '[[nodes]]\nid = "n2"\naddress = "nowhere"\n', "nodes[1].address"),
        ('[[routers]]\nid = 0\naddress = "127.0.0.1:7100"\n', "nodes must list"),
        (MINIMAL.replace("id = 0", "id = 99"), "routers[0].id"),
        ("this is not toml", "cannot read"),
        (MINIMAL.replace('7101"', '7101"\nmetrics = "9100"'), "nodes[0].metrics must be host:port"),
        (
            MINIMAL.replace('7101"', '7101"\nmetrics = "127.0.0.1:9201"') + 'workers = 2\nmetrics = "127.0.0.1:9200"\n',
            "metrics address 127.0.0.1:9201 is used twice",
        ),
    ],
)
def test_invalid_files_name_the_key(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace("[", r"\[").replace("]", r"\]")):
        load(write(tmp_path, text))


def test_a_process_can_bind_one_address_and_advertise_another(tmp_path: Path) -> None:
    text = MINIMAL.replace('7101"', '7101"\nbind = "0.0.0.0:7101"')
    config = load(write(tmp_path, text))
    assert config.nodes[0].address == "127.0.0.1:7101" and config.nodes[0].listen == "0.0.0.0:7101"
    assert config.routers[0].listen == config.routers[0].address  # no bind: it listens where it is found


def test_metrics_can_listen_on_one_address_and_be_scraped_at_another(tmp_path: Path) -> None:
    node = '7101"\nmetrics = "10.0.0.5:9100"\nmetrics_bind = "0.0.0.0:9100"'
    router = 'workers = 2\nmetrics = "10.0.0.9:9200"\nmetrics_bind = "0.0.0.0:9200"\n'
    config = load(write(tmp_path, MINIMAL.replace('7101"', node) + router))
    assert config.nodes[0].metrics == "10.0.0.5:9100" and config.nodes[0].metrics_listen == "0.0.0.0:9100"
    assert config.routers[0].metrics_address(1) == "10.0.0.9:9201"
    assert config.routers[0].metrics_listen(1) == "0.0.0.0:9201"
    with pytest.raises(ConfigError, match=r"nodes\[0\].metrics_bind needs `metrics`"):
        load(write(tmp_path, MINIMAL.replace('7101"', '7101"\nmetrics_bind = "0.0.0.0:9100"')))


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such cluster file"):
        load(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("value", "seconds"), [('"14d"', 14 * 86400.0), ('"12h"', 43200.0), ('"90s"', 90.0), ("600", 600.0), ("0", 0.0)]
)
def test_inactive_after_takes_seconds_or_a_duration(tmp_path: Path, value: str, seconds: float) -> None:
    config = load(write(tmp_path, MINIMAL + f"[fanout]\ninactive_after = {value}\n"))
    assert config.fanout.inactive_after_s == seconds


def test_inactive_after_defaults_to_two_weeks_and_refuses_nonsense(tmp_path: Path) -> None:
    assert load(write(tmp_path, MINIMAL)).fanout.inactive_after_s == 14 * 86400
    with pytest.raises(ConfigError, match='fanout.inactive_after must be seconds or a duration such as "90s"'):
        load(write(tmp_path, MINIMAL + '[fanout]\ninactive_after = "two weeks"\n'))


def test_two_servers_at_one_address_are_refused_though_many_may_bind_one_port(tmp_path: Path) -> None:
    """A router given a node's Feed port starts anyway while the node is up, and its callers are
    answered by the node; on separate hosts, every node binding 0.0.0.0:7101 is fine."""
    clash = MINIMAL.replace('7101"', '7101"\nfeed = "127.0.0.1:7100"')
    with pytest.raises(ConfigError, match=r"routers 0 address and nodes n1 feed are both at 127\.0\.0\.1:7100"):
        load(write(tmp_path, clash))
    two_hosts = (
        '[[nodes]]\nid = "n1"\naddress = "10.0.0.1:7101"\nbind = "0.0.0.0:7101"\n'
        '[[nodes]]\nid = "n2"\naddress = "10.0.0.2:7101"\nbind = "0.0.0.0:7101"\n'
        '[[routers]]\nid = 0\naddress = "10.0.0.3:7100"\n'
    )
    assert [n.listen for n in load(write(tmp_path, two_hosts)).nodes] == ["0.0.0.0:7101", "0.0.0.0:7101"]


def test_blocks_are_stored_uncompressed_unless_snappy_is_asked_for(tmp_path: Path) -> None:
    assert load(write(tmp_path, MINIMAL)).storage.compression == "none"
    assert load(write(tmp_path, '[storage]\ncompression = "snappy"\n' + MINIMAL)).storage.compression == "snappy"


def test_a_node_keeps_4096_first_pages_unless_told_otherwise(tmp_path: Path) -> None:
    assert load(write(tmp_path, MINIMAL)).storage.timeline_cache == 4096
    assert load(write(tmp_path, "[storage]\ntimeline_cache = 0\n" + MINIMAL)).storage.timeline_cache == 0


def test_leveldb_gets_its_own_memtable_and_table_sizes_unless_told_otherwise(tmp_path: Path) -> None:
    storage = load(write(tmp_path, MINIMAL)).storage
    assert (storage.write_buffer_mb, storage.table_file_mb) == (4, 2)
    storage = load(write(tmp_path, "[storage]\nwrite_buffer_mb = 8\ntable_file_mb = 4\n" + MINIMAL)).storage
    assert (storage.write_buffer_mb, storage.table_file_mb) == (8, 4)
