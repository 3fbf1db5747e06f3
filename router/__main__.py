"""python -m router --config cluster.toml --id 0: run one router (with its workers) in the foreground.

With ``workers = N`` in cluster.toml the router forks N processes that share its port through
SO_REUSEPORT (gRPC Python's way to use more than one core); they fork before any gRPC object exists.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from common.config import ConfigError, load
from common.logging_setup import configure_logging
from router.server import RouterServer


def _run_worker(config_path: str, router_id: int, worker: int, reuse_port: bool) -> int:
    configure_logging(f"router {router_id}.{worker}")
    try:
        server = RouterServer(load(config_path), router_id, worker, reuse_port)
        asyncio.run(server.run_until_signalled())
    except (ConfigError, RuntimeError) as exc:
        logging.getLogger("router").error("%s", exc)
        return 2
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m router", description="Run one feedring router.")
    parser.add_argument("--config", default="cluster.toml", help="cluster file (default: %(default)s)")
    parser.add_argument("--id", type=int, default=0, help="this router's id in the cluster file")
    args = parser.parse_args()
    try:
        workers = load(args.config).router(args.id).workers
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if workers == 1:
        return _run_worker(args.config, args.id, 0, reuse_port=False)

    children = []
    for worker in range(workers):
        pid = os.fork()
        if pid == 0:
            os._exit(_run_worker(args.config, args.id, worker, reuse_port=True))
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        _, code = os.waitpid(child, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return status


if __name__ == "__main__":
    sys.exit(main())
