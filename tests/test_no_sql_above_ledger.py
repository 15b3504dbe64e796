"""No SQL above the ledger: the layers above ``gastown/ledger/`` use named methods.

Every module outside ``gastown/ledger/`` is read as a syntax tree and refused
when it holds SQL text, reaches a backend transaction (``.tx``, ``execute``,
a store's ``read``/``write``/``claim``/``durable``), a connection (``_con``,
``conn``), builds a ``Txn`` around a raw transaction, looks a
capability up by name with ``getattr``, or imports a database driver.  That
seam is what lets a remote ledger replace the local one later.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "gastown"

#: the ledger's tables (gastown/ledger/schema.py)
_TABLES = ("issues", "dependencies", "labels", "comments", "events", "kv", "config",
           "child_counters", "retired_ids", "ready_state")
_SQL = re.compile(
    r"\b(SELECT\s+(DISTINCT\s+)?[\w*(]|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TABLE|INDEX|VIEW)|DROP\s+(TABLE|INDEX)|ALTER\s+TABLE|ON\s+CONFLICT"
    r"|PRAGMA\s+\w|BEGIN\s+(IMMEDIATE|TRANSACTION))\b"
    r"|(?i:\b(from|into|update|join)\s+(" + "|".join(_TABLES) + r")\b\s*(\bwhere\b|\bset\b|"
    r"\bjoin\b|\bvalues\b|\border\b|[\w.]*\s*(\(|,|$)))")
#: attributes that reach a backend transaction or connection
_FORBIDDEN_ATTRS = {"tx", "execute", "executemany", "_con", "con", "conn", "_conn",
                    "skip_locked_clause", "insert_event_returning_seq"}
#: what may be read from ``ledger.store`` above the ledger
_STORE_ALLOWED = {"url", "dialect", "changed_rows"}
_DRIVERS = ("sqlite3", "psycopg", "psycopg2")


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def problems_in(source: str, name: str = "<src>") -> list[str]:
    """Each place in ``source`` where a module above the ledger goes below its API."""
    tree = ast.parse(source, name)
    docs = _docstrings(tree)  # prose; so are the parts of an f-string, scanned whole
    docs |= {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
             for v in node.values}
    found: list[str] = []

    def add(node: ast.AST, what: str) -> None:
        found.append(f"{name}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str)
                           else "x" for v in node.values)
            if _SQL.search(text):
                add(node, f"SQL in an f-string: {text[:60]!r}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docs and _SQL.search(node.value):
            add(node, f"SQL text: {node.value[:60]!r}")
        elif isinstance(node, ast.Attribute):
            if node.attr in _FORBIDDEN_ATTRS:
                add(node, f"reaches the backend through .{node.attr}")
            elif isinstance(node.value, ast.Attribute) and node.value.attr == "store" \
                    and node.attr not in _STORE_ALLOWED:
                add(node, f"uses the store directly: .store.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "Txn":
                add(node, "builds a Txn around a raw transaction")
            elif node.func.id in ("getattr", "hasattr") and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant) \
                    and node.args[1].value in (_FORBIDDEN_ATTRS | {"durable", "store"}):
                add(node, f"looks up {node.args[1].value!r} by name")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            for mod in names:
                if mod.split(".")[0] in _DRIVERS:
                    add(node, f"imports the database driver {mod}")
                if re.search(r"(^|\.)ledger\.(sqlite|postgres|schema)$", mod):
                    add(node, f"imports the backend module {mod}")
    return found


def scan(root: Path) -> list[str]:
    """Every problem in the package at ``root`` outside its ``ledger/`` package."""
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "ledger":
            continue
        out.extend(problems_in(path.read_text(encoding="utf-8"), str(rel)))
    return out


def test_no_module_above_the_ledger_holds_sql_or_touches_the_store() -> None:
    found = scan(SRC)
    assert not found, "SQL or storage access above gastown/ledger/:\n" + "\n".join(found)


def test_the_scan_sees_every_kind_of_breach() -> None:
    snippets = {
        'rows = led.tx.query("SELECT id FROM issues WHERE status = ?", ("open",))': 2,
        'q = f"SELECT seq FROM events WHERE {likes} ORDER BY seq"': 1,
        'sql = "select key, value from kv where key = ?"': 1,
        't.execute("DELETE FROM kv WHERE key = ?", (k,))': 2,
        'x = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"': 1,
        'with led.store.write() as w:\n    pass': 1,
        'opener = getattr(led.store, "durable", None)': 1,
        'clause = getattr(tx, "skip_locked_clause", "")': 1,
        'con = getattr(led.store, "_con", None)': 1,
        't = Txn(raw, "me", "bd")': 1,
        'import sqlite3': 1,
        'from gastown.ledger.postgres import PostgresStore': 1,
        'n = led.store._con.total_changes': 1,
    }
    for code, count in snippets.items():
        assert len(problems_in(code)) == count, (code, problems_in(code))


def test_the_scan_lets_prose_and_the_public_api_through() -> None:
    fine = '''
"""A module that talks about selecting work from issues in its docstring."""
def f(led):
    """SELECT is a word; so is UPDATE."""
    print(f"closed {n} issues from the convoy; events follow")
    msg = "moves work from issues to the hook; see the events log"
    with led.snapshot() as r:
        owed = r.kv_with_prefix("gt.work.")
    with led.transaction(durable=True) as t:
        t.kv_put("k", "v")
    return led.store.url, owed, "bd comment ID a durable record"
'''
    assert problems_in(fine) == []
