"""The watchdog (``gt up --watch``) and ``gt doctor``: real processes, real kill -9."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from agents.controlkit import events, make_town, session_env  # noqa: F401 - a fixture
from agents.townkit import gt, gt_json, teardown_town, wait_for
from gastown.controller.daemon import read_state
from gastown.controller.service import down, is_running
from gastown.controller.watchdog import watchdog_info

pytestmark = pytest.mark.usefixtures("session_env")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_watchdog_restarts_a_killed_controller_and_down_stops_both(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    try:
        out = gt_json(town, "up", "--watch")
        assert out["started"] and out["running"] and out["watchdog"]["running"]
        dog = out["watchdog"]["pid"]
        first = read_state(town)["pid"]
        assert out["pid"] == first and first != dog
        again = gt_json(town, "up", "--watch")
        assert not again["started"] and again["watchdog"]["pid"] == dog, "one per town"

        for round_ in (1, 2):
            victim = read_state(town)["pid"]
            os.kill(victim, signal.SIGKILL)
            new = wait_for(lambda v=victim: is_running(town)
                           and read_state(town).get("pid") not in (None, v)
                           and read_state(town)["pid"], 10, what="a restarted controller")
            assert new != victim and _alive(new)
            wait_for(lambda r=round_: len(events(town, "controller.restarted")) >= r, 10,
                     what="the restart in the event log")
        restarts = events(town, "controller.restarted")
        assert [e["payload"]["by"] for e in restarts] == ["watchdog", "watchdog"]
        assert restarts[0]["payload"]["previous_pid"] == first
        assert restarts[0]["payload"]["exit"] == -signal.SIGKILL
        assert watchdog_info(town)["restarts"] == 2

        doctor = gt_json(town, "doctor")
        by = {c["check"]: c for c in doctor["checks"]}
        assert by["controller"]["status"] == "ok" and by["watchdog"]["status"] == "ok"
        assert "2 restart(s)" in by["watchdog"]["detail"]

        last = read_state(town)["pid"]
        stopped = gt_json(town, "down")
        assert stopped["stopped"] and stopped["watchdog"]["stopped"]
        assert not is_running(town) and not watchdog_info(town)["running"]
        wait_for(lambda: not _alive(dog) and not _alive(last), 10, what="both gone")
        assert "No controller was running" in gt(town, "down").stdout
    finally:
        down(town, timeout=10)
        teardown_town(town)


def test_doctor_reports_a_town_without_a_controller_and_bad_things(tmp_path: Path) -> None:
    town = make_town(tmp_path, extra_toml='[orders.nightly]\nformula = "mol-nowhere"\n'
                                          'schedule = "@daily"\n')
    try:
        proc = gt(town, "doctor", check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        assert any(line.startswith("! controller") and "not running" in line for line in lines)
        assert any(line.startswith("! watchdog") and "docs/systemd.md" in line for line in lines)
        assert any(line.startswith("✗ orders") and "order nightly: formula 'mol-nowhere'" in line
                   for line in lines)
        assert lines[-1] == "The town has problems; see the failures."
        # a private key that others can read is a failure too
        key = Path(town.gt_dir, "federation", "signing-key.pem")
        key.parent.mkdir(mode=0o700)
        key.write_text("not really a key")
        key.chmod(0o644)
        report = json.loads(gt(town, "doctor", "--json", check=False).stdout)
        perms = next(c for c in report["checks"] if c["check"] == "permissions")
        assert perms["status"] == "fail" and "chmod 600" in perms["detail"]
        key.chmod(0o600)
        Path(town.config_path).write_text(Path(town.config_path).read_text().replace(
            '"mol-nowhere"', '"mol-quick-fix"\nvars = { issue = "t-1" }'))
        report = gt_json(town, "doctor")
        assert report["status"] == "warn", report
        assert {c["check"]: c["status"] for c in report["checks"]}["orders"] == "ok"
    finally:
        teardown_town(town)


def test_watchdog_backs_off_while_the_controller_cannot_start(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    config = Path(town.config_path)
    good = config.read_text()
    log = Path(town.gt_dir, "logs", "watchdog.log")
    try:
        gt_json(town, "up", "--watch")
        config.write_text(good + "\n[orders.bad]\nformula = 1\n")
        os.kill(read_state(town)["pid"], signal.SIGKILL)
        wait_for(lambda: log.read_text().count("died before it was up") >= 2, 20,
                 what="two failed starts")
        text = log.read_text()
        assert "next start in 1s" in text and "next start in 2s" in text, text
        assert text.count("controller started") <= 5, "it does not spin"
        config.write_text(good)
        wait_for(lambda: is_running(town), 30, what="the controller back once the file is fixed")
        assert watchdog_info(town)["running"]
    finally:
        config.write_text(good)
        down(town, timeout=10)
        teardown_town(town)
