"""``bd`` run in-process, for tests that try thousands of command lines."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

from gastown.cli.bd import main as bd_cli


def bd_main(cwd: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run ``bd ARGS`` in-process in ``cwd``; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_stdin = os.getcwd(), sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = bd_cli(["-C", str(cwd), *args])
            except SystemExit as exc:  # --help and friends exit the argparse way
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = old_stdin
        os.chdir(old_cwd)
    return code, out.getvalue(), err.getvalue()
