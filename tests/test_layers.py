"""The package graph has no upward edge: every import of every module is checked.

The layers, bottom up: ``errors``; the ``ledger``; the ``chemistry`` (and
``gastown.hook``); the ``config`` (the schema of ``town.toml``, beside them);
the ``town``; the ``controller``; and on top the adapters -- the command lines
(``cli``), ``dashboard``, ``mcp_server`` and ``demo``.  A module may import its
own layer and the layers below it, nothing else.  Every ``import`` statement
counts, wherever it is: at the top, inside a function (a lazy import is still a
dependency) or under ``if TYPE_CHECKING``.  A new top-level package must be
given its place in ``ALLOWED`` before it can be imported anywhere.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import gastown

SRC = Path(gastown.__file__).parent
#: the library's layers (the adapters above them may import any of these)
LIBRARY = {"errors", "ledger", "hook", "chemistry", "config", "town", "controller",
           "federation", "mesh", "chains"}
ADAPTER_DEPS = LIBRARY | {"<root>"}
#: what each component may import besides itself
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "ledger": {"errors"},
    "config": {"errors"},
    "hook": {"errors", "ledger"},
    "chemistry": {"errors", "ledger", "hook"},
    #: towns among towns: identity, signed logs, remotes (beside the town, on the ledger)
    "federation": {"errors", "ledger", "config"},
    #: Nostr identities, relays as a transport, trust and credit (beside federation)
    "mesh": {"errors", "ledger", "config", "federation"},
    #: entity chains and the town's Merkle log (issue 14: beside the town, on the ledger)
    "chains": {"errors", "ledger", "config", "federation"},
    "town": {"errors", "ledger", "hook", "chemistry", "config"},
    "controller": {"errors", "ledger", "hook", "chemistry", "config", "town",
                   "federation", "chains", "mesh"},
    "demo": ADAPTER_DEPS,
    "dashboard": ADAPTER_DEPS,
    "mcp_server": ADAPTER_DEPS | {"dashboard"},
    "cli": ADAPTER_DEPS | {"demo", "dashboard", "mcp_server"},
}


def _module_name(path: Path, root: Path) -> tuple[list[str], list[str]]:
    """(module parts, package parts) of a file under ``root`` (the ``gastown`` folder)."""
    parts = ["gastown", *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
        return parts, parts
    return parts, parts[:-1]


def imports_of(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of every gastown module ``path`` imports, at any depth."""
    _mod, package = _module_name(path, root)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target == "gastown":
                # `from . import x` / `from gastown import x`: x may be a module
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
            else:
                yield node.lineno, target


def component(dotted: str, root: Path) -> str | None:
    """The top-level part of gastown ``dotted`` belongs to (None: not gastown)."""
    parts = dotted.split(".")
    if parts[0] != "gastown":
        return None
    if len(parts) == 1:
        return "<root>"
    head = parts[1]
    if (root / head).is_dir() or (root / f"{head}.py").is_file():
        return head
    return "<root>"  # a name the package root re-exports (`from gastown import Ledger`)


def violations(root: Path) -> list[str]:
    """Every import in the tree at ``root`` that breaks the layering, one line each."""
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        src = rel.parts[0].removesuffix(".py") if len(rel.parts) > 0 else "<root>"
        if rel == Path("__init__.py"):
            continue  # the package root re-exports the public API lazily, by name
        if src not in ALLOWED:
            out.append(f"gastown/{rel}: the package {src!r} has no place in the layers "
                       "(add it to ALLOWED in tests/test_layers.py)")
            continue
        for line, dotted in imports_of(path, root):
            dst = component(dotted, root)
            if dst is None or dst == src or dst in ALLOWED[src]:
                continue
            out.append(f"gastown/{rel}:{line}: {src} imports {dotted} ({dst})")
    return out


def test_the_package_graph_has_no_upward_edge() -> None:
    found = violations(SRC)
    assert not found, "imports against the layering:\n" + "\n".join(found)


@pytest.mark.parametrize("layer, forbidden", [
    # the contracts of DESIGN and issue 11, spelled out
    ("ledger", {"chemistry", "hook", "config", "town", "controller", "cli", "<root>"}),
    ("chemistry", {"town", "controller", "config", "cli"}),
    ("config", {"ledger", "chemistry", "town", "controller", "cli"}),
    ("town", {"controller", "cli", "federation"}),
    ("federation", {"town", "controller", "chemistry", "cli"}),
    ("controller", {"cli"}),
])
def test_the_contracts_are_in_the_table(layer: str, forbidden: set[str]) -> None:
    assert not forbidden & ALLOWED[layer]


def test_no_library_module_imports_the_command_line() -> None:
    for name, allowed in ALLOWED.items():
        if name != "cli":
            assert "cli" not in allowed, name
    bad = [v for v in violations(SRC) if v.endswith("(cli)")]
    assert not bad


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "gastown"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in ("ledger", "town", "controller", "cli", "chemistry", "config"):
        (root / folder).mkdir(exist_ok=True)
        (root / folder / "__init__.py").touch()
    (root / "__init__.py").touch()
    (root / "errors.py").touch()
    return root


@pytest.mark.parametrize("text", [
    "from ..controller.service import info\n",                      # top level, relative
    "def f():\n    from ..controller import service\n",             # function-local
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
    "    from gastown.controller.policies import P\n",              # typing only, absolute
    "import gastown.controller.policies\n",
    "from .. import controller\n",                                  # the package itself
])
def test_the_scan_sees_every_kind_of_import(tmp_path: Path, text: str) -> None:
    root = _tree(tmp_path, {"town/status.py": text})
    [found] = violations(root)
    assert found.startswith("gastown/town/status.py:") and "town imports gastown.controller" \
        in found


def test_the_scan_allows_downward_and_sibling_imports(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "town/status.py": "from ..ledger import core\nfrom .observe import x\n"
                          "from ..config.schema import TownConfig\nfrom ..errors import E\n",
        "controller/overview.py": "from ..town.status import town_status\n",
        "cli/gt.py": "from ..controller.overview import town_overview\n",
    })
    assert violations(root) == []


def test_a_new_package_must_be_placed(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"relay/sync.py": "from ..ledger import core\n"})
    [found] = violations(root)
    assert "'relay' has no place in the layers" in found
