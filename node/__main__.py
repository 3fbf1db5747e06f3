"""python -m node --config cluster.toml --id n1: run one storage node in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from common.config import ConfigError, load
from common.logging_setup import configure_logging
from node.server import NodeServer, PortInUseError
from node.store import StoreCorruptError, StoreLockedError
from node.store_format import StoreFormatError


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m node", description="Run one feedring storage node.")
    parser.add_argument("--config", default="cluster.toml", help="cluster file (default: %(default)s)")
    parser.add_argument("--id", required=True, help="this node's id, e.g. n1")
    parser.add_argument(
        "--address",
        help="host:port for a node that is not in the cluster file (one about to be added with "
        "`feedring node add`); its data directory goes beside the other nodes' ones",
    )
    parser.add_argument(
        "--feed",
        default="",
        help="host:port where a node that is not in the cluster file serves the public Feed API",
    )
    args = parser.parse_args()
    configure_logging(f"node {args.id}")
    log = logging.getLogger("node")
    try:
        server = NodeServer(load(args.config), args.id, args.address, args.feed)
        asyncio.run(server.run_until_signalled())
    except (ConfigError, PortInUseError, StoreLockedError, StoreCorruptError, StoreFormatError, RuntimeError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
