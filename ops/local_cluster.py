"""Runs a whole cluster from a cluster file as local background processes (``make cluster``).

Each process (every node, then every router) gets a log file and a pid file under the cluster's
``run_dir``. ``start`` waits until each answers the gRPC health check with SERVING; ``stop`` signals
exactly the processes it started (a pid file's process must still be running our command line for
this cluster file, so a recycled pid is never killed). Both are safe to repeat. The integration tests
start their clusters through this same class.

    python -m ops.local_cluster start|stop|status [--config cluster.toml]
    python -m ops.local_cluster start-node --id n4 --address 127.0.0.1:7104
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common import security, tls
from common.config import ClusterConfig, ConfigError, load

__all__ = ["LocalCluster", "Process", "ClusterStartError"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ClusterStartError(RuntimeError):
    pass


_SERVICE_OF = {"node": "feedring.v1.Storage", "router": "feedring.v1.Admin"}


@dataclass(frozen=True)
class Process:
    name: str  # "n1" or "router-0"
    module: str  # "node" or "router"
    ident: str  # the --id argument
    address: str
    extra: bool = False  # a node started later (`make node`), not in the cluster file
    feed: str = ""  # an extra node's public Feed API address ("": none)


class LocalCluster:
    def __init__(self, config_path: str | Path, launch_prefix: dict[str, list[str]] | None = None) -> None:
        # launch_prefix: per process name, what its command runs under (ops/netcluster.py: its
        # network namespace, `ip netns exec <ns>`).
        self.launch_prefix = launch_prefix or {}
        self.config_path = Path(config_path).resolve()
        self.config: ClusterConfig = load(self.config_path)
        self.run_dir = self.config.run_dir
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self.processes = [Process(n.id, "node", n.id, n.address) for n in self.config.nodes] + [
            Process(f"router-{r.id}", "router", str(r.id), r.address) for r in self.config.routers
        ]
        # Nodes added later live in the run directory, so start/stop/status include them.
        self._extra_path = self.run_dir / "extra-nodes.json"
        for node_id, (address, feed) in self._extra_nodes().items():
            self.processes.insert(
                len(self.config.nodes), Process(node_id, "node", node_id, address, extra=True, feed=feed)
            )

    def _extra_nodes(self) -> dict[str, tuple[str, str]]:
        """Node id -> (address, feed address) of the nodes started later."""
        try:
            saved = dict(json.loads(self._extra_path.read_text()))
        except (OSError, ValueError):
            return {}
        # Written as {"address": ..., "feed": ...}; files of earlier versions hold the address alone.
        return {k: (v, "") if isinstance(v, str) else (v["address"], v.get("feed", "")) for k, v in saved.items()}

    def add_node(self, node_id: str, address: str, timeout_s: float = 30.0, feed: str = "") -> None:
        """Starts a node that is not in the cluster file (to be added with `feedring node add`)."""
        security.ensure_cluster_secret(self.config)
        self._ensure_certs({node_id: address.rpartition(":")[0]})
        if any(p.name == node_id for p in self.processes):
            proc = self._process(node_id)
            if proc.address != address:
                raise ClusterStartError(f"node {node_id} is already known at {proc.address}")
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            extra = {k: {"address": a, "feed": f} for k, (a, f) in self._extra_nodes().items()}
            extra[node_id] = {"address": address, "feed": feed}
            self._extra_path.write_text(json.dumps(extra, indent=1))
            self.processes.insert(
                len(self.config.nodes), Process(node_id, "node", node_id, address, extra=True, feed=feed)
            )
        if self.pid(node_id) is None:
            self.start_process(node_id)
        self._wait_healthy([self._process(node_id)], timeout_s)

    # -- files -----------------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def _pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _command(self, proc: Process) -> list[str]:
        command = [sys.executable, "-m", proc.module, "--config", str(self.config_path), "--id", proc.ident]
        if not proc.extra:
            return command
        return command + ["--address", proc.address] + (["--feed", proc.feed] if proc.feed else [])

    def pid(self, name: str) -> int | None:
        """The pid of our running process `name`, or None (stale pid files are ignored)."""
        try:
            pid = int(self._pid_path(name).read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\x00")
        except OSError:
            return None
        proc = self._process(name)
        expected = [arg.encode() for arg in self._command(proc)[1:]]
        if cmdline[1 : 1 + len(expected)] != expected:
            return None  # the pid was recycled by an unrelated process
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            return None
        return None if state == "Z" else pid

    def _process(self, name: str) -> Process:
        for proc in self.processes:
            if proc.name == name:
                return proc
        raise KeyError(f"no process {name!r} in {self.config_path}")

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0, quiet: bool = False) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        created = security.ensure_cluster_secret(self.config)
        if created is not None and not quiet:
            print(f"created the cluster secret {created} (mode 0600; the CLI reads it through --config)")
        written = self._ensure_certs({n: a.rpartition(":")[0] for n, (a, _) in self._extra_nodes().items()})
        if written and not quiet:
            print(f"created TLS certificates in {self.config.tls.cert_dir} (make certs --force replaces them)")
        started = []
        for proc in self.processes:
            if proc.module == "router":
                # Routers read the live map from the nodes at start: bring nodes up first.
                self._wait_healthy([p for p in self.processes if p.module == "node"], timeout_s)
            if self.pid(proc.name) is not None:
                if not quiet:
                    print(f"{proc.name} is already running (pid {self.pid(proc.name)}, {proc.address})")
                continue
            self.start_process(proc.name)
            started.append(proc)
        self._wait_healthy(self.processes, timeout_s)
        if not quiet:
            if started:
                print(f"cluster {self.config.name!r} is up: {len(started)} process(es) started")
            else:
                print(f"cluster {self.config.name!r} was already running; nothing started")
            for proc in self.processes:
                print(f"  {proc.name:<10} {proc.address:<22} pid {self.pid(proc.name)}  log {self.log_path(proc.name)}")

    def _ensure_certs(self, extra: dict[str, str]) -> list[Path]:
        """With TLS on, the CA and every process's certificate, made if missing (as `make certs`)."""
        if not self.config.tls.enabled:
            return []
        from ops.certs import ensure_certs  # cryptography is only imported when TLS is on

        return ensure_certs(self.config, extra)

    @property
    def secret(self) -> str:
        """The cluster secret its processes use: Admin calls through FeedClient need it."""
        return security.cluster_secret(self.config)

    def start_process(self, name: str) -> int:
        proc = self._process(name)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        with open(self.log_path(name), "ab") as log:
            child = subprocess.Popen(
                self.launch_prefix.get(name, []) + self._command(proc),  # `ip netns exec` execs it: same pid
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self._pid_path(name).write_text(f"{child.pid}\n")
        self._children[name] = child
        return child.pid

    def _wait_healthy(self, procs: list[Process], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for proc in procs:
            # The service it alone serves: another process answering at its address (a port
            # clash; a router's bind then fails) does not pass for it.
            while not self.healthy(proc.address, service=_SERVICE_OF[proc.module]):
                if self._exited(proc.name):
                    raise ClusterStartError(
                        f"{proc.name} exited during start-up; last lines of {self.log_path(proc.name)}:\n"
                        + self.log_tail(proc.name)
                    )
                if time.monotonic() > deadline:
                    raise ClusterStartError(
                        f"{proc.name} at {proc.address} not healthy after {timeout_s:.0f}s; "
                        f"see {self.log_path(proc.name)}"
                    )
                time.sleep(0.1)

    def wait_exit(self, name: str, timeout_s: float) -> int:
        """The exit code of process `name`, started by this object, once it exits (one that must
        refuse to start); raises subprocess.TimeoutExpired if it is still running after `timeout_s`."""
        return self._children[name].wait(timeout_s)

    def _exited(self, name: str) -> bool:
        child = self._children.get(name)
        if child is not None:  # started by this object: ask the kernel directly
            return child.poll() is not None
        return self.pid(name) is None

    def healthy(self, address: str, timeout_s: float = 0.5, service: str = "") -> bool:
        # With TLS, a node only talks to holders of a cluster certificate: tooling presents `ops`.
        channel = (
            grpc.secure_channel(address, tls.peer_credentials(self.config, tls.OPS))
            if self.config.tls.enabled
            else grpc.insecure_channel(address)
        )
        with channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
                )
            except grpc.RpcError:
                return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 15.0, quiet: bool = False) -> None:
        # Routers first, so they can finish fan-outs into still-running nodes.
        order = [p for p in self.processes if p.module == "router"] + [p for p in self.processes if p.module == "node"]
        stopped = 0
        for proc in order:
            if self.stop_process(proc.name, timeout_s):
                stopped += 1
        if not quiet:
            print(
                f"cluster {self.config.name!r}: " + (f"stopped {stopped} process(es)" if stopped else "was not running")
            )

    def stop_process(self, name: str, timeout_s: float = 15.0, sig: int = signal.SIGTERM) -> bool:
        """Stops one process; True if it was running. SIGKILL if it ignores `sig` past the timeout."""
        pid = self.pid(name)
        if pid is None:
            self._pid_path(name).unlink(missing_ok=True)
            return False
        if sig == signal.SIGKILL:
            os.killpg(pid, sig)  # the whole group: a router's forked workers too
        else:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while self.pid(name) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pid(name) is not None:
            os.killpg(pid, signal.SIGKILL)
            while self.pid(name) is not None:
                time.sleep(0.05)
        self._pid_path(name).unlink(missing_ok=True)
        return True

    def kill(self, name: str) -> None:
        """kill -9, as a crash would; for fault tests."""
        self.stop_process(name, timeout_s=5.0, sig=signal.SIGKILL)

    def restart(self, name: str, timeout_s: float = 30.0) -> None:
        self.stop_process(name)
        self.start_process(name)
        self._wait_healthy([self._process(name)], timeout_s)

    def status(self) -> list[tuple[Process, int | None, bool]]:
        return [(p, self.pid(p.name), self.healthy(p.address)) for p in self.processes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.local_cluster",
        description="Start, stop or inspect a local feedring cluster described by a cluster file.",
    )
    parser.add_argument("action", choices=["start", "stop", "status", "start-node"])
    parser.add_argument("--config", default=os.environ.get("FEEDRING_CONFIG", "cluster.toml"))
    parser.add_argument("--id", help="start-node: the new node's id, e.g. n4")
    parser.add_argument("--address", help="start-node: its host:port, e.g. 127.0.0.1:7104")
    parser.add_argument("--feed", default="", help="start-node: where it serves the Feed API, e.g. 127.0.0.1:7204")
    args = parser.parse_args(argv)
    try:
        cluster = LocalCluster(args.config)
        if args.action == "start-node":
            if not args.id or not args.address:
                parser.error("start-node needs --id and --address")
            cluster.add_node(args.id, args.address, feed=args.feed)
            feed = f" --feed {args.feed}" if args.feed else ""
            print(
                f"node {args.id} is serving at {args.address} (log {cluster.log_path(args.id)}); "
                f"it owns nothing until: feedring node add {args.id} {args.address}{feed}"
            )
        elif args.action == "start":
            cluster.start()
        elif args.action == "stop":
            cluster.stop()
        else:
            for proc, pid, healthy in cluster.status():
                state = "SERVING" if healthy else ("running, not serving" if pid else "stopped")
                print(f"{proc.name:<10} {proc.address:<22} {state:<22} pid {pid or '-'}")
    except (ConfigError, ClusterStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
