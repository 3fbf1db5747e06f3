"""Every command of README.md's "Using it" runs, against the session cluster, as a reader would type
it: the `feedring` user commands, and both Python examples. Its cluster administration block is
covered in test_membership.py: `node add` and `node resume` through this CLI, the plan, remove,
`--dead` and abort through the same Admin calls from Python (each needs a cluster of its own)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from client import FeedClient
from tests.integration.conftest import ClusterHandle
from tests.support import eventually

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE_ADDRESS = "127.0.0.1:7100"
EXAMPLE_POST_ID = "250815851320573952"


def _using_it() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Using it")
    return text[start : text.index("\n## ", start + 1)]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def _user_commands() -> list[list[str]]:
    """The `$ feedring ...` lines of the first shell block, comments and pipes cut off."""
    lines = _blocks(_using_it(), "")[0].splitlines()
    commands = [line[2:].split("#")[0].split("|")[0] for line in lines if line.startswith("$ feedring")]
    return [shlex.split(c)[1:] for c in commands]


def _feedring(cluster: ClusterHandle, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.cli", "--config", str(cluster.path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _feedring_until_ctrl_c(cluster: ClusterHandle, args: list[str]) -> subprocess.CompletedProcess[str]:
    """A command that runs until Ctrl-C (`timeline --follow`): it prints, then SIGINT ends it."""
    with subprocess.Popen(
        [sys.executable, "-m", "client.cli", "--config", str(cluster.path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(proc.args, proc.returncode, first + stdout, stderr)


def test_the_readme_feedring_commands_run(cluster: ClusterHandle) -> None:
    commands = _user_commands()
    assert len(commands) >= 12, commands
    post_id = ""
    for args in commands:
        if args == ["top"]:
            args = ["top", "--once", "--interval", "0.5"]  # the live view, one frame of it
        args = [post_id if a == EXAMPLE_POST_ID else a for a in args]
        if args[:1] == ["delete"]:  # deletes what `post` made: wait until it is readable everywhere
            eventually(lambda: _assert(_feedring(cluster, ["posts", "bob"]).stdout.count("hello world") >= 1))
        out = _feedring_until_ctrl_c(cluster, args) if "--follow" in args else _feedring(cluster, args)
        assert out.returncode == 0, (args, out.stderr)
        if args[:1] == ["post"]:
            post_id = out.stdout.strip()
            assert post_id.isdigit()
        if args[:1] == ["--json"]:
            json.loads(out.stdout)


def test_the_readme_python_examples_run(cluster: ClusterHandle) -> None:
    sync_example, async_example = _blocks(_using_it(), "python")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for example in (sync_example, async_example):
            exec(compile(example.replace(EXAMPLE_ADDRESS, cluster.router_address), "README.md", "exec"), {})
    with FeedClient(cluster.router_address) as feed:
        eventually(lambda: _assert({"hello world", "hello from asyncio"} <= _texts(feed, "alice")))


def _texts(feed: FeedClient, user: str) -> set[str]:
    return {p.text for p in feed.iter_timeline(user)}


def _assert(condition: bool) -> None:
    assert condition
