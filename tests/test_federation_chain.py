"""Three towns, three folders, every step a separate ``gt``/``bd`` process, over git only.

prime delegates to sub, sub accepts and delegates on to con (the contractor),
con accepts automatically; each town publishes its signed log to its own bare
git repository and reads the others' with ``git fetch``.  Completion cascades
up (con closes → sub completes → prime completes), attribution is kept at every
level, ``bd list --project --include-delegated`` follows both levels, and a
remote that goes away fails its sync with one line while the rest carries on.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cryptography")

from helpers.fedtowns import js, make_town, one_line_error, run  # noqa: E402

PRIME, SUB, CON = "gt://prime.com/prime", "gt://sub.com/sub", "gt://con.com/con"


def git_town(root: Path, name: str) -> tuple[Path, Path]:
    """Town NAME publishing everything to its own bare repository ``root/NAME.git``."""
    hub = root / f"{name}.git"
    subprocess.run(["git", "init", "-q", "--bare", str(hub)], check=True)
    return make_town(root, name, f"{name}.com",
                     f'publish = "all"\npublish_to = ["{hub}"]'), hub


def shown(t: Path, bead_id: str) -> dict[str, Any]:
    return dict(js(t, "bd", "show", bead_id)[0])


def test_three_level_delegation_over_git(tmp_path: Path) -> None:
    (p, ph), (s, sh), (c, ch) = (git_town(tmp_path, n) for n in ("prime", "sub", "con"))
    for t in (p, s, c):
        run(t, "gt", "publish")
    run(p, "gt", "remote", "add", "sub", SUB, "--url", str(sh))
    run(p, "gt", "remote", "add", "con", CON, "--url", str(ch))
    run(s, "gt", "remote", "add", "prime", PRIME, "--url", str(ph))
    run(s, "gt", "remote", "add", "con", CON, "--url", str(ch))
    run(c, "gt", "remote", "add", "sub", SUB, "--url", str(sh), "--accept-delegations")

    job = run(p, "bd", "q", "build the bridge", "--actor", "prime/crew/pat").stdout.strip()
    d1 = js(p, "gt", "delegate", job, f"{SUB}/backend", "--actor", "prime/crew/pat")
    run(s, "gt", "remote", "sync", "prime")
    (inc,) = js(s, "gt", "delegation", "list")["incoming"]
    assert (inc["id"], inc["by"], inc["from"]) == (d1["id"], "prime/crew/pat", f"{PRIME}/_/{job}")
    taken = js(s, "gt", "delegation", "accept", d1["id"], "--actor", "sub/crew/sam")[0]
    sub_id = taken["bead"].rsplit("/", 1)[1]
    child = run(s, "bd", "q", "sub's own part", "--parent", sub_id).stdout.strip()
    d2 = js(s, "gt", "delegate", sub_id, CON, "--actor", "sub/crew/sam")
    run(s, "gt", "publish")
    run(c, "gt", "remote", "sync", "--actor", "con/crew/cat")  # accepted on sync
    (got,) = js(c, "gt", "delegation", "list")["incoming"]
    assert (got["id"], got["status"], got["answered_by"]) == (d2["id"], "accepted", "con/crew/cat")
    con_id = got["bead"].rsplit("/", 1)[1]
    meta = shown(c, con_id)["metadata"]
    assert (meta["delegated_from"], meta["accepted_by"]) == \
        (f"{SUB}/backend/{sub_id}", "con/crew/cat")
    run(c, "gt", "publish")

    # the whole project from the top, through both levels (as of the last sync)
    run(p, "gt", "remote", "sync")
    tree = js(p, "bd", "list", f"--project={job}", "--include-delegated")
    rows = [(b.get("town"), b.get("depth"), b.get("uri") or b["id"]) for b in tree]
    assert rows == [("(here)", None, job),
                    ("sub", 1, f"{SUB}/backend/{sub_id}"),
                    ("sub", 1, f"{SUB}/_/{child}"),  # a child has no rig of its own
                    ("con", 2, f"{CON}/_/{con_id}")]
    assert (tree[1]["answered_by"], tree[3]["answered_by"]) == ("sub/crew/sam", "con/crew/cat")
    assert tree[3]["delegated_from"] == f"{SUB}/backend/{sub_id}"
    assert "    con  " in run(p, "bd", "list", f"--project={job}", "--include-delegated").stdout

    # completion cascades up, one sync per level
    run(c, "bd", "close", con_id, "--actor", "con/crew/cat")
    run(c, "gt", "publish")
    run(s, "gt", "remote", "sync")
    assert shown(s, sub_id)["status"] != "closed"  # its own child is still open
    run(s, "bd", "close", child, "--actor", "sub/crew/sam")
    run(s, "gt", "remote", "sync")
    sub_bead = shown(s, sub_id)
    assert sub_bead["status"] == "closed"
    assert f"{CON}/_/{con_id} (accepted by con/crew/cat)" in sub_bead["close_reason"]
    run(s, "gt", "publish")
    assert shown(p, job)["status"] != "closed"
    run(p, "gt", "remote", "sync")
    top = shown(p, job)
    assert top["status"] == "closed"
    assert f"{SUB}/backend/{sub_id} (accepted by sub/crew/sam)" in top["close_reason"]
    (out,) = js(p, "gt", "delegation", "list")["outgoing"]
    assert (out["status"], out["answered_by"]) == ("done", "sub/crew/sam")
    done = js(p, "bd", "list", f"--project={job}", "--include-delegated")
    assert [b["delegation_status"] for b in done if b.get("delegation")] == ["done", "done"]
    for hub in (ph, sh, ch):  # git was the only way across
        assert subprocess.run(["git", "--git-dir", str(hub), "rev-parse", "-q", "--verify",
                               "refs/gastown/federation"], capture_output=True).returncode == 0
    assert not any((tmp_path / f"{n}-log").exists() for n in ("prime", "sub", "con"))

    # the contractor's repository goes away: one line, the rest syncs, work continues
    shutil.rmtree(ch)
    proc = run(p, "gt", "remote", "sync", rc=3)
    assert "remote con:" in one_line_error(proc) and "records known" in proc.stderr
    assert "Synced sub:" in proc.stdout
    later = run(p, "bd", "q", "local work goes on").stdout.strip()
    assert shown(p, later)["status"] == "open"
    status = js(p, "gt", "status")["federation"]
    con = next(r for r in status["remotes"] if r["name"] == "con")
    assert con["last_error"] and con["age"].endswith("ago") and con["count"] > 0
    text = run(p, "gt", "status").stdout
    assert "remote con:" in text and "synced" in text and "last error" in text
    assert js(p, "bd", "show", f"{CON}/_/{con_id}")[0]["status"] == "closed"  # still known
    # a town with no remote here ends the walk: its part is listed with what is known
    run(p, "gt", "remote", "remove", "con")
    tail = js(p, "bd", "list", f"--project={job}", "--include-delegated")[-1]
    assert (tail["town"], tail["depth"], tail["delegation_status"], tail["uri"]) == \
        (CON, 2, "unknown", None)
    assert tail["delegated_from"] == f"{SUB}/backend/{sub_id}"
