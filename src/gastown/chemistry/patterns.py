"""Variable ``pattern``s are untrusted regular expressions: refuse or time-limit them.

Python's ``re`` backtracks, so a pattern such as ``^(a+)+$`` takes exponential
time on a value like ``aaaa…!``.  Two defences:

* :func:`check_pattern` (load time) refuses a repeat whose body holds another
  repeat or an alternation — the shapes that backtrack exponentially — and
  patterns longer than :data:`~.limits.MAX_PATTERN_CHARS`;
* :func:`pattern_matches` (pour time) matches directly only when the pattern has
  at most one repeat and no backreference (linear); otherwise the match runs in a fresh interpreter
  that is killed after :data:`MATCH_TIMEOUT_S` (polynomial blow-ups such as
  ``a*a*a*a*b``), which is then an error naming the pattern.

The child is a new interpreter, not a ``fork()`` of this one: pours also happen
inside multi-threaded processes (the controller, the MCP server), where a forked
child runs the at-fork handlers (the PostgreSQL store's takes its lock) and can
hang on a lock another thread held at the fork — an ordinary pattern would then
be refused as too slow.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from typing import Any

from . import limits

__all__ = ["check_pattern", "pattern_matches", "PatternTimeout", "MATCH_TIMEOUT_S"]

#: a match that takes longer than this is refused
MATCH_TIMEOUT_S = 2.0

_parser: Any = importlib.import_module("re._parser")
_const: Any = importlib.import_module("re._constants")
_REPEATS = {_const.MAX_REPEAT, _const.MIN_REPEAT, getattr(_const, "POSSESSIVE_REPEAT", None)}


class PatternTimeout(Exception):
    """The match took longer than :data:`MATCH_TIMEOUT_S`."""


def _subpatterns(op: Any, av: Any) -> list[Any]:
    """The nested sub-patterns of one parsed item (groups, branches, assertions)."""
    if op == _const.SUBPATTERN:
        return [av[-1]]
    if op == _const.BRANCH:
        return list(av[1])
    if op in (_const.ASSERT, _const.ASSERT_NOT):
        return [av[1]]
    if op == getattr(_const, "ATOMIC_GROUP", None):
        return [av]
    if op == _const.GROUPREF_EXISTS:
        return [p for p in av[1:] if p is not None]
    if op in _REPEATS:
        return [av[2]]
    return []


def _stats(items: Any) -> tuple[int, bool, str | None]:
    """``(repeats, has_branch, problem)`` over a parsed pattern."""
    repeats, branch = 0, False
    for op, av in items:
        if op == _const.BRANCH and len(av[1]) > 1:
            branch = True
        if op in _REPEATS:
            lo, hi, body = av
            inner_repeats, inner_branch, problem = _stats(body)
            if problem:
                return repeats, branch, problem
            if hi > 1 and (inner_repeats or inner_branch):
                return repeats, branch, ("a repeated group contains another repeat or an "
                                         "alternation (catastrophic backtracking); rewrite it "
                                         "without nested quantifiers")
            repeats += inner_repeats + (1 if hi > 1 else 0)
            branch = branch or inner_branch
            continue
        for sub in _subpatterns(op, av):
            r, b, problem = _stats(sub)
            if problem:
                return repeats, branch, problem
            repeats += r
            branch = branch or b
    return repeats, branch, None


def check_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is refused (one phrase), or ``None`` when it is acceptable."""
    if len(pattern) > limits.MAX_PATTERN_CHARS:
        return f"longer than {limits.MAX_PATTERN_CHARS} characters"
    try:
        re.compile(pattern)
        parsed = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"not a valid regular expression: {exc}"
    _, _, problem = _stats(parsed)
    return problem


def _has_backref(items: Any) -> bool:
    """Does a parsed pattern refer back to a group (``\\1``, ``(?P=n)``, ``(?(1)…)``)?"""
    for op, av in items:
        if op in (_const.GROUPREF, _const.GROUPREF_IGNORE, _const.GROUPREF_EXISTS):
            return True
        if any(_has_backref(sub) for sub in _subpatterns(op, av)):
            return True
    return False


def _is_linear(pattern: str) -> bool:
    """One repeat and no backreference: matched in linear time, in process.

    A backreference is never linear (``(.*)\\1`` is quadratic in the value's
    length), so such a pattern is matched in the time-limited child.
    """
    try:
        parsed = _parser.parse(pattern)
        repeats, _, problem = _stats(parsed)
        backref = _has_backref(parsed)
    except (re.error, RecursionError, OverflowError):
        return False
    return problem is None and repeats <= 1 and not backref


#: run by the child: read ``[pattern, value]`` (JSON) from stdin, answer ``1`` or ``0``
_CHILD = ("import json, re, sys\n"
          "pattern, value = json.load(sys.stdin)\n"
          "sys.stdout.write('1' if re.fullmatch(pattern, value) else '0')\n")


def pattern_matches(pattern: str, value: str) -> bool:
    """``re.fullmatch(pattern, value)``, refused with :class:`PatternTimeout` when too slow."""
    compiled = re.compile(pattern)
    if _is_linear(pattern):
        return compiled.fullmatch(value) is not None
    try:
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", _CHILD],
                              input=json.dumps([pattern, value]).encode("ascii"),
                              capture_output=True, timeout=MATCH_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise PatternTimeout(pattern) from None
    if proc.stdout not in (b"0", b"1"):  # the child died (memory, a signal): no answer
        raise PatternTimeout(pattern)
    return proc.stdout == b"1"
