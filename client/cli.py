"""`feedring`: the command line, a thin layer over FeedClient.

    feedring [--config FILE | --router HOST:PORT] [--json] COMMAND ...

User commands: follow, unfollow, post, delete, timeline, posts, followers, following, user.
Cluster commands: status, node add|remove|resume|abort. Errors print `error: <message>` to stderr
and exit 1 (2 for a bad command line or cluster file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from client import node_commands
from client.feed_client import FeedClient, Page, Post
from common.config import ConfigError, load
from common.errors import FeedringError

__all__ = ["main", "build_parser", "router_address"]

T = TypeVar("T")

_EXAMPLES = """\
examples:
  feedring follow alice bob            alice follows bob
  feedring post bob "hello world"      prints the new post's id
  feedring timeline alice              alice's home timeline, newest first
  feedring timeline alice --all        every page
  feedring --json user bob             counters as JSON
  feedring status                      nodes, partitions, keys, hot users
  feedring node add n4 127.0.0.1:7104  grow the cluster (start the node first: make node ...)

The router is --router HOST:PORT, else $FEEDRING_ROUTER, else the first [[routers]] address in
--config (default: $FEEDRING_CONFIG or cluster.toml).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feedring",
        description="Use and administer a feedring cluster: a distributed home-timeline service.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=os.environ.get("FEEDRING_CONFIG", "cluster.toml"), help="cluster file")
    parser.add_argument("--router", default=os.environ.get("FEEDRING_ROUTER"), help="router HOST:PORT")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S", help="deadline per call (default 10)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # --json is accepted after the command too (`feedring timeline alice --json`).
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")

    def command(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[json_flag],
        )

    p = command("follow", "make FOLLOWER follow FOLLOWEE (idempotent)", "feedring follow alice bob")
    p.add_argument("follower")
    p.add_argument("followee")
    p = command("unfollow", "make FOLLOWER stop following FOLLOWEE", "feedring unfollow alice bob")
    p.add_argument("follower")
    p.add_argument("followee")
    p = command("post", "publish a post; prints its id", 'feedring post bob "hello world"')
    p.add_argument("author")
    p.add_argument("text")
    p = command("delete", "delete one of AUTHOR's posts", "feedring delete bob 250815851320573952")
    p.add_argument("author")
    p.add_argument("post_id", type=int)
    for name, help_text, example in (
        ("timeline", "USER's home timeline, newest first", "feedring timeline alice --page-size 50"),
        ("posts", "USER's own posts, newest first", "feedring posts bob --all"),
        ("followers", "who follows USER", "feedring followers bob --all"),
        ("following", "whom USER follows", "feedring following alice"),
    ):
        p = command(name, help_text, example)
        p.add_argument("user")
        p.add_argument("--page-size", type=int, default=0, help="entries per page (default: the cluster's)")
        p.add_argument("--page-token", default="", help="next_page_token of the previous page")
        p.add_argument("--all", action="store_true", help="walk every page")
    p = command("user", "a user's follower, following and post counts, and whether it is hot", "feedring user bob")
    p.add_argument("user")
    command("status", "the cluster: epoch, nodes, health, partitions, keys, hot users, changes", "feedring status")
    node_commands.register(commands)
    return parser


def router_address(args: argparse.Namespace) -> str:
    if args.router:
        return str(args.router)
    return load(args.config).routers[0].address


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        address = router_address(args)
    except ConfigError as exc:
        print(f"error: {exc} (or pass --router HOST:PORT)", file=sys.stderr)
        return 2
    try:
        with FeedClient(address, timeout_s=args.timeout) as client:
            return _run(client, args)
    except FeedringError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command == "node":
            print("\ninterrupted: the change goes on in the router; `feedring node resume` watches it", file=sys.stderr)
        return 130


