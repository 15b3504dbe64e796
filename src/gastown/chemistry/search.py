"""Where formulas are found, and how a name becomes a file.

Search order (first match wins):

1. directories passed explicitly (``search_paths=`` / ``--formula-path``),
2. the town's ``$GT_TOWN/.beads/formulas``,
3. the ledger's own ``.beads/formulas`` (rig or town),
4. the user's ``$XDG_CONFIG_HOME/gastown/formulas`` (``~/.config/gastown/formulas``),
5. each entry of ``$GT_FORMULA_PATH`` (``os.pathsep``-separated),
6. installed packs: ``<config>/packs/*/formulas`` and ``$GT_TOWN/packs/*/formulas``,
7. the library shipped with gastown (``gastown/data/formulas``).

In a directory, ``NAME.formula.toml`` and ``NAME.formula.json`` are formulas;
a bare ``NAME.toml`` counts only inside a folder called ``formulas``.  Names
are matched as given, then with the ``mol-`` prefix added or removed, so
``engineer-in-box`` and ``mol-engineer-in-box`` find the same file.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from ..errors import FormulaError, NotFoundError
from .formula import load_file
from .model import Formula

__all__ = ["search_paths", "find_formula", "load_formula", "locate_formula", "list_formulas",
           "FormulaRef", "library_dir", "name_variants"]

_SUFFIXES = (".formula.toml", ".formula.json")


def library_dir() -> str:
    """The shipped proto library (package data)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "data", "formulas")


def _config_home() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "gastown")


def search_paths(beads_dir: str | None = None, extra: list[str] | None = None) -> list[str]:
    """The formula directories to search, in order (missing ones are skipped later)."""
    paths: list[str] = list(extra or [])
    town = os.environ.get("GT_TOWN")
    if town:
        paths.append(os.path.join(town, ".beads", "formulas"))
    if beads_dir:
        paths.append(os.path.join(beads_dir, "formulas"))
    paths.append(os.path.join(_config_home(), "formulas"))
    for entry in os.environ.get("GT_FORMULA_PATH", "").split(os.pathsep):
        if entry.strip():
            paths.append(os.path.expanduser(entry.strip()))
    packs = [os.path.join(_config_home(), "packs")]
    if town:
        packs.append(os.path.join(town, "packs"))
    for root in packs:
        paths += sorted(glob.glob(os.path.join(glob.escape(root), "*", "formulas")))
    paths.append(library_dir())
    seen: set[str] = set()
    out = []
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def name_variants(name: str) -> list[str]:
    """``name`` first, then with ``mol-`` added or removed."""
    if name.startswith("mol-"):
        return [name, name[4:]]
    return [name, "mol-" + name]


def _candidates(directory: str, name: str) -> list[str]:
    files = [os.path.join(directory, name + s) for s in _SUFFIXES]
    if os.path.basename(directory.rstrip(os.sep)) == "formulas":
        files.append(os.path.join(directory, name + ".toml"))
    return files


def _files_in(directory: str) -> list[str]:
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    bare_ok = os.path.basename(directory.rstrip(os.sep)) == "formulas"
    out = []
    for entry in entries:
        full = os.path.join(directory, entry)
        if not os.path.isfile(full):
            continue
        if entry.endswith(_SUFFIXES) or (bare_ok and entry.endswith(".toml")):
            out.append(full)
    return out


def looks_like_path(ref: str) -> bool:
    """True when ``ref`` names a file rather than a formula on the search path."""
    return os.sep in ref or ref.endswith((".toml", ".json"))


def find_formula(ref: str, paths: list[str]) -> str:
    """The file for a formula name or path, or :class:`NotFoundError`."""
    return _locate(ref, paths)[0]


def _locate(ref: str, paths: list[str]) -> tuple[str, Formula | None]:
    """:func:`find_formula`, with the formula when finding it meant parsing the file."""
    if looks_like_path(ref):
        if os.path.isfile(ref):
            return os.path.abspath(ref), None
        if os.sep in ref:
            raise NotFoundError(f"formula file {ref} not found")
        # "name.formula.toml" with no directory: look the name up on the path
    base = ref
    for suffix in (*_SUFFIXES, ".toml"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    wanted = name_variants(base)
    misnamed: tuple[str, Formula] | None = None  # a file called NAME that declares another name
    for variant in wanted:
        for directory in paths:
            for cand in _candidates(directory, variant):
                if os.path.isfile(cand):
                    try:
                        f = load_file(cand)
                    except FormulaError:
                        return cand, None  # broken: loading it reports the problem
                    if f.name in wanted:
                        return cand, f
                    misnamed = misnamed or (cand, f)
    # the name a formula declares (formula = "...") wins over a file's name
    for directory in paths:
        for path in _files_in(directory):
            try:
                f = load_file(path)
            except FormulaError:
                continue
            if f.name in wanted:
                return path, f
    if misnamed:
        return misnamed
    raise NotFoundError(f"formula {ref!r} not found in the search path "
                        f"({len(paths)} directories; see 'bd formula list --paths')")


def load_formula(ref: str, paths: list[str]) -> Formula:
    """Find and parse a formula by name or path (each file parsed once)."""
    return locate_formula(ref, paths)[1]


def locate_formula(ref: str, paths: list[str]) -> tuple[str, Formula]:
    """``(file, formula)`` for a formula name or path (each file parsed once)."""
    path, f = _locate(ref, paths)
    return path, f if f is not None else load_file(path)


@dataclass
class FormulaRef:
    """One formula file seen on the search path."""

    name: str
    path: str
    type: str
    description: str
    steps: int
    error: str | None = None
    #: a formula earlier on the path has the same name
    shadowed: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON form for ``bd formula list --json``."""
        out: dict[str, object] = {"name": self.name, "path": self.path, "type": self.type,
                                  "description": self.description, "steps": self.steps}
        if self.error:
            out["error"] = self.error
        if self.shadowed:
            out["shadowed"] = True
        return out


def summary(text: str, width: int = 100) -> str:
    """The first paragraph of ``text`` on one line, cut to ``width`` characters."""
    para = " ".join(text.strip().split("\n\n")[0].split())
    return para if len(para) <= width else para[: width - 1].rstrip() + "…"


def list_formulas(paths: list[str]) -> list[FormulaRef]:
    """Every formula file on the path, in path order; broken files carry ``error``."""
    out: list[FormulaRef] = []
    seen: set[str] = set()
    for directory in paths:
        for path in _files_in(directory):
            try:
                f = load_file(path)
                ref = FormulaRef(f.name, path, f.type, summary(f.description),
                                 len(f.steps) or len(f.template))
            except FormulaError as exc:
                from .formula import default_name

                ref = FormulaRef(default_name(path), path, "?", "", 0, error=str(exc))
            ref.shadowed = ref.name in seen
            seen.add(ref.name)
            out.append(ref)
    return out
