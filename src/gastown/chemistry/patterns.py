"""Variable ``pattern``s are untrusted regular expressions: refuse or time-limit them.

Python's ``re`` backtracks, so a pattern such as ``^(a+)+$`` takes exponential
time on a value like ``aaaa…!``.  Two defences:

* :func:`check_pattern` (load time) refuses a repeat whose body holds another
  repeat or an alternation — the shapes that backtrack exponentially — and
  patterns longer than :data:`~.limits.MAX_PATTERN_CHARS`;
* :func:`pattern_matches` (pour time) matches directly only when the pattern has
  at most one repeat (linear); otherwise the match runs in a forked child that
  is killed after :data:`MATCH_TIMEOUT_S` (polynomial blow-ups such as
  ``a*a*a*a*b``), which is then an error naming the pattern.
"""

from __future__ import annotations

import importlib
import os
import re
import select
import signal
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


def _is_linear(pattern: str) -> bool:
    try:
        repeats, _, problem = _stats(_parser.parse(pattern))
    except (re.error, RecursionError, OverflowError):
        return False
    return problem is None and repeats <= 1


def pattern_matches(pattern: str, value: str) -> bool:
    """``re.fullmatch(pattern, value)``, refused with :class:`PatternTimeout` when too slow."""
    compiled = re.compile(pattern)
    if _is_linear(pattern) or not hasattr(os, "fork"):
        return compiled.fullmatch(value) is not None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only matches and reports one byte
        try:
            os.close(read_end)
            os.write(write_end, b"1" if compiled.fullmatch(value) else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    answer = b""
    try:
        ready, _, _ = select.select([read_end], [], [], MATCH_TIMEOUT_S)
        answer = os.read(read_end, 1) if ready else b""
    finally:
        os.close(read_end)
        if not answer:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
    if not answer:
        raise PatternTimeout(pattern)
    return answer == b"1"