def _run(client: FeedClient, args: argparse.Namespace) -> int:
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=True, width=160)  # piped: do not squeeze tables to 80
    if args.command == "follow":
        created = client.follow(args.follower, args.followee)
        _say(args, {"created": created}, f"{args.follower} follows {args.followee}" + ("" if created else " (already)"))
    elif args.command == "unfollow":
        removed = client.unfollow(args.follower, args.followee)
        _say(
            args,
            {"removed": removed},
            f"{args.follower} no longer follows {args.followee}" + ("" if removed else " (was not following)"),
        )
    elif args.command == "post":
        post = client.post(args.author, args.text)
        _say(args, asdict(post), str(post.id))
    elif args.command == "delete":
        client.delete_post(args.author, args.post_id)
        _say(args, {"deleted": args.post_id}, f"deleted {args.post_id}")
    elif args.command in ("timeline", "posts"):
        fetch = client.timeline if args.command == "timeline" else client.user_posts
        _show_posts(out, args, _pages(lambda token: fetch(args.user, args.page_size, token), args))
    elif args.command in ("followers", "following"):
        fetch_users = client.followers if args.command == "followers" else client.following
        _show_users(out, args, _pages(lambda token: fetch_users(args.user, args.page_size, token), args))
    elif args.command == "user":
        user = client.get_user(args.user)
        if args.json:
            print(json.dumps(asdict(user)))
        else:
            hot = " — hot: posts merged at read time" if user.hot else ""
            out.print(
                f"{user.user}: {user.follower_count} followers, {user.following_count} following, "
                f"{user.post_count} posts{hot}"
            )
    elif args.command == "status":
        _show_status(out, client, args)
    elif args.command == "node":
        return node_commands.run_change(client.channel, client.address, args, args.json)
    return 0


def _say(args: argparse.Namespace, as_json: dict[str, Any], text: str) -> None:
    print(json.dumps(as_json) if args.json else text)


def _pages(fetch: Callable[[str], Page[T]], args: argparse.Namespace) -> Iterator[Page[T]]:
    page = fetch(args.page_token)
    yield page
    while args.all and page.next_page_token:
        page = fetch(page.next_page_token)
        yield page


def _show_posts(out: Console, args: argparse.Namespace, pages: Iterator[Page[Post]]) -> None:
    posts: list[Post] = []
    token = ""
    for page in pages:
        posts += page.items
        token = page.next_page_token
    if args.json:
        print(json.dumps({"posts": [asdict(p) for p in posts], "next_page_token": token}))
        return
    if not posts:
        out.print("(no posts)")
    for post in posts:
        when = datetime.fromtimestamp(post.created_at_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
        out.print(f"[dim]{when}[/dim]  [bold]{post.author}[/bold]: {post.text}  [dim]({post.id})[/dim]")
    if token:
        out.print(f"[dim]more: --page-token {token}   (or --all)[/dim]")


def _show_users(out: Console, args: argparse.Namespace, pages: Iterator[Page[str]]) -> None:
    users: list[str] = []
    token = ""
    for page in pages:
        users += page.items
        token = page.next_page_token
    if args.json:
        print(json.dumps({"users": users, "next_page_token": token}))
        return
    for user in users:
        out.print(user)
    if not users:
        out.print("(none)")
    if token:
        out.print(f"[dim]more: --page-token {token}   (or --all)[/dim]")


def _show_status(out: Console, client: FeedClient, args: argparse.Namespace) -> None:
    status = client.cluster_status()
    if args.json:
        print(json.dumps(asdict(status)))
        return
    out.print(
        f"epoch {status.epoch} · {status.partitions} partitions · replication factor "
        f"{status.replication_factor} · {len(status.nodes)} nodes"
    )
    table = Table(show_lines=False)
    for column in (
        "node",
        "address",
        "health",
        "partitions",
        "posts",
        "inbox",
        "followers",
        "following",
        "users",
        "RSS",
    ):
        table.add_column(column, justify="right" if column not in ("node", "address", "health") else "left")
    for node in status.nodes:
        keys = node.keys_by_family
        table.add_row(
            node.id,
            node.address,
            "[green]SERVING[/green]" if node.healthy else f"[red]DOWN[/red] {node.error[:60]}",
            str(node.partitions),
            *(f"{keys.get(f, 0):,}" for f in ("posts", "inbox", "followers", "following", "users")),
            f"{node.rss_bytes / 2**20:.0f} MiB" if node.healthy else "-",
        )
    out.print(table)
    if status.change:
        progress = status.change_progress
        moved = f": {progress.phase.lower()}, {progress.keys_moved:,} keys moved" if progress.phase else ""
        out.print(f"[yellow]membership change in progress[/yellow]: {status.change}{moved}")
    hot = [
        f"{h.user} ({h.state.lower()}{', pinned' if h.pinned else ''}, {h.follower_count:,} followers)"
        for h in status.hot_registry
        if h.state in ("MIGRATING", "HOT", "COOLING")
    ]
    out.print("hot users: " + (", ".join(hot) if hot else "none"))
    r = status.router
    out.print(
        f"router: hot-post cache {r.cache_entries}/{r.cache_capacity} users, {r.fanout_pending} fan-outs in flight "
        f"({r.fanout_backlog:,} inbox writes queued), "
        f"{r.inbox_writes:,} inbox writes, {r.fanout_failed_batches} failed batches, RSS {r.rss_bytes / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    sys.exit(main())
