#!/usr/bin/env python3
"""A stand-in for a coding agent that follows the town's rules to the letter.

It uses nothing but its session's environment (``GT_*``, ``BD_ACTOR``,
``BD_DB``, the git author variables) and the ``gt``/``bd`` command lines, as a
real agent would:

1. ``gt prime --json``: who am I, what is on my hook, which step is current;
2. claim the step (``bd update ID --claim``), write the step's own file
   (``work/<step id>.md``) in the worktree and commit only that file, close the
   step (``bd close ID``); again for the next step;
3. when every step is closed, ``gt done``.

Options: ``--once`` exits after one ``gt done``; ``--wait S`` is how long to
wait for work to appear on the hook; ``--echo FILE`` appends every line read on
standard input (nudges) to FILE, verbatim, for the injection tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time


def log(msg: str) -> None:
    print(f"[agent {os.environ.get('GT_AGENT', '?')}] {msg}", flush=True)


def run(*argv: str) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        log(f"FAILED {' '.join(argv)}: {proc.stderr.strip()}")
        raise SystemExit(3)
    return proc.stdout


def echo_stdin(path: str) -> None:
    """Record every line typed into the session (a nudge), exactly as received."""
    for line in sys.stdin:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)


def work_on(step: dict, root: str) -> None:
    """Claim, edit, commit, close: one step, the way the role prompt says."""
    if step["status"] == "open":
        run("bd", "update", step["id"], "--claim")
    # a file of its own per step, and only that file staged: two agents on one rig
    # never touch the same file, so their branches land one after the other
    note = os.path.join("work", f"{step['id']}.md")
    os.makedirs("work", exist_ok=True)
    with open(note, "a", encoding="utf-8") as fh:
        fh.write(f"- {step['id']}: {step['title']} ({os.environ.get('GT_AGENT', '?')})\n")
    run("git", "add", "--", note)
    run("git", "commit", "-q", "-m", f"{step['id']}: {step['title']}", "--", note)
    run("bd", "close", step["id"])
    log(f"closed {step['id']} of {root}")


STEP_DELAY = [0.0]  # --step-delay: seconds spent "thinking" before each step


def one_job(deadline: float) -> bool:
    """Do whatever is on the hook; False when nothing came before ``deadline``."""
    while True:
        prime = json.loads(run("gt", "prime", "--json"))
        if prime["hook"] is not None:
            break
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    hook = json.loads(run("gt", "hook", "--json"))
    root = hook["id"] if hook else prime["hook"]["id"]
    log(f"working on {root} in {os.getcwd()} as {os.environ.get('BD_ACTOR')}")
    while True:
        step = prime["step"]
        if step is not None and step["status"] == "open":
            # the step prime names must be one the ledger says is ready
            ready = [b["id"] for b in json.loads(run("bd", "ready", "--mol", root, "--json"))]
            if step["id"] not in ready:
                log(f"prime offered {step['id']} but bd ready --mol says {ready}")
                raise SystemExit(4)
        if STEP_DELAY[0]:
            time.sleep(STEP_DELAY[0])
        if step is not None:
            work_on(step, root)
        elif prime["molecule"] is None and prime["hook"]["status"] != "closed":
            # a single bead, not a molecule: the bead is the step
            work_on({**prime["hook"], "status": "hooked"}, root)
        else:
            ready = json.loads(run("bd", "ready", "--mol", root, "--json"))
            if ready:
                work_on(ready[0], root)
            else:
                break
        prime = json.loads(run("gt", "prime", "--json"))
        if prime["molecule"] is not None and prime["molecule"]["complete"]:
            break
        if prime["molecule"] is None:
            break
    log(run("gt", "done").strip())
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--wait", type=float, default=60.0)
    parser.add_argument("--echo", help="append lines read on stdin to this file")
    parser.add_argument("--step-delay", type=float, default=0.0)
    args = parser.parse_args()
    STEP_DELAY[0] = args.step_delay
    if args.echo:
        threading.Thread(target=echo_stdin, args=(args.echo,), daemon=True).start()
    log("started")
    while one_job(time.time() + args.wait):
        if args.once:
            return 0
    log("no work came; exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
