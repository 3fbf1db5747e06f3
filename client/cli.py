"""`feedring`: the command line, a thin layer over FeedClient.

    feedring [--config FILE] [--router HOST:PORT] [--timeout S] [--json] COMMAND ...

User commands: follow, unfollow, post, delete, timeline, posts, followers, following, user,
mute, unmute, block, unblock, muted, blocked.
Cluster commands: status, node add|remove|resume|abort. Global options also work after the
command. Errors print `error: <message>` to stderr and exit 1 (2 for a bad command line or
cluster file); never a traceback for an expected failure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from client import node_commands, top
from client.feed_client import CA_FILE_ENV, ClusterStatus, FeedClient, NodeHealth, Page, Post, Removed
from common import security
from common.config import ConfigError, load
from common.errors import FeedringError, InvalidArgument
from common.security import CLIENT_TOKEN_ENV

__all__ = ["main", "build_parser", "router_address"]

T = TypeVar("T")

ROUTER_ENV = "FEEDRING_ROUTER"
CONFIG_ENV = "FEEDRING_CONFIG"
DEFAULT_CONFIG = "cluster.toml"
# Above the router's own per-node deadline (limits.rpc_timeout_s, 5 s by default), so when a node
# is down the router's message naming that node arrives before our deadline does.
DEFAULT_TIMEOUT_S = 10.0
# --limit without --page-size asks for exactly what is left, in pages of at most this many (the
# default limits.page_size_max is 200): never more than is shown, so the printed next page token
# continues right after the last entry shown.
_LIMIT_PAGE_MAX = 100
# Key families in the order `status` shows them; families a node reports beyond these follow.
_FAMILIES = ("posts", "inbox", "followers", "following", "users")

_EXAMPLES = """\
examples:
  feedring follow alice bob            alice follows bob
  feedring post bob "hello world"      prints the new post's id
  feedring timeline alice              alice's home timeline, newest first
  feedring timeline alice --all        every page
  feedring timeline alice --follow     then new posts as they arrive (Ctrl-C stops)
  feedring user bob --json             counters as JSON
  feedring mute alice carol            carol's posts leave alice's timeline (the follow stays)
  feedring block alice dave            no follows either way, neither sees the other's posts
  feedring status                      nodes, partitions, keys, hot users
  feedring top                         live rates, p99s and backlogs of every process
  feedring node add n4 127.0.0.1:7104  grow the cluster (start the node first: make node ...)

