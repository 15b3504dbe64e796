"""A scripted stand-in for a coding model: ``python -m gastown.demo.agent``.

It behaves like an interactive agent that finishes one turn and then sits at
its prompt until something is typed into its session:

1. ``gt prime --json``: its hook, the molecule and the step to do now;
2. claim the step (``bd update ID --claim``), make the step's edits (from
   :mod:`.playbook`), run the tests when the step says so, commit, ``bd close``;
3. wait for a line on standard input -- the controller's nudge naming the next
   step (or telling it to run ``gt done``) -- then prime again.

So the town makes progress only as fast as its controller dispatches.  If no
nudge comes within ``--nudge-timeout`` seconds it looks anyway (and says so),
the way a patient person would.  It uses nothing but its session's environment
and the ``gt``/``bd`` commands on its PATH.

Options: ``--once`` exits after one ``gt done``; ``--wait S`` is how long to
wait for work when the hook is empty; ``--step-delay S`` pauses after each claim
(the chaos tests kill it there, mid-step); ``--crash`` exits at once with
status 3 (a crash loop, for the patrol's tests); ``--scribble PATH`` also writes
its own name into PATH at every step and commits it (two agents doing that
make each other's branches conflict: the tests of the merge queue use it).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from typing import Any

from .playbook import plan


def log(msg: str) -> None:
    """One line of the agent's output (its session log shows them)."""
    print(f"[{os.environ.get('GT_AGENT', 'agent')}] {msg}", flush=True)


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command, with standard input closed: nudges are for the agent, not its tools."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        log(f"FAILED {' '.join(argv)}: {proc.stderr.strip()[-500:]}")
        raise SystemExit(3)
    return proc


class Inbox:
    """Standard input as a source of nudges (a tty line, or a FIFO line headless)."""

    def __init__(self) -> None:
        self.closed = False

    def wait(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` s for a nudge; return its text (None on timeout)."""
        if self.closed:
            time.sleep(min(timeout, 0.5))
            return None
        try:
            ready, _, _ = select.select([0], [], [], max(0.0, timeout))
        except (OSError, ValueError):
            self.closed = True
            return None
        if not ready:
            return None
        data = os.read(0, 65536)
        if not data:
            self.closed = True  # no input at all (not in a session): poll instead
            return None
        # several nudges may have queued up while we worked: one look is enough
        while select.select([0], [], [], 0)[0]:
            more = os.read(0, 65536)
            if not more:
                break
            data += more
        return data.decode(errors="replace").strip().splitlines()[-1] if data.strip() else ""


def prime() -> dict[str, Any]:
    """What ``gt prime --json`` says now."""
    data: dict[str, Any] = json.loads(run("gt", "prime", "--json").stdout)
    return data


def commit_files(paths: list[str], message: str) -> bool:
    """Commit the files this step changed; False when there was nothing to commit.

    Only the step's own files are staged -- never ``git add -A``: whatever else
    the worktree holds (bytecode the tests wrote, an editor's swap file) is not
    the agent's work and would make every branch conflict with every other.
    """
    if not paths:
        return False
    run("git", "add", "--", *paths)
    if run("git", "diff", "--cached", "--quiet", check=False).returncode == 0:
        return False
    run("git", "commit", "-q", "-m", message)
    return True


def do_step(step: dict[str, Any], hook: dict[str, Any], delay: float,
            scribble: str = "") -> None:
    """Claim, edit, test, commit, close: one step."""
    if step["status"] == "open":
        run("bd", "update", step["id"], "--claim")
        log(f"claimed {step['id']}: {step['title']}")
    else:
        log(f"resuming {step['id']}: {step['title']}")
    if delay:
        time.sleep(delay)
    meta = hook.get("metadata") or {}
    variables = {str(k): str(v) for k, v in (meta.get("vars") or {}).items()}
    key = str((step.get("metadata") or {}).get("step") or "")
    issue_title = ""
    if variables.get("issue"):
        shown = run("bd", "show", variables["issue"], "--json", check=False)
        if shown.returncode == 0:
            data = json.loads(shown.stdout)
            issue_title = str((data[0] if isinstance(data, list) else data).get("title", ""))
    todo = plan(str(meta.get("formula") or ""), variables, key, issue_title)
    files = dict(todo.files)
    if scribble:
        files[scribble] = f"{os.environ.get('GT_AGENT', 'agent')} was here ({step['id']})\n"
    for rel, text in files.items():
        os.makedirs(os.path.dirname(rel) or ".", exist_ok=True)
        with open(rel, "w", encoding="utf-8") as fh:
            fh.write(text)
    if todo.run_tests:
        tests = run(sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", ".",
                    "-q", check=False)
        log(f"tests {'pass' if tests.returncode == 0 else 'FAIL'} ({step['id']})")
    committed = commit_files(sorted(files), f"{step['id']}: {step['title']}")
    run("bd", "close", step["id"], "-r", todo.note or "done")
    log(f"closed {step['id']}" + (" (committed)" if committed else ""))


def main(argv: list[str] | None = None) -> int:
    """Work whatever is hooked until done (and, with ``--once``, exit)."""
    parser = argparse.ArgumentParser(prog="gastown.demo.agent")
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--wait", type=float, default=60.0)
    parser.add_argument("--nudge-timeout", type=float, default=30.0)
    parser.add_argument("--step-delay", type=float, default=0.0)
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--scribble", default="")
    args = parser.parse_args(argv)
    if args.crash:
        log("crashing on purpose")
        return 3
    inbox = Inbox()
    log("started")
    deadline = time.monotonic() + args.wait
    while True:
        state = prime()
        hook, mol, step = state["hook"], state["molecule"], state["step"]
        if hook is None:
            if time.monotonic() > deadline:
                log("no work came; exiting")
                return 0
            inbox.wait(min(5.0, max(0.1, deadline - time.monotonic())))
            continue
        if mol is not None and mol["complete"] or mol is None and hook["status"] == "closed":
            log(run("gt", "done").stdout.strip())
            if args.once:
                return 0
            deadline = time.monotonic() + args.wait
            continue
        if mol is None:
            do_step({**hook, "status": "hooked"}, hook, args.step_delay, args.scribble)
            continue
        if step is not None:
            do_step(step, hook, args.step_delay, args.scribble)
        started = time.monotonic()
        heard = inbox.wait(args.nudge_timeout)
        if heard is None:
            log(f"no nudge within {args.nudge_timeout:g}s; looking anyway")
        else:
            log(f"nudged after {time.monotonic() - started:.2f}s: {heard[:100]}")


if __name__ == "__main__":
    sys.exit(main())
