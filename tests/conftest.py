"""Shared fixtures.

``ledger`` is a fresh :class:`gastown.Ledger` on every backend in ``BACKENDS``:
the conformance suite is every test that takes it, run unchanged on SQLite and
on a real PostgreSQL server that ``pg_server`` starts for the session.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gastown import Ledger

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (fixtures from other projects; read them there, never copy)."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ledger(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """A fresh, empty ledger (prefix ``t``) on the parametrised backend."""
    if backend == "sqlite":
        led = Ledger.init(str(tmp_path), prefix="t", actor="tester")
    else:
        url = request.getfixturevalue("pg_database")
        led = Ledger.init(str(tmp_path), prefix="t", db=url, actor="tester")
    try:
        yield led
    finally:
        led.close()


@pytest.fixture
def bd_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the ``bd`` console script in a subprocess."""
    env = dict(os.environ)
    env["BD_ACTOR"] = "tester"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("BD_DB", None)
    env.pop("BEADS_DB", None)
    return env


# --------------------------------------------------------------------------------------
# A real PostgreSQL server for the session (DESIGN §9): Debian's ``postgresql`` binaries,
# a throw-away cluster in a temporary directory, listening on 127.0.0.1 only.


def _pg_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's layout)."""
    found = shutil.which("initdb")
    if found:
        real = Path(found).resolve().parent
        if (real / "pg_ctl").exists():
            return real
    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version,
                            reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A running throw-away PostgreSQL cluster; ``url(db)`` names one of its databases."""

    bin_dir: Path
    base_dir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"
    run_as: list[str] = field(default_factory=list)
    _admin: Any = None
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def admin(self, sql: str) -> None:
        """Run one statement on the ``postgres`` database (autocommit)."""
        if self._admin is None or self._admin.closed:
            import psycopg

            self._admin = psycopg.connect(self.url(), autocommit=True)
        self._admin.execute(sql)

    def new_database(self) -> str:
        name = f"gt_test_{os.getpid()}_{next(self._names)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        # WITH (FORCE) ends connections a test leaked, so its database can go
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        _run_pg(self.run_as, [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir),
                              "-m", "immediate", "-w", "stop"], self.base_dir, check=False)


def _run_pg(run_as: list[str], argv: list[str], cwd: Path,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program, as the unprivileged user when we are root."""
    if run_as and run_as[0] == "su":
        cmd = [*run_as, shlex.join(argv)]  # su takes one shell string: quote every word
    else:
        cmd = [*run_as, *argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:1])} failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


def _start_pg_server() -> PgServer:
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: no initdb/pg_ctl on PATH or in "
                    "/usr/lib/postgresql/*/bin. Install Debian's 'postgresql' package, "
                    "or set GT_SKIP_POSTGRES=1 to skip the PostgreSQL backend tests.",
                    pytrace=False)
    run_as: list[str] = []
    uid = gid = -1
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: run it as Debian's 'postgres' user
        import pwd

        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root, and there is no 'postgres' user to run the "
                        "test PostgreSQL server as (set GT_SKIP_POSTGRES=1 to skip)",
                        pytrace=False)
        uid, gid = entry.pw_uid, entry.pw_gid
        if shutil.which("runuser"):
            run_as = ["runuser", "-u", "postgres", "--"]
        else:
            run_as = ["su", "postgres", "-s", "/bin/sh", "-c"]
    # not pytest's tmp_path: its parents are private to root, and the server's
    # user must be able to reach its data and socket directories
    base = Path(tempfile.mkdtemp(prefix="gt-pg-"))
    if uid >= 0:
        os.chown(base, uid, gid)
    data = base / "data"
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
              "-E", "UTF8", "--no-locale", "--no-sync"]
    version = _run_pg(run_as, [str(bin_dir / "initdb"), "--version"], base).stdout
    major = int((re.findall(r"(\d+)", version) or ["0"])[0])
    try:
        if major >= 15:
            # a natural-language default collation, as on most real servers, so the
            # suite proves ordering never depends on the server's collation
            try:
                _run_pg(run_as, [*initdb, "--locale-provider=icu", "--icu-locale=en-US"], base)
            except RuntimeError:
                shutil.rmtree(data, ignore_errors=True)
                _run_pg(run_as, initdb, base)
        else:
            _run_pg(run_as, initdb, base)
        last_error = ""
        for _ in range(5):
            port = _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       "-c max_connections=300")
            proc = _run_pg(run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l",
                                    str(base / "server.log"), "-w", "-t", "60", "-o", options,
                                    "start"], base, check=False)
            if proc.returncode == 0:
                return PgServer(bin_dir=bin_dir, base_dir=base, port=port, run_as=run_as)
            log = base / "server.log"
            last_error = log.read_text(errors="replace")[-2000:] if log.exists() else proc.stderr
        raise RuntimeError(f"pg_ctl start failed: {last_error}")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server started for this test session, stopped at its end.

    ``GT_SKIP_POSTGRES=1`` skips every test that needs it; without it, missing
    PostgreSQL binaries fail those tests with a message saying what to install.
    """
    if os.environ.get("GT_SKIP_POSTGRES") == "1":
        pytest.skip("GT_SKIP_POSTGRES=1: PostgreSQL backend tests skipped")
    try:
        server = _start_pg_server()
    except RuntimeError as exc:
        pytest.fail(f"could not start the test PostgreSQL server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base_dir, ignore_errors=True)


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server (dropped afterwards)."""
    name = pg_server.new_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)
