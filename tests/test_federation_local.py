"""Short forms and a town's own addresses resolve here (issue 13, item 2), via real ``bd``."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from helpers.fedtowns import bead, js, make_town, one_line_error, run  # noqa: E402

HERE = "gt://alice@example.com/main-town"


def test_rig_short_form_and_own_address_resolve_here(tmp_path: Path) -> None:
    town = make_town(tmp_path, "main-town", "alice@example.com")
    web = bead(town, "on web", "--labels", "rig:web")
    plain = bead(town, "no rig")
    assert js(town, "bd", "show", f"web/{web}")[0]["id"] == web
    assert js(town, "bd", "show", f"{HERE}/web/{web}")[0]["id"] == web
    assert js(town, "bd", "show", f"hop://alice@example.com/main-town/{plain}")[0]["id"] == plain
    run(town, "bd", "update", f"web/{web}", "--priority", "0")
    assert js(town, "bd", "show", web)[0]["priority"] == 0
    line = one_line_error(run(town, "bd", "show", f"api/{web}", rc=3))
    assert f"{web} is on rig web, not rig api" in line
    assert "is on no rig" in one_line_error(run(town, "bd", "close", f"web/{plain}", rc=3))
    assert js(town, "bd", "show", plain)[0]["status"] == "open"  # nothing half-done
    # a dependency on this town's own address is a local edge: it counts like one
    run(town, "bd", "dep", "add", plain, f"{HERE}/web/{web}")
    assert [b["id"] for b in js(town, "bd", "blocked")] == [plain]
    run(town, "bd", "close", f"{HERE}/web/{web}")
    assert plain in [b["id"] for b in js(town, "bd", "ready")]
    assert "no issue found" in one_line_error(run(town, "bd", "show", "a/b/c", rc=3))


def test_remote_add_as_the_seed_writes_it(tmp_path: Path) -> None:
    import subprocess

    hub = tmp_path / "hub" / "acme.com" / "engineering.git"
    hub.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", str(hub)], check=True)
    acme = make_town(tmp_path, "engineering", "acme.com",
                     f'publish = "all"\npublish_to = ["{hub}"]')
    ac = bead(acme, "acme's task")
    run(acme, "gt", "publish")
    mine = make_town(tmp_path, "main-town", "alice@example.com")
    assert "remote_url" in one_line_error(
        run(mine, "gt", "remote", "add", "acme", "gt://acme.com/engineering", rc=2))
    with open(mine / "town.toml", "a", encoding="utf-8") as fh:
        fh.write(f'\n[federation]\nremote_url = "{tmp_path}/hub/{{entity}}/{{chain}}.git"\n')
    run(mine, "gt", "remote", "add", "acme", "gt://acme.com/engineering")  # no --url
    (listed,) = js(mine, "gt", "remote", "list")
    assert listed["url"] == str(hub)
    run(mine, "gt", "remote", "sync")
    assert js(mine, "bd", "show", f"gt://acme.com/engineering/{ac}")[0]["title"] == "acme's task"
    assert [b["id"] for b in js(mine, "bd", "list", "--remote=acme")] == [ac]
