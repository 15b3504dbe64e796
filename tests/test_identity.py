"""Identity is passed in: the library reads no environment (issue 11, item 4).

Who acts (actor), which agent calls (agent) and which town (town) are arguments
of the library; the command lines resolve them at the edge with one rule
(:func:`gastown.ledger.discovery.default_actor` for the actor, ``$GT_AGENT`` for
the calling agent).  An AST scan keeps environment reads in the adapters (the
command lines, the demo, the session providers, the storage backends) and in
configuration loading.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agents.townkit import add_agent, gt, sleeper
from gastown.errors import UsageError
from gastown.town.core import Town
from gastown.town.mail import default_identity
from gastown.town.slinging import resolve_target, sling

pytest_plugins = ("agents.fixtures",)

SRC = Path(__file__).resolve().parents[1] / "src" / "gastown"

#: adapters: whole packages that sit at the edge
ADAPTERS = ("cli/", "demo/", "town/providers/", "mcp_server/", "dashboard/")
#: configuration loading (module, or module:function)
CONFIG_LOADING = {
    "ledger/discovery.py",  # where the ledger is, and the one actor rule
    "ledger/postgres.py",  # libpq's own variables (PGHOST, PGPASSFILE, …)
    "ledger/sqlite.py",  # BD_LOCK_TIMEOUT
    "ledger/autoflush.py",  # BD_NO_AUTO_FLUSH and friends
    "chemistry/search.py",  # the formula search path (GT_FORMULA_PATH, XDG_CONFIG_HOME)
    "town/setup.py",  # where codex keeps its configuration (CODEX_HOME)
    "town/usage.py:homes",  # where Claude Code and Codex keep their logs (CLAUDE_CONFIG_DIR, …)
    "town/core.py:Town.find",  # which town ($GT_TOWN), like BEADS_DIR for a ledger
    "town/core.py:Town.session_env",  # a session's PATH starts from ours
}


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ"
            and isinstance(node.value, ast.Name) and node.value.id == "os")


class _Reads(ast.NodeVisitor):
    """``os.environ.get(…)``, ``os.environ[…]``, ``… in os.environ``, ``os.getenv(…)``."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        self.found: list[tuple[str, int]] = []

    def _hit(self, node: ast.AST) -> None:
        self.found.append((".".join(self.scope), getattr(node, "lineno", 0)))

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _scoped  # noqa: N815

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        if isinstance(f, ast.Attribute) and (
                (f.attr in ("get", "setdefault", "pop") and _is_environ(f.value))
                or (f.attr in ("getenv", "getenvb") and isinstance(f.value, ast.Name)
                    and f.value.id == "os")):
            self._hit(node)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            self._hit(node)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and any(
                _is_environ(c) for c in node.comparators):
            self._hit(node)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "os" and any(a.name in ("environ", "getenv") for a in node.names):
            self._hit(node)  # a bare `environ` would escape this scan


def env_reads(source: str) -> list[tuple[str, int]]:
    """``(function, line)`` of every environment read in a module's source."""
    v = _Reads()
    v.visit(ast.parse(source))
    return v.found


def test_the_scan_sees_every_kind_of_read() -> None:
    src = ("import os\nfrom os import getenv\nx = os.environ.get('A')\ny = os.environ['B']\n"
           "def f():\n    return 'C' in os.environ or os.getenv('D')\n"
           "class K:\n    def m(self):\n        return os.environ.get('E')\n"
           "z = dict(os.environ)\nw = {**os.environ}\n")
    assert env_reads(src) == [("", 2), ("", 3), ("", 4), ("f", 6), ("f", 6), ("K.m", 9)]


def test_the_library_reads_no_environment_outside_adapters_and_configuration() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(ADAPTERS) or rel in CONFIG_LOADING:
            continue
        for func, line in env_reads(path.read_text(encoding="utf-8")):
            if f"{rel}:{func}" not in CONFIG_LOADING:
                offenders.append(f"src/gastown/{rel}:{line} ({func or 'module'})")
    assert offenders == [], ("environment read in library code (take it as an argument; "
                             "resolve it in the command line):\n" + "\n".join(offenders))


def test_the_allow_list_names_only_what_exists() -> None:
    for entry in CONFIG_LOADING:
        rel, _, func = entry.partition(":")
        reads = env_reads((SRC / rel).read_text(encoding="utf-8"))
        assert reads, f"{rel} reads no environment any more: drop it from the allow-list"
        if func:
            assert func in {f for f, _ in reads}, entry


def test_the_calling_agent_is_an_argument_not_the_environment(
        town: Town, monkeypatch: pytest.MonkeyPatch) -> None:
    add_agent(town, "ann", sleeper())
    monkeypatch.setenv("GT_AGENT", "ann")
    # the library does not look: no caller named, no agent
    with pytest.raises(UsageError, match="sling to itself"):
        resolve_target(town, None)
    with pytest.raises(UsageError, match="GT_AGENT"):
        town.current_agent(None)
    with town.ledger("someone") as led:
        assert default_identity(town, led) == "someone"
        assert default_identity(town, led, "ann") == "app/worker/ann"
    kind, agents = resolve_target(town, None, "ann")
    assert kind == "self" and [a.name for a in agents] == ["ann"]
    bead = town.ledger().create("mine")
    out = sling(town, bead["id"], None, nudge=False, start=False, actor="tester",
                caller="ann")
    assert out.agent == "ann" and out.target_kind == "self"


def test_the_command_line_resolves_the_calling_agent_at_the_edge(town: Town) -> None:
    """``gt sling BEAD`` inside a session: the CLI passes ``$GT_AGENT`` to the library."""
    from agents.townkit import clean_env

    add_agent(town, "ann", sleeper())
    bead = town.ledger().create("for myself")
    proc = gt(town, "sling", bead["id"], "--no-nudge", "--json",
              env=clean_env(GT_AGENT="ann", BD_ACTOR="app/worker/ann"))
    assert '"agent": "ann"' in proc.stdout and '"target_kind": "self"' in proc.stdout
    hook = gt(town, "hook", env=clean_env(GT_AGENT="ann"))
    assert bead["id"] in hook.stdout
