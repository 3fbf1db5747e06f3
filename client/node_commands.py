"""`feedring node add|remove|resume|abort`: membership changes with a plan and a live progress bar.

The change itself runs in the router; these commands start it (or attach to it) and draw its
progress stream. Interrupting the command (Ctrl-C) does not stop the change: run
`feedring node resume` to watch it again.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

import grpc
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from client.errors import translate_errors
from protos import admin_pb2, admin_pb2_grpc

__all__ = ["register", "run_change"]

Kind = admin_pb2.ChangeMembershipRequest

_EPILOG = """\
examples:
  make node ID=n4 ADDR=127.0.0.1:7104        # start the new node first (empty)
  feedring node add n4 127.0.0.1:7104 --dry-run
  feedring node add n4 127.0.0.1:7104
  feedring node remove n2                    # then n2 can be stopped
  feedring node remove n2 --dead             # n2 is lost: rebuild its replicas from the others
  feedring node resume                       # after an interruption; or: feedring node abort
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    node = subparsers.add_parser(
        "node",
        help="add or remove storage nodes (rebalances partitions)",
        description="Grow or shrink the cluster while it serves traffic. Partitions whose owner "
        "changes are streamed node to node; nothing is lost if anything is interrupted.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = node.add_subparsers(dest="node_action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="add a running, empty node", epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add.add_argument("node_id", help="the new node's id, e.g. n4")
    add.add_argument("address", help="its host:port, e.g. 127.0.0.1:7104")
    add.add_argument(
        "--feed",
        default="",
        metavar="HOST:PORT",
        help="where the node serves the public Feed API (map-aware clients call it), e.g. 127.0.0.1:7204",
    )
    remove = actions.add_parser("remove", help="move a node's partitions to the others, then retire it")
    remove.add_argument("node_id", help="the node to remove, e.g. n2")
    remove.add_argument(
        "--dead",
        action="store_true",
        help="the node is gone for good (disk lost): rebuild its replicas from the other replicas "
        "of each partition without contacting it (needs replication_factor > 1)",
    )
    remove.add_argument(
        "--force",
        action="store_true",
        help="remove it even though fewer nodes than the replication factor would remain (every "
        "partition then keeps fewer copies); refused without it",
    )
    for parser in (add, remove):
        parser.add_argument("--dry-run", action="store_true", help="print the plan; move nothing")
    for parser in (add, remove, actions.add_parser("resume", help="finish (or watch) an interrupted change")):
        parser.add_argument(
            "--max-rate",
            type=int,
            default=0,
            metavar="KEYS",
            help="throttle each transfer stream to KEYS keys/s (default: unlimited)",
        )
    actions.add_parser("abort", help="roll back the change in progress")


def request_for(args: argparse.Namespace) -> admin_pb2.ChangeMembershipRequest:
    kind = {"add": Kind.ADD, "remove": Kind.REMOVE, "resume": Kind.RESUME, "abort": Kind.ABORT}[args.node_action]
    return admin_pb2.ChangeMembershipRequest(
        kind=kind,
        node_id=getattr(args, "node_id", ""),
        address=getattr(args, "address", ""),
        dry_run=getattr(args, "dry_run", False),
        max_keys_per_second=getattr(args, "max_rate", 0),
        dead=getattr(args, "dead", False),
        feed_address=getattr(args, "feed", ""),
        force=getattr(args, "force", False),
    )


def stream_change(
    channel: grpc.Channel, target: str, request: admin_pb2.ChangeMembershipRequest
) -> Iterator[admin_pb2.ChangeProgress]:
    with translate_errors(target):
        yield from admin_pb2_grpc.AdminStub(channel).ChangeMembership(request)


def run_change(channel: grpc.Channel, target: str, args: argparse.Namespace, as_json: bool) -> int:
    """Runs one `feedring node ...` command; returns the exit code."""
    console = Console(stderr=True)
    request = request_for(args)
    last = admin_pb2.ChangeProgress()
    if as_json:
        for last in stream_change(channel, target, request):
            print(json.dumps(_progress_dict(last)), flush=True)
        return 0 if last.phase in ("DONE", "PLANNED", "ABORTED") else 1

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = None
        for progress in stream_change(channel, target, request):
            if progress.phase == "PLANNED" and task is None:
                _print_plan(console, progress)
            if progress.phase in ("PLANNED", "ABORTED"):
                last = progress
                if progress.phase == "ABORTED" or request.dry_run:
                    break
                continue
            if task is None:
                task = bar.add_task(progress.change, total=max(progress.keys_total, 1), detail="")
            bar.update(
                task,
                total=max(progress.keys_total, progress.keys_moved, 1),
                completed=max(progress.keys_total, progress.keys_moved, 1)
                if progress.phase == "DONE"
                else progress.keys_moved,
                detail=f"{progress.phase.lower():<9} {_rate(progress)} "
                f"transfers {progress.transfers_caught_up}/{progress.transfers_total} "
                f"caught up, {progress.keys_moved:,} keys, {progress.bytes_moved / 1e6:.1f} MB",
            )
            last = progress
    if last.message:
        console.print(("error: " if last.phase == "FAILED" else "") + last.message)
    return 0 if last.phase in ("DONE", "PLANNED", "ABORTED") else 1


def _rate(progress: admin_pb2.ChangeProgress) -> str:
    return f"{progress.keys_moved / progress.elapsed_s:,.0f} keys/s" if progress.elapsed_s > 0 else ""


def _print_plan(console: Console, progress: admin_pb2.ChangeProgress) -> None:
    console.print(
        f"plan: {progress.change} — epoch {progress.from_epoch} -> {progress.to_epoch}, "
        f"{progress.partitions_moving} of {progress.partitions_total} partitions move "
        f"({100 * progress.partitions_moving / max(progress.partitions_total, 1):.1f}%)"
    )
    for move in progress.moves:
        console.print(f"  {move.source} -> {move.destination}: {move.partitions} partitions")
    console.print(_copies(progress))


def _copies(progress: admin_pb2.ChangeProgress) -> str:
    """What the plan leaves of each partition, against the replication factor."""
    rf, low, high = progress.replication_factor, progress.copies_min, progress.copies_max
    kept = f"{low}" if low == high else f"{low} to {high}"
    line = f"afterwards every partition keeps {kept} of its {rf} copies"
    return line if low >= rf else f"[yellow]{line} (fewer nodes than the replication factor)[/yellow]"


def _progress_dict(progress: admin_pb2.ChangeProgress) -> dict[str, object]:
    return {
        "phase": progress.phase,
        "change": progress.change,
        "from_epoch": progress.from_epoch,
        "to_epoch": progress.to_epoch,
        "partitions_total": progress.partitions_total,
        "partitions_moving": progress.partitions_moving,
        "replication_factor": progress.replication_factor,
        "copies_min": progress.copies_min,
        "copies_max": progress.copies_max,
        "moves": [
            {"source": m.source, "destination": m.destination, "partitions": m.partitions} for m in progress.moves
        ],
        "keys_total": progress.keys_total,
        "keys_moved": progress.keys_moved,
        "bytes_moved": progress.bytes_moved,
        "message": progress.message,
    }
