"""No command stalls silently: a stopped lock holder or a frozen server is one clear line.

Real processes are stopped with SIGSTOP (a writer inside its transaction, the
PostgreSQL postmaster, one server backend); every test resumes what it stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gastown import Ledger
from gastown.errors import StorageError

BD = str(Path(sys.executable).parent / "bd")

HOLDER = """
import os, signal, sys
from gastown import Ledger
led = Ledger.open(sys.argv[1], actor="holder")
with led.transaction() as t:
    t.create("made while holding the lock")
    os.kill(os.getpid(), signal.SIGSTOP)  # stopped inside the write transaction
"""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BD_DB", "BEADS_DB")}
    env["BD_ACTOR"] = "tester"
    env.update(extra)
    return env


@contextmanager
def _stopped_holder(db: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process stopped while it holds the ledger's write lock (resumed or killed after)."""
    script = tmp_path / "hold.py"
    script.write_text(HOLDER)
    proc = subprocess.Popen([sys.executable, str(script), db], env=_env())
    try:
        _wait(lambda: _state(proc.pid) == "T" or proc.poll() is not None, 30,
              "the holder to stop inside its transaction")
        assert proc.poll() is None, "the holder exited instead of stopping"
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        proc.wait(timeout=30)


def test_sqlite_writer_behind_a_stopped_holder_names_it_and_exits_6(tmp_path: Path) -> None:
    Ledger.init(str(tmp_path), prefix="t", actor="tester").close()
    db = str(tmp_path / ".beads" / "beads.db")
    with _stopped_holder(db, tmp_path) as holder:
        started = time.monotonic()
        proc = subprocess.run([BD, "create", "waits"], cwd=tmp_path, capture_output=True,
                              text=True, env=_env(BD_LOCK_TIMEOUT="2"), timeout=60)
        elapsed = time.monotonic() - started
        assert proc.returncode == StorageError.exit_code, proc.stderr
        line = proc.stderr.strip()
        assert len(line.splitlines()) == 1, line
        assert f"locked by pid {holder.pid} (hold.py" in line, line
        assert "stopped" in line and "kill -CONT" in line and "Traceback" not in line
        assert 1.5 < elapsed < 30
        os.kill(holder.pid, signal.SIGCONT)
        assert holder.wait(timeout=30) == 0
    # once the holder is gone the next writer proceeds, and the note is cleared
    proc = subprocess.run([BD, "create", "after"], cwd=tmp_path, capture_output=True,
                          text=True, env=_env(BD_LOCK_TIMEOUT="2"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / ".beads" / "beads.db-holder").read_bytes() == b""


def test_sqlite_lock_of_a_killed_holder_is_released_by_the_os(tmp_path: Path) -> None:
    Ledger.init(str(tmp_path), prefix="t", actor="tester").close()
    db = str(tmp_path / ".beads" / "beads.db")
    with _stopped_holder(db, tmp_path) as holder:
        waiter = subprocess.Popen([BD, "create", "waits", "-q"], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=_env(BD_LOCK_TIMEOUT="60"))
        try:
            os.kill(holder.pid, signal.SIGKILL)
            out, err = waiter.communicate(timeout=30)
        finally:
            if waiter.poll() is None:
                waiter.kill()
        assert waiter.returncode == 0, err
    with Ledger.open(db) as led:
        titles = [b["title"] for b in led.list()]
    assert titles == ["waits"]  # the killed holder's change was rolled back, whole


def test_bad_lock_timeout_is_one_line(tmp_path: Path) -> None:
    Ledger.init(str(tmp_path), prefix="t", actor="tester").close()
    proc = subprocess.run([BD, "ready"], cwd=tmp_path, capture_output=True, text=True,
                          env=_env(BD_LOCK_TIMEOUT="soon"), timeout=60)
    assert proc.returncode == 5 and "BD_LOCK_TIMEOUT" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ PostgreSQL


@contextmanager
def _sigstopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_postgres_writer_behind_a_held_lock_names_the_holder(pg_database: str,
                                                             tmp_path: Path) -> None:
    led = Ledger.init(str(tmp_path), prefix="t", db=pg_database, actor="tester")
    try:
        with led.transaction() as t:  # holds the writer lock while bd tries to write
            t.create("held")
            started = time.monotonic()
            proc = subprocess.run([BD, "--db", pg_database, "create", "waits"],
                                  capture_output=True, text=True,
                                  env=_env(BD_LOCK_TIMEOUT="1"), timeout=60)
            elapsed = time.monotonic() - started
    finally:
        led.close()
    assert proc.returncode == StorageError.exit_code, proc.stderr
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1 and "gave up after waiting 1 s" in line, line
    assert f"(pid {os.getpid()})" in line, line  # the holder: this test process
    assert elapsed < 30


def test_postgres_frozen_postmaster_fails_fast_with_one_line(pg_server: Any,
                                                            pg_database: str,
                                                            tmp_path: Path) -> None:
    Ledger.init(str(tmp_path), prefix="t", db=pg_database, actor="tester").close()
    postmaster = int((pg_server.data_dir / "postmaster.pid").read_text().split()[0])
    with _sigstopped(postmaster):
        started = time.monotonic()
        proc = subprocess.run([BD, "ready"], cwd=tmp_path, capture_output=True, text=True,
                              env=_env(BD_DB_TIMEOUT="3"), timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == StorageError.exit_code, proc.stderr
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1 and "cannot connect" in line and "no answer" in line
    assert elapsed < 8, elapsed


FROZEN = """
import sys
from gastown import Ledger
from gastown.errors import GastownError
led = Ledger.open(sys.argv[1], actor="frozen")
print(led.store._connection().info.backend_pid, flush=True)
sys.stdin.readline()
try:
    led.create("never answered")
except GastownError as exc:
    print(exc, flush=True)
    sys.exit(exc.exit_code)
"""


def test_postgres_frozen_backend_is_abandoned_with_one_line(pg_database: str,
                                                           tmp_path: Path) -> None:
    Ledger.init(str(tmp_path), prefix="t", db=pg_database, actor="tester").close()
    proc = subprocess.Popen([sys.executable, "-c", FROZEN, pg_database], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(BD_DB_TIMEOUT="2"))
    try:
        assert proc.stdout is not None and proc.stdin is not None
        backend = int(proc.stdout.readline())
        with _sigstopped(backend):
            started = time.monotonic()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            out, err = proc.communicate(timeout=40)
            elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == StorageError.exit_code, err
    assert "did not answer within 7 s" in out and "BD_DB_TIMEOUT" in out, out
    assert elapsed < 20
    with Ledger.open(pg_database) as led:  # the server, resumed, is unharmed
        assert led.count() == 0


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_bad_db_timeout_is_one_line(pg_database: str, value: str) -> None:
    proc = subprocess.run([BD, "--db", pg_database, "ready"], capture_output=True, text=True,
                          env=_env(BD_DB_TIMEOUT=value), timeout=60)
    assert proc.returncode == 5 and "BD_DB_TIMEOUT" in proc.stderr
