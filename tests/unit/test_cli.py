"""The `feedring` command line without servers: parsing, help, where the router address comes from,
and what a person (or a script, with --json) sees, with FeedClient replaced by a scripted fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from client import cli
from client.feed_client import (
    ClusterStatus,
    DeliveryStats,
    HotUser,
    NodeHealth,
    Page,
    Post,
    RepairProgress,
    ReplicationStats,
    RouterStats,
    User,
)
from common.errors import NotFound, Unavailable

ROUTER_IN_FILE = "127.0.0.1:27100"


class FakeClient:
    """Stands in for FeedClient: answers from `pages`/`posted`/..., and records every call."""

    def __init__(self) -> None:
        self.address = ""
        self.timeout_s = 0.0
        self.spread_reads = True
        self.calls: list[tuple[Any, ...]] = []
        self.pages: dict[str, Page[Any]] = {"": Page([], "")}  # page_token -> page
        self.error: Exception | None = None
        self.closed = False

    def __call__(
        self,
        address: str,
        timeout_s: float = 5.0,
        token: str | None = None,
        ca_file: str | None = None,
        spread_reads: bool = True,
    ) -> FakeClient:  # the constructor
        self.address, self.timeout_s, self.token, self.spread_reads = address, timeout_s, token, spread_reads
        return self

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def _answer(self, *call: Any) -> Any:
        self.calls.append(call)
        if self.error is not None:
            raise self.error
        return None

    def _page(self, name: str, user: str, page_size: int, page_token: str) -> Page[Any]:
        self._answer(name, user, page_size, page_token)
        return self.pages[page_token]

    def follow(self, follower: str, followee: str) -> bool:
        self._answer("follow", follower, followee)
        return True

    def post(self, author: str, text: str) -> Post:
        self._answer("post", author, text)
        return Post(77, author, text, 1_700_000_000_000)

    def delete_post(self, author: str, post_id: int) -> None:
        self._answer("delete_post", author, post_id)

    def timeline(self, user: str, page_size: int = 0, page_token: str = "") -> Page[Post]:
        return self._page("timeline", user, page_size, page_token)

    def user_posts(self, author: str, page_size: int = 0, page_token: str = "") -> Page[Post]:
        return self._page("user_posts", author, page_size, page_token)

    def followers(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        return self._page("followers", user, page_size, page_token)

    def following(self, user: str, page_size: int = 0, page_token: str = "") -> Page[str]:
        return self._page("following", user, page_size, page_token)

    def get_user(self, user: str) -> User:
        self._answer("get_user", user)
        return User(user, 12_000, 3, 40, True)

    def repair(
        self, node_id: str = "", partition: int | None = None, max_keys_per_second: int = 0
    ) -> Iterator[RepairProgress]:
        self._answer("repair", node_id, partition, max_keys_per_second)
        yield RepairProgress(64, 16, 1, 10, [], False)
        yield RepairProgress(64, 64, 3, 120, ["n2"], True)

    def cluster_status(self) -> ClusterStatus:
        self._answer("cluster_status")
        return ClusterStatus(
            epoch=4,
            partitions=64,
            replication_factor=1,
            nodes=[
                NodeHealth("n1", "127.0.0.1:27101", True, "", 33, {"posts": 1234, "inbox": 5}, 10, 50 * 2**20),
                NodeHealth("n2", "127.0.0.1:27102", False, "failed to connect [refused]", 31, {}, 0, 0),
                NodeHealth(
                    "n3",
                    "127.0.0.1:27103",
                    True,
                    "",
                    30,
                    {"posts": 99},
                    5,
                    40 * 2**20,
                    DeliveryStats(),
                    ReplicationStats(hints=17, hints_by_target={"n2": 17}, peers_down=["n2"], catching_up=False),
                ),
            ],
            hot_users=["star"],
            hot_registry=[HotUser("star", "HOT", True, 12_000), HotUser("faded", "COLD", False, 10)],
            router=RouterStats(cache_entries=1, cache_capacity=1000),
        )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeClient:
    """A FakeClient in place of FeedClient; no router or cluster file from the environment leaks in."""
    client = FakeClient()
    monkeypatch.setattr(cli, "FeedClient", client)
    monkeypatch.delenv(cli.ROUTER_ENV, raising=False)
    monkeypatch.delenv(cli.CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return client


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cluster_file(directory: Path, router: str = ROUTER_IN_FILE) -> Path:
    path = directory / "cluster.toml"
    path.write_text(
        "[cluster]\npartitions = 64\n\n"
        '[[nodes]]\nid = "n1"\naddress = "127.0.0.1:27101"\ndata_dir = "data/n1"\n\n'
        f'[[routers]]\nid = 0\naddress = "{router}"\n',
        encoding="utf-8",
    )
    return path


def posts(*ids: int) -> list[Post]:
    return [Post(i, f"author{i}", f"text {i}", 1_700_000_000_000 + i) for i in ids]


# -- where the router is -----------------------------------------------------------------------------


def test_router_comes_from_the_flag_first(
    fake: FakeClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster_file(tmp_path)
    monkeypatch.setenv(cli.ROUTER_ENV, "10.0.0.2:7100")
    assert run(capsys, "--router", "10.0.0.1:7100", "user", "bob")[0] == 0
    assert fake.address == "10.0.0.1:7100"
    assert fake.spread_reads is False  # one command, one client: reads from each key's primary


def test_router_comes_from_the_environment_before_the_cluster_file(
    fake: FakeClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster_file(tmp_path)
    monkeypatch.setenv(cli.ROUTER_ENV, "10.0.0.2:7100")
    assert run(capsys, "user", "bob")[0] == 0
    assert fake.address == "10.0.0.2:7100"


def test_router_comes_from_cluster_toml_in_the_current_directory(
    fake: FakeClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cluster_file(tmp_path)
    assert run(capsys, "user", "bob")[0] == 0
    assert fake.address == ROUTER_IN_FILE


def test_router_comes_from_the_cluster_file_named_by_flag_or_environment(
    fake: FakeClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    by_flag = cluster_file(tmp_path / "a", "127.0.0.1:1111")
    by_env = cluster_file(tmp_path / "b", "127.0.0.1:2222")
    monkeypatch.setenv(cli.CONFIG_ENV, str(by_env))
    assert run(capsys, "user", "bob")[0] == 0
    assert fake.address == "127.0.0.1:2222"
    assert run(capsys, "--config", str(by_flag), "user", "bob")[0] == 0
    assert fake.address == "127.0.0.1:1111"


def test_a_missing_or_bad_cluster_file_is_a_usage_error_naming_the_file(
    fake: FakeClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "--config", "nowhere.toml", "status")
    assert code == 2 and out == ""
    assert err == "error: nowhere.toml: no such cluster file (or pass --router HOST:PORT)\n"

    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster]\npartitions = 0\n", encoding="utf-8")
    code, _, err = run(capsys, "--config", str(bad), "status")
    assert code == 2 and "cluster.partitions must be an integer" in err and "Traceback" not in err
    assert fake.calls == []


def test_global_options_also_work_after_the_command(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    fake.pages = {"": Page(posts(2), "")}
    code, out, _ = run(capsys, "timeline", "alice", "--router", "10.0.0.9:7100", "--timeout", "1.5", "--json")
    assert code == 0 and json.loads(out)["posts"][0]["id"] == 2
    assert (fake.address, fake.timeout_s) == ("10.0.0.9:7100", 1.5)


def test_the_default_deadline_leaves_room_for_the_routers_own(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--router", "h:1", "user", "bob")
    assert fake.timeout_s == cli.DEFAULT_TIMEOUT_S > 5.0  # limits.rpc_timeout_s defaults to 5
    assert fake.closed


# -- help and usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    ["follow", "unfollow", "post", "delete", "timeline", "posts", "followers", "following", "user", "status", "repair"],
)
def test_every_command_has_help_that_teaches_by_example(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert f"usage: feedring {command}" in out
    assert f"example:\n  feedring {command}" in out
    assert "--router HOST:PORT" in out  # the global options are listed where they are accepted


def test_top_level_help_lists_commands_and_where_the_router_comes_from(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("follow", "timeline", "status", "user"):
        assert f"\n    {command} " in out
    assert "FEEDRING_ROUTER" in out and "[[routers]]" in out


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["follow", "alice"], "the following arguments are required: followee"),
        (["delete", "bob", "latest"], "invalid int value: 'latest'"),
        (["timeline", "alice", "--limit", "0"], "--limit: must be a whole number >= 1"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_a_bad_command_line_exits_2_and_says_what_is_wrong(
    fake: FakeClient, capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str
) -> None:
    code, out, err = run(capsys, "--router", "h:1", *argv)
    assert code == 2 and out == ""
    assert complaint in err
    assert fake.calls == []


# -- what commands print -----------------------------------------------------------------------------


def test_post_prints_the_new_id_or_with_json_the_post(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--router", "h:1", "post", "bob", "hello world") == (0, "77\n", "")
    code, out, _ = run(capsys, "--router", "h:1", "--json", "post", "bob", "hello world")
    assert json.loads(out) == {"id": 77, "author": "bob", "text": "hello world", "created_at_ms": 1_700_000_000_000}
    assert fake.calls[-1] == ("post", "bob", "hello world")


def test_follow_and_delete_say_what_happened(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--router", "h:1", "follow", "alice", "bob")[1] == "alice follows bob\n"
    assert json.loads(run(capsys, "--router", "h:1", "--json", "follow", "alice", "bob")[1]) == {"created": True}
    assert run(capsys, "--router", "h:1", "delete", "bob", "42")[1] == "deleted 42\n"
    assert fake.calls[-1] == ("delete_post", "bob", 42)


def test_timeline_json_is_one_document_with_the_next_page_token(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.pages = {"": Page(posts(9, 8), "tok-1")}
    code, out, err = run(capsys, "--router", "h:1", "--json", "timeline", "alice", "--page-size", "2")
    assert code == 0 and err == ""
    assert json.loads(out) == {
        "posts": [
            {"id": 9, "author": "author9", "text": "text 9", "created_at_ms": 1_700_000_000_009},
            {"id": 8, "author": "author8", "text": "text 8", "created_at_ms": 1_700_000_000_008},
        ],
        "next_page_token": "tok-1",
    }
    assert fake.calls == [("timeline", "alice", 2, "")]


def test_timeline_for_people_is_newest_first_one_line_each_with_a_hint_for_more(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.pages = {"": Page([*posts(9), Post(8, "mallory", "[bold]not markup[/bold] [/]", 1_700_000_000_008)], "tok")}
    code, out, err = run(capsys, "--router", "h:1", "timeline", "alice")
    assert code == 0
    first, second = out.splitlines()
    when = datetime.fromtimestamp(1_700_000_000.009).strftime("%Y-%m-%d %H:%M:%S")
    assert first.startswith(when) and "author9" in first and "text 9" in first and "9" in first.split()[-1]
    assert "mallory" in second and "[bold]not markup[/bold] [/]" in second  # post text is never rich markup
    assert "--page-token tok" in err and "feedring timeline alice" in err


def test_all_walks_every_page(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    fake.pages = {"": Page(["ann", "bob"], "t1"), "t1": Page(["cy"], "")}
    code, out, _ = run(capsys, "--router", "h:1", "--json", "followers", "zed", "--all")
    assert code == 0 and json.loads(out) == {"users": ["ann", "bob", "cy"], "next_page_token": ""}
    assert [c[3] for c in fake.calls] == ["", "t1"]


def test_limit_asks_for_what_is_left_so_the_token_continues_after_the_last_one_shown(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.pages = {"": Page(posts(9, 8), "t1"), "t1": Page(posts(7), "t2")}
    code, out, _ = run(capsys, "--router", "h:1", "--json", "posts", "bob", "--limit", "3", "--page-size", "2")
    document = json.loads(out)
    assert [p["id"] for p in document["posts"]] == [9, 8, 7] and document["next_page_token"] == "t2"
    assert fake.calls == [("user_posts", "bob", 2, ""), ("user_posts", "bob", 1, "t1")]


def test_users_print_one_per_line(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    fake.pages = {"": Page(["ann", "bob"], "")}
    assert run(capsys, "--router", "h:1", "following", "zed") == (0, "ann\nbob\n", "")


def test_user_shows_counts_and_hot(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--router", "h:1", "user", "star")
    assert code == 0 and "12,000 followers" in out and "40 posts" in out and "hot" in out
    as_json = json.loads(run(capsys, "--router", "h:1", "user", "star", "--json")[1])
    assert as_json == {"user": "star", "follower_count": 12000, "following_count": 3, "post_count": 40, "hot": True}


def test_status_shows_every_node_its_health_keys_and_the_hot_users(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--router", "h:1", "status")
    assert code == 0
    assert "epoch 4" in out and "64 partitions" in out and "replication factor 1" in out
    n1 = next(line for line in out.splitlines() if "n1" in line)
    assert "127.0.0.1:27101" in n1 and "SERVING" in n1 and "1,234" in n1 and "50 MiB" in n1
    n2 = next(line for line in out.splitlines() if "n2" in line)
    assert "DOWN" in n2 and "failed to connect [refused]" in n2
    assert "star (hot, pinned" in out and "faded" not in out


def test_status_shows_hints_held_and_what_each_node_sees_down(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "--router", "h:1", "status")[1]
    n3 = next(line for line in out.splitlines() if line.startswith("│ n3"))
    assert "17" in n3 and "not checked yet" in n3
    assert "n3 holds hints (n2: 17), sees down: n2" in out


def test_repair_draws_progress_and_says_what_it_could_not_reach(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--router", "h:1", "repair", "--node", "n1", "--max-rate", "500")
    assert fake.calls[-1] == ("repair", "n1", None, 500)
    assert "repaired 64 of 64 partitions: 3 were out of sync, 120 entries copied" in out
    assert "not reachable (repair again once they are back): n2" in out
    assert code == 1  # not everything could be compared
    code, out, _ = run(capsys, "--router", "h:1", "--json", "repair", "--partition", "5")
    assert fake.calls[-1] == ("repair", "", 5, 0)
    assert json.loads(out.splitlines()[-1])["done"] is True


def test_status_json_is_the_whole_status(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    status = json.loads(run(capsys, "--router", "h:1", "--json", "status")[1])
    assert status["epoch"] == 4
    assert [(n["id"], n["healthy"]) for n in status["nodes"]] == [("n1", True), ("n2", False), ("n3", True)]
    assert status["nodes"][2]["replication"]["hints_by_target"] == {"n2": 17}
    assert status["nodes"][0]["keys_by_family"] == {"posts": 1234, "inbox": 5}


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [NotFound("bob has no post 3"), Unavailable("cannot reach the feedring router at h:1: failed to connect")],
)
def test_a_server_error_is_one_line_on_stderr_and_exit_1(
    fake: FakeClient, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    fake.error = error
    code, out, err = run(capsys, "--router", "h:1", "delete", "bob", "3")
    assert (code, out, err) == (1, "", f"error: {error}\n")


@pytest.fixture(autouse=True)
def _no_leftover_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(cli.ROUTER_ENV, raising=False)
    monkeypatch.delenv(cli.CONFIG_ENV, raising=False)
    yield