The router is --router HOST:PORT, else $FEEDRING_ROUTER, else the first [[routers]] address in
--config (default: $FEEDRING_CONFIG, else cluster.toml).
Credentials: $FEEDRING_TOKEN, else the cluster secret named by --config (security.secret_file,
or $FEEDRING_CLUSTER_SECRET). Admin commands (status, node, repair) need the cluster secret.
TLS: when --config has [tls] enabled the CLI trusts its tls.ca_file; else --ca-file or $FEEDRING_CA_FILE.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feedring",
        description="Use and administer a feedring cluster: a distributed home-timeline service.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, default=None)
    parser.set_defaults(json=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # The same options after the command (`feedring timeline alice --json`). SUPPRESS: a command
    # that does not repeat an option leaves the value given before it alone.
    after = argparse.ArgumentParser(add_help=False)
    _global_options(after.add_argument_group("global options (also accepted before COMMAND)"), argparse.SUPPRESS)

    def command(
        name: str, run: Callable[[FeedClient, argparse.Namespace], int], summary: str, why: str, example: str
    ) -> argparse.ArgumentParser:
        p = commands.add_parser(
            name,
            help=summary,
            description=textwrap.fill(f"{summary[0].upper()}{summary[1:]}. {why}", 90),
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[after],
        )
        p.set_defaults(run=run)
        return p

    p = command(
        "follow",
        _follow,
        "make FOLLOWER follow FOLLOWEE",
        "FOLLOWEE's recent posts are copied into FOLLOWER's timeline. Following again changes nothing.",
        "feedring follow alice bob",
    )
    p.add_argument("follower", help="the user who follows")
    p.add_argument("followee", help="the user followed")
    p = command(
        "unfollow",
        _unfollow,
        "make FOLLOWER stop following FOLLOWEE",
        "FOLLOWEE's posts leave FOLLOWER's timeline. Unfollowing twice is not an error.",
        "feedring unfollow alice bob",
    )
    p.add_argument("follower", help="the user who follows")
    p.add_argument("followee", help="the user followed")
    p = command(
        "post",
        _post,
        "publish a post and print its id",
        "The reply comes once the post is durable; followers' timelines get it within a second. "
        "With --json, prints the whole post.",
        'feedring post bob "hello world"',
    )
    p.add_argument("author", help="a user id: 1-64 letters, digits, '_', '.' or '-'")
    p.add_argument("text", help="UTF-8, at most limits.post_max_bytes (1024 by default); quote it")
    p = command(
        "delete",
        _delete,
        "delete one of AUTHOR's posts",
        "It also leaves every follower's timeline. POST_ID is what `feedring post` printed.",
        "feedring delete bob 250815851320573952",
    )
    p.add_argument("author", help="the post's author")
    p.add_argument("post_id", type=int, help="the post's id")
    for name, run, summary, why in (
        (
            "mute",
            _relation,
            "hide TARGET's posts from USER's timeline",
            "Past and future posts, in reads and in `timeline --follow`; USER still follows TARGET. "
            "Muting twice is not an error.",
        ),
        ("unmute", _relation, "show TARGET's posts in USER's timeline again", "The past ones come back too."),
        (
            "block",
            _relation,
            "block TARGET for USER",
            "Removes the follows between them both ways and refuses new ones (either way) until unblocked; "
            "neither sees the other's posts in their timeline. Blocking twice is not an error.",
        ),
        ("unblock", _relation, "lift USER's block of TARGET", "The follows the block removed are not restored."),
    ):
        p = command(name, run, summary, why, f"feedring {name} alice carol")
        p.add_argument("user", help="the user who " + name.replace("un", "", 1) + "s")
        p.add_argument("target", help="the other user")
    for name, run, summary, example in (
        ("timeline", _timeline, "USER's home timeline, newest first", "feedring timeline alice --limit 50"),
        ("posts", _posts, "USER's own posts, newest first", "feedring posts bob --all --json"),
        ("followers", _followers, "who follows USER, in a stable order", "feedring followers bob --all"),
        ("following", _following, "whom USER follows, in a stable order", "feedring following alice"),
        ("muted", _muted, "whom USER mutes, in a stable order", "feedring muted alice"),
        ("blocked", _blocked, "whom USER has blocked, in a stable order", "feedring blocked alice --json"),
    ):
        p = command(
            name,
            run,
            summary,
            "One page by default; --all or --limit walks pages. When more remain, the next page token "
            "is printed (and is next_page_token in --json).",
            example,
        )
        p.add_argument("user", metavar="USER", help="a user id")
        paging = p.add_argument_group("paging")
        paging.add_argument("--limit", type=_positive, metavar="N", help="show at most N, walking pages as needed")
        paging.add_argument(
            "--page-size", type=_positive, default=0, metavar="N", help="entries per request (default: the cluster's)"
        )
        paging.add_argument("--page-token", default="", metavar="T", help="continue where a previous page ended")
        paging.add_argument("--all", action="store_true", help="walk every page")
        if name == "timeline":
            p.add_argument(
                "--follow",
                "-f",
                action="store_true",
                help="then print new posts as they arrive (and removals), like tail -f; Ctrl-C stops",
            )
            p.add_argument(
                "--in-order",
                type=_positive,
                metavar="MS",
                default=0,
                help="with --follow: print posts in strict id order, each held MS milliseconds after it "
                "was made (a delivery landing later is printed when it lands)",
            )
    p = command(
        "user",
        _user,
        "a user's follower, following and post counts",
        "Also says whether the user is hot (posts merged at read time instead of fanned out).",
        "feedring user bob",
    )
    p.add_argument("user", metavar="NAME", help="a user id")
    command(
        "status",
        _status,
        "the cluster as the router sees it",
        "Epoch, partitions, replication factor; per node its health, partitions, keys per family "
        "and memory; hot users; a membership change in progress.",
        "feedring status",
    )
    p = command(
        "repair",
        _repair,
        "compare replicas and copy only what differs",
        "Each partition's replicas compare per-bucket digests; a bucket that differs is merged both "
        "ways (versions and tombstones decide, so nothing deleted comes back). Nodes also do this by "
        "themselves in the background, slowly; run it after a node was down longer than its peers "
        "keep hints for it, or to check that replicas agree.",
        "feedring repair\n  feedring repair --node n2\n  feedring repair --partition 17 --max-rate 5000",
    )
    p.add_argument("--node", default="", metavar="ID", help="only the partitions this node holds")
    p.add_argument("--partition", type=int, default=None, metavar="P", help="only this partition")
    p.add_argument(
        "--max-rate", type=int, default=0, metavar="KEYS", help="keys compared per second per node (default: unlimited)"
    )
    p = command(
        "top",
        _top,
        "a live view of every process, from their /metrics",
        "Per process: calls/s, errors/s, p99, CPU and memory; per node also the fan-out backlog, "
        "delivery lag p99, inbox writes/s, hints held, keys and disk; then the busiest methods. "
        "Processes are found by their `metrics` addresses in --config. Ctrl-C quits.",
        "feedring top\n  feedring top --once --interval 2",
    )
    p.add_argument("--once", action="store_true", help="print one view (two scrapes INTERVAL apart) and exit")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between scrapes (default 1)")
    node_commands.register(commands)
    commands.choices["node"].set_defaults(run=_node)
    return parser


def _global_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: Any) -> None:
    parser.add_argument(
        "--config",
        default=default,
        metavar="FILE",
        help=f"cluster file to find the router in (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--router", default=default, metavar="HOST:PORT", help=f"the router to talk to (default: ${ROUTER_ENV})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=default,
        metavar="S",
        help=f"deadline of each call in seconds (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--ca-file",
        default=default,
        metavar="FILE",
        help=f"trust this CA: the cluster serves TLS (default: ${CA_FILE_ENV}, else tls.ca_file when --config "
        "has [tls] enabled)",
    )
    parser.add_argument("--json", action="store_true", default=default, help="print one JSON document")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 (got {value!r})")
    return number


