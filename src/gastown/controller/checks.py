"""Verification loops: a step with ``[steps.ralph]`` counts as done only when its check passes.

At pour time such a step gets a ``check`` gate (a gate bead, ``await_type =
"check"``) that waits for the step and holds back the step's dependents and its
parent.  When an agent closes the step, the dispatcher calls :func:`run_checks`
before it plans the next nudge:

* the check program (``path``, relative to the agent's worktree) runs there as
  an argument vector — never through a shell — with the formula's timeout, in
  its own process group (killed whole on timeout), its output kept to a tail;
* **pass**: the gate closes, so the dependents become ready;
* **fail**: the step is reopened with the check's output as a comment and one
  attempt is counted on the gate; the dispatcher then nudges the agent to redo it;
* nobody holds the molecule (no agent, no worktree): nothing runs, and the gate
  waits for a person (``bd gate resolve``);
* **attempts exhausted**: like ``gt done --status escalated`` — the step is
  marked ``blocked`` with the ``escalated`` label and a comment, and the owner
  (``[town] escalate_to``, else whoever slung the work) gets mail.  With
  ``[steps.retry] on_exhausted = "soft_fail"`` the gate closes instead and the
  molecule goes on, the failure recorded on the gate.

The check path is untrusted formula text: it must stay inside the worktree
(checked again here after resolving symbolic links).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Any

from ..errors import GastownError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..ledger.ops import Txn
    from ..town.core import Town

__all__ = ["run_checks", "run_check_program", "CheckResult", "OUTPUT_TAIL"]

#: how much of a check's output is kept (the end, where failures are reported)
OUTPUT_TAIL = 4000


class CheckResult:
    """What one run of a check program did."""

    def __init__(self, ok: bool, code: int | None, output: str, detail: str = "") -> None:
        self.ok = ok
        self.code = code
        self.output = output
        self.detail = detail

    def summary(self) -> str:
        """``exit 1`` / ``timed out after 30s`` / why it could not run."""
        if self.detail:
            return self.detail
        return f"exit {self.code}"


def _inside(path: str, root: str) -> bool:
    root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), root]) == root


def run_check_program(workdir: str, rel_path: str, timeout: float,
                      env: dict[str, str] | None = None) -> CheckResult:
    """Run ``rel_path`` (inside ``workdir``) with ``timeout``; never raises for its failures."""
    if os.path.isabs(rel_path) or ".." in rel_path.replace("\\", "/").split("/"):
        return CheckResult(False, None, "", f"check path {rel_path!r} is not inside the worktree")
    program = os.path.join(workdir, rel_path)
    if not os.path.isdir(workdir):
        return CheckResult(False, None, "", f"worktree {workdir} does not exist")
    if not os.path.isfile(program) or not _inside(program, workdir):
        return CheckResult(False, None, "", f"check program {rel_path} not found in the worktree")
    if not os.access(program, os.X_OK):
        return CheckResult(False, None, "", f"check program {rel_path} is not executable")
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen([os.path.realpath(program)], cwd=workdir,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except OSError as exc:
            return CheckResult(False, None, "", f"cannot run {rel_path}: {exc.strerror}")
        try:
            code: int | None = proc.wait(timeout=timeout)
            detail = ""
        except subprocess.TimeoutExpired:
            code, detail = None, f"timed out after {timeout:g}s"
        # the whole group, also after a normal exit: a check's background children
        # (a server it started, a `sleep &`) must not outlive it
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        size = out.seek(0, os.SEEK_END)
        out.seek(max(0, size - OUTPUT_TAIL))
        text = out.read().decode("utf-8", "replace")
    return CheckResult(code == 0, code, text, detail)


def _workdir(town: Town, led: Ledger, step: Bead) -> str | None:
    """The worktree of the agent holding the molecule (or assigned to the step)."""
    from ..chemistry.inspect import mol_root

    root = led.get(mol_root(led, step["id"]))
    for holder in (root.get("assignee"), step.get("assignee")):
        agent = town.agent_by_address(str(holder)) if holder else None
        if agent is not None:
            return town.workdir(agent)
    return None


def run_checks(town: Town, led: Ledger, events: Iterable[dict[str, Any]], actor: str,
               log: Callable[[str], None] = lambda _m: None) -> list[dict[str, Any]]:
    """Run the check of every closed step among ``bead.closed`` events; what happened."""
    out = []
    for event in events:
        bead_id = event.get("bead_id")
        if not bead_id:
            continue
        try:
            result = _check_one(town, led, str(bead_id), actor)
        except GastownError as exc:
            log(f"check: {bead_id}: {exc}")
            continue
        if result is not None:
            out.append(result)
    return out


def _check_one(town: Town, led: Ledger, bead_id: str, actor: str) -> dict[str, Any] | None:
    try:
        step = led.get(bead_id)
    except NotFoundError:
        return None
    gate_id = (step.get("metadata") or {}).get("check_gate")
    if not gate_id or step["status"] != "closed":
        return None
    try:
        gate = led.get(str(gate_id))
    except NotFoundError:
        return None
    if gate["status"] == "closed":
        return None
    gmeta = dict(gate.get("metadata") or {})
    spec = gmeta.get("check") or {}
    workdir = _workdir(town, led, step)
    if workdir is None:
        # no agent holds the molecule: no worktree to run in; the gate waits for a person
        # (``bd gate resolve``) rather than failing attempts that never ran
        return None
    started = time.monotonic()
    attempts = int(gmeta.get("attempts", 0)) + 1
    env = dict(os.environ, GT_CHECK_STEP=bead_id, GT_CHECK_ATTEMPT=str(attempts))
    res = run_check_program(workdir, str(spec.get("path", "")),
                            float(spec.get("timeout", 300)), env)
    limit = int(spec.get("max_attempts", 3))
    gmeta.update(attempts=attempts, last_result=res.summary(),
                 last_seconds=round(time.monotonic() - started, 3))
    record = {"step": bead_id, "gate": gate_id, "attempt": attempts, "max_attempts": limit,
              "ok": res.ok, "result": res.summary()}
    tail = res.output.strip()
    report = (f"Check {spec.get('path')} failed ({res.summary()}), attempt {attempts} of "
              f"{limit}." + (f"\n\n{tail}" if tail else ""))
    with led.transaction(actor) as t:
        if t.status_of(bead_id) != "closed" or t.status_of(str(gate_id)) == "closed":
            return None  # someone moved on meanwhile
        t.update(str(gate_id), metadata=gmeta)
        if res.ok:
            t.close(str(gate_id), reason=f"check passed (attempt {attempts})", force=True)
            record["action"] = "passed"
        elif attempts < limit:
            t.reopen(bead_id, reason="check failed")
            t.add_comment(bead_id, report + "\n\nFix it and close the step again.", author=actor)
            record["action"] = "retry"
        elif gmeta.get("on_exhausted") == "soft_fail":
            t.add_comment(bead_id, report + "\n\nNo attempts left (soft_fail): moving on.",
                          author=actor)
            t.close(str(gate_id), reason="check failed; soft_fail", force=True)
            record["action"] = "soft_fail"
        else:
            t.reopen(bead_id, reason="check failed")
            t.update(bead_id, status="blocked")
            t.add_label(bead_id, "escalated")
            t.add_comment(bead_id, report + "\n\nNo attempts left: escalated.", author=actor)
            record["action"] = "escalated"
            _escalate(town, t, step, report)
        t.emit("check." + record["action"], bead_id, record)
    return record


def _escalate(town: Town, t: Txn, step: Bead, report: str) -> None:
    """Mail the owner, as ``gt done --status escalated`` does."""
    from ..town.mail import send_txn
    from ..town.work import sling_meta

    root_id = (t.ancestors(step["id"]) or [step["id"]])[-1]  # the molecule's root
    root = t.get(root_id)
    to = town.config.town.escalate_to or sling_meta(root).get("by") or sling_meta(step).get("by")
    if to:
        send_txn(town, t, str(to), f"Escalated: {step['title']}"[:200],
                 f"{step['id']} (in {root_id}) did not pass its check.\n\n{report}")