def router_address(args: argparse.Namespace, environ: dict[str, str] | None = None) -> str:
    """--router, else $FEEDRING_ROUTER, else the first router of the cluster file (ConfigError if bad)."""
    env = os.environ if environ is None else environ
    if args.router:
        return str(args.router)
    if env.get(ROUTER_ENV):
        return env[ROUTER_ENV]
    return load(args.config or env.get(CONFIG_ENV) or DEFAULT_CONFIG).routers[0].address


def credentials(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str | None:
    """What to send: $FEEDRING_TOKEN, else the cluster secret of the cluster file (Admin commands
    need it; Feed commands need nothing unless the cluster requires client tokens), else nothing."""
    env = os.environ if environ is None else environ
    if env.get(CLIENT_TOKEN_ENV):
        return env[CLIENT_TOKEN_ENV]
    try:
        return security.cluster_secret(load(args.config or env.get(CONFIG_ENV) or DEFAULT_CONFIG), env)
    except ConfigError:
        return None


def ca_file(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str | None:
    """--ca-file, else $FEEDRING_CA_FILE, else the cluster file's CA when it turns TLS on."""
    env = os.environ if environ is None else environ
    if args.ca_file:
        return str(args.ca_file)
    if env.get(CA_FILE_ENV):
        return env[CA_FILE_ENV]
    try:
        config = load(args.config or env.get(CONFIG_ENV) or DEFAULT_CONFIG)
    except ConfigError:
        return None
    return str(config.tls.ca_file) if config.tls.enabled else None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed)
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    try:
        address = router_address(args)
    except ConfigError as exc:
        print(f"error: {exc} (or pass --router HOST:PORT)", file=sys.stderr)
        return 2
    timeout = args.timeout if args.timeout is not None else DEFAULT_TIMEOUT_S
    try:
        # One command, one client: reads start at each key's primary, so a post made by the last
        # command reads back at once (a spread read may reach the replica still taking it).
        with FeedClient(
            address,
            timeout_s=timeout,
            token=credentials(args) or "",
            ca_file=ca_file(args) or "",
            spread_reads=False,
        ) as client:
            code: int = args.run(client, args)
            return code
    except FeedringError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # e.g. an unreadable --ca-file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command == "node":
            print("\ninterrupted: the change goes on in the router; `feedring node resume` watches it", file=sys.stderr)
        return 130


# -- commands: each one call (or a walk of pages), then output ---------------------------------------


def _follow(client: FeedClient, args: argparse.Namespace) -> int:
    created = client.follow(args.follower, args.followee)
    _say(args, {"created": created}, f"{args.follower} follows {args.followee}" + ("" if created else " (already)"))
    return 0


def _unfollow(client: FeedClient, args: argparse.Namespace) -> int:
    removed = client.unfollow(args.follower, args.followee)
    note = "" if removed else " (was not following)"
    _say(args, {"removed": removed}, f"{args.follower} no longer follows {args.followee}{note}")
    return 0


def _post(client: FeedClient, args: argparse.Namespace) -> int:
    post = client.post(args.author, args.text)
    _say(args, asdict(post), str(post.id))
    return 0


def _delete(client: FeedClient, args: argparse.Namespace) -> int:
    client.delete_post(args.author, args.post_id)
    _say(args, {"deleted": args.post_id}, f"deleted {args.post_id}")
    return 0


def _timeline(client: FeedClient, args: argparse.Namespace) -> int:
    pages = _pages(lambda size, token: client.timeline(args.user, size, token), args)
    if not args.follow:
        return _show_posts(args, pages)
    page = _collect(pages)
    _show_posts(args, iter([page]))
    newest = max((p.id for p in page.items), default=0)
    if not args.json:
        _console().print(f"[dim]-- new posts in {escape(args.user)}'s timeline as they arrive; Ctrl-C stops --[/dim]")
    # Ctrl-C stops it, as it says, even when started with SIGINT ignored (a script's background
    # job inherits that, and Python then raises no KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for event in client.watch_timeline(args.user, after_id=newest, removals=True, order_hold_ms=args.in_order):
            _show_event(args, event)
    except KeyboardInterrupt:
        return 0
    return 0


def _show_event(args: argparse.Namespace, event: Post | Removed) -> None:
    if isinstance(event, Removed):
        _say(args, {"removed": event.post_id}, f"(removed #{event.post_id})")
    elif args.json:
        print(json.dumps(asdict(event)))
    else:
        _print_post(_console(), event)
    sys.stdout.flush()


def _posts(client: FeedClient, args: argparse.Namespace) -> int:
    return _show_posts(args, _pages(lambda size, token: client.user_posts(args.user, size, token), args))


def _followers(client: FeedClient, args: argparse.Namespace) -> int:
    return _show_users(args, _pages(lambda size, token: client.followers(args.user, size, token), args))


def _following(client: FeedClient, args: argparse.Namespace) -> int:
    return _show_users(args, _pages(lambda size, token: client.following(args.user, size, token), args))


def _muted(client: FeedClient, args: argparse.Namespace) -> int:
    return _show_users(args, _pages(lambda size, token: client.muted(args.user, size, token), args))


def _blocked(client: FeedClient, args: argparse.Namespace) -> int:
    return _show_users(args, _pages(lambda size, token: client.blocked(args.user, size, token), args))


_RELATION_SAID = {
    "mute": ("mutes", "already muted"),
    "unmute": ("no longer mutes", "was not muted"),
    "block": ("has blocked", "already blocked"),
    "unblock": ("no longer blocks", "was not blocked"),
}


def _relation(client: FeedClient, args: argparse.Namespace) -> int:
    changed = getattr(client, args.command)(args.user, args.target)
    done, unchanged = _RELATION_SAID[args.command]
    _say(args, {"changed": changed}, f"{args.user} {done} {args.target}" + ("" if changed else f" ({unchanged})"))
    return 0


def _user(client: FeedClient, args: argparse.Namespace) -> int:
    user = client.get_user(args.user)
    hot = " (hot: posts merged at read time)" if user.hot else ""
    _say(
        args,
        asdict(user),
        f"{user.user}: {user.follower_count:,} followers, {user.following_count:,} following, "
        f"{user.post_count:,} posts{hot}",
    )
    return 0


def _top(_client: FeedClient, args: argparse.Namespace) -> int:
    try:
        config = load(args.config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return top.run(config, max(args.interval, 0.1), args.once)


def _status(client: FeedClient, args: argparse.Namespace) -> int:
    status = client.cluster_status()
    if args.json:
        print(json.dumps(asdict(status)))
    else:
        _print_status(_console(), status)
    return 0


def _repair(client: FeedClient, args: argparse.Namespace) -> int:
    stream = client.repair(args.node, args.partition, args.max_rate)
    last = None
    if args.json:
        for last in stream:
            print(json.dumps(asdict(last)), flush=True)
    else:
        columns = (TextColumn("[bold]repair"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[detail]}"))
        with Progress(*columns, console=_console(stderr=True)) as bar:
            task = bar.add_task("repair", total=None, detail="")
            for last in stream:
                bar.update(
                    task,
                    total=max(last.partitions_total, 1),
                    completed=last.partitions_done,
                    detail=f"{last.partitions_done}/{last.partitions_total} partitions, "
                    f"{last.out_of_sync} out of sync, {last.keys_repaired:,} entries copied",
                )
        if last is not None:
            print(
                f"repaired {last.partitions_done} of {last.partitions_total} partitions: {last.out_of_sync} "
                f"were out of sync, {last.keys_repaired:,} entries copied"
            )
            if last.unreachable:
                print(f"not reachable (repair again once they are back): {', '.join(last.unreachable)}")
    return 0 if last is not None and last.done and not last.unreachable else 1


def _node(client: FeedClient, args: argparse.Namespace) -> int:
    return node_commands.run_change(client.calls, client.address, args, args.json)


# -- output ----------------------------------------------------------------------------------------


def _console(stderr: bool = False) -> Console:
    out = Console(highlight=False, soft_wrap=True, stderr=stderr)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=True, stderr=stderr, width=200)  # piped: no squeezing to 80
    return out


def _say(args: argparse.Namespace, as_json: dict[str, Any], text: str) -> None:
    print(json.dumps(as_json) if args.json else text)


def _pages(fetch: Callable[[int, str], Page[T]], args: argparse.Namespace) -> Iterator[Page[T]]:
    """The first page, then more while --all or --limit asks for them; the last page is cut to --limit."""
    left: int | None = args.limit
    page_size: int = args.page_size

    def size() -> int:
        return page_size if left is None else min(left, page_size or _LIMIT_PAGE_MAX)

    try:
        page = fetch(size(), args.page_token)
    except InvalidArgument as exc:
        if left is not None and not page_size and "page_size" in exc.message:
            exc.message += f" (--limit asks for pages of up to {_LIMIT_PAGE_MAX}; pass a smaller --page-size)"
        raise
    while True:
        if left is not None:
            page = Page(page.items[:left], page.next_page_token)
            left -= len(page.items)
        yield page
        more = args.all or (left is not None and left > 0)
        if not (more and page.next_page_token):
            return
        page = fetch(size(), page.next_page_token)


def _collect(pages: Iterator[Page[T]]) -> Page[T]:
    items: list[T] = []
    token = ""
    for page in pages:
        items += page.items
        token = page.next_page_token
    return Page(items, token)


def _show_posts(args: argparse.Namespace, pages: Iterator[Page[Post]]) -> int:
    page = _collect(pages)
    if args.json:
        print(json.dumps({"posts": [asdict(p) for p in page.items], "next_page_token": page.next_page_token}))
        return 0
    out = _console()
    if not page.items:
        out.print("(no posts)")
    for post in page.items:
        _print_post(out, post)
    _hint_next_page(args, page.next_page_token)
    return 0


def _print_post(out: Console, post: Post) -> None:
    out.print(
        f"[dim]{_local_time(post.created_at_ms)}[/dim]  [bold]{escape(post.author)}[/bold]  "
        f"{escape(post.text)}  [dim]#{post.id}[/dim]"
    )


def _show_users(args: argparse.Namespace, pages: Iterator[Page[str]]) -> int:
    page = _collect(pages)
    if args.json:
        print(json.dumps({"users": page.items, "next_page_token": page.next_page_token}))
        return 0
    for user in page.items:
        print(user)
    if not page.items:
        print("(none)")
    _hint_next_page(args, page.next_page_token)
    return 0


def _local_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _hint_next_page(args: argparse.Namespace, token: str) -> None:
    """On stderr, so stdout stays one line per entry for pipes."""
    if token:
        size = f" --page-size {args.page_size}" if args.page_size else ""
        again = f"feedring {args.command} {escape(args.user)}{size} --page-token {escape(token)}"
        _console(stderr=True).print(f"[dim]more: {again}   (or --all)[/dim]")


def _sync(node: NodeHealth) -> str:
    """The node's last repair: catching up (a pass running), or how many partitions differed, and when."""
    rep = node.replication
    if rep.catching_up:
        return "[yellow]catching up[/yellow]"
    if rep.repairing:
        return "[yellow]repairing[/yellow]"
    if not rep.last_repair_ms:
        return "not checked yet"
    ago = max(time.time() - rep.last_repair_ms / 1000, 0)
    verdict = "[green]yes[/green]" if not rep.partitions_out_of_sync else f"{rep.partitions_out_of_sync} repaired"
    return f"{verdict} ({ago:.0f}s ago)"


def _health(node: NodeHealth) -> str:
    if not node.healthy:
        return f"[red]DOWN[/red] {escape(node.error[:60])}"
    if node.disk_error:
        return "[yellow]SERVING reads, writes refused[/yellow]"
    return "[green]SERVING[/green]"


def _print_status(out: Console, status: ClusterStatus) -> None:
    out.print(
        f"epoch {status.epoch} · {status.partitions} partitions · replication factor "
        f"{status.replication_factor} · {len(status.nodes)} nodes"
    )
    seen = {family for node in status.nodes for family in node.keys_by_family}
    families = list(_FAMILIES) + sorted(seen - set(_FAMILIES) - {"deliveries"})  # shown as "owed"
    table = Table()
    for column in ("node", "address", "health", "partitions", *families, "owed", "hints", "in sync", "RSS"):
        table.add_column(column, justify="left" if column in ("node", "address", "health") else "right")
    for node in status.nodes:
        keys, owed = node.keys_by_family, node.delivery
        table.add_row(
            escape(node.id),
            escape(node.address),
            _health(node),
            str(node.partitions),
            *(f"{keys.get(f, 0):,}" if node.healthy else "-" for f in families),
            (f"{owed.records:,}" + (f", {owed.oldest_age_s:.0f}s" if owed.records else "")) if node.healthy else "-",
            f"{node.replication.hints:,}" if node.healthy else "-",
            _sync(node) if node.healthy else "-",
            f"{node.rss_bytes / 2**20:.0f} MiB" if node.healthy else "-",
        )
    out.print(table)
    delivering = [n for n in status.nodes if n.healthy and (n.delivery.records or n.delivery.inbox_writes_per_s)]
    out.print(
        "delivery (owed: posts and deletes not yet in every follower's inbox, oldest age): "
        + (
            ", ".join(
                f"{escape(n.id)} {n.delivery.inbox_writes_per_s:,.0f} inbox writes/s, {n.delivery.retries} retries"
                + (
                    f", lag p50/p99 {n.delivery.lag_p50_ms:,.0f}/{n.delivery.lag_p99_ms:,.0f} ms"
                    if n.delivery.lag_samples
                    else ""
                )
                for n in delivering
            )
            or "idle"
        )
    )
    for n in status.nodes:
        if n.healthy and n.disk_error:
            node_id, refused = escape(n.id), escape(n.disk_error)
            then = "free space: it takes writes again within seconds and catches up by itself"
            out.print(f"[yellow]disk[/yellow]: {node_id} refuses writes: {refused} ({then})")
    away = [n for n in status.nodes if n.healthy and (n.delivery.inactive_readers or n.delivery.inbox_entries_skipped)]
    if away:
        out.print(
            "readers away (fanout.inactive_after; fan-out skips them until they read): "
            + ", ".join(
                f"{escape(n.id)} {n.delivery.inactive_readers:,} inactive, "
                f"{n.delivery.inbox_entries_skipped:,} entries skipped"
                for n in away
            )
        )
    held = [n for n in status.nodes if n.healthy and (n.replication.hints or n.replication.peers_down)]
    for n in held:
        targets = ", ".join(f"{t}: {c:,}" for t, c in sorted(n.replication.hints_by_target.items()))
        down = ", ".join(n.replication.peers_down)
        out.print(
            f"replication: {escape(n.id)} holds hints ({escape(targets) or 'none'})"
            + (f", sees down: {escape(down)}" if down else "")
        )
    for n in status.nodes:
        skewed = n.replication.clock_skewed() if n.healthy else {}
        if skewed:
            offsets = ", ".join(f"{p} {o / 1000:+.1f} s" for p, o in sorted(skewed.items()))
            out.print(
                f"[yellow]clock skew[/yellow]: seen from {escape(n.id)}, peers' clocks are off by {escape(offsets)} "
                f"(more than replication.max_clock_skew {n.replication.max_clock_skew_ms / 1000:g} s): check NTP"
            )
    if status.change:
        progress = status.change_progress
        moved = f": {progress.phase.lower()}, {progress.keys_moved:,} keys moved" if progress.phase else ""
        out.print(f"[yellow]membership change in progress[/yellow]: {escape(status.change)}{moved}")
    hot = [
        f"{h.user} ({h.state.lower()}{', pinned' if h.pinned else ''}, {h.follower_count:,} followers)"
        for h in status.hot_registry
        if h.state in ("MIGRATING", "HOT", "COOLING")
    ] or list(status.hot_users)
    out.print("hot users: " + (escape(", ".join(hot)) if hot else "none"))
    r = status.router
    out.print(
        f"router: hot-post cache {r.cache_entries}/{r.cache_capacity} users "
        f"({r.cache_hits:,} hits, {r.cache_misses:,} misses), RSS {r.rss_bytes / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    sys.exit(main())
