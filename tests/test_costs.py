"""Cost accounting: usage read from real files in each agent program's own format,
attributed to agents, sessions, molecules, convoys and days; prices and budgets
from town.toml, and one clear line for each mistake in them."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents.townkit import add_agent, gt, gt_json, sleeper
from agents.usagekit import claude_line, iso
from gastown.config.costs import DEFAULT_PRICES, parse_limit, price_of
from gastown.config.schema import parse_config
from gastown.errors import ValidationError
from gastown.town.budgets import check_budgets, paused, period_bounds
from gastown.town.core import Town
from gastown.town.rigs import ensure_worktree
from gastown.town.sessions import Sessions
from gastown.town.slinging import sling
from gastown.town.usage import claude_project_dir, usage_file

pytest_plugins = ("agents.fixtures",)


def set_costs(town: Town, text: str) -> None:
    """Append TOML to town.toml and reload."""
    path = Path(town.config_path)
    path.write_text(path.read_text() + "\n" + text + "\n")
    town.reload()


def started(town: Town, name: str) -> None:
    ensure_worktree(town, town.agent(name), f"{name}/work")
    Sessions(town).start(town.agent(name), actor="tester")


def test_usage_from_claude_codex_gemini_and_the_town_file(town: Town, tmp_path: Path) -> None:
    homes = {k: tmp_path / k for k in ("claude", "codex", "gemini")}
    set_costs(town, "[costs]\n" + "".join(f'{k}_dir = "{v}"\n' for k, v in homes.items()))
    for name in ("cla", "cod", "gem", "cmd"):
        add_agent(town, name, sleeper())
    t0 = time.time() - 60
    # Claude: one API message written on two lines (one per content block) counts once
    proj = Path(claude_project_dir(str(homes["claude"]), town.workdir(town.agent("cla"))))
    proj.mkdir(parents=True)
    (proj / "abc.jsonl").write_text("\n".join([
        json.dumps({"type": "user", "timestamp": iso(t0), "message": {"role": "user"}}),
        claude_line(t0 + 1, "msg_1", "claude-sonnet-4-5-20250929", 1000, 200, 3000, 50000),
        claude_line(t0 + 1, "msg_1", "claude-sonnet-4-5-20250929", 1000, 200, 3000, 50000),
        "{not json", "",
        claude_line(t0 + 2, "msg_2", "claude-sonnet-4-5-20250929", 10, 800)]) + "\n")
    # Codex: running totals; a repeated total is no new call; another cwd is not ours
    cwd = town.workdir(town.agent("cod"))
    day = homes["codex"] / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)

    def tc(ts: float, inp: int, cached: int, out: int) -> dict[str, Any]:
        return {"timestamp": iso(ts), "type": "event_msg", "payload": {
            "type": "token_count", "info": {"total_token_usage": {
                "input_tokens": inp, "cached_input_tokens": cached, "output_tokens": out,
                "reasoning_output_tokens": 0, "total_tokens": inp + out}}}}

    lines = [{"timestamp": iso(t0), "type": "session_meta", "payload": {"cwd": cwd}},
             {"timestamp": iso(t0), "type": "turn_context", "payload": {"model": "gpt-5"}},
             tc(t0 + 1, 5000, 4000, 100), tc(t0 + 1, 5000, 4000, 100),
             tc(t0 + 2, 9000, 7000, 300)]
    (day / "rollout-2026-01-02T03-04-05-x.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n")
    other = [{"timestamp": iso(t0), "type": "session_meta", "payload": {"cwd": "/elsewhere"}},
             tc(t0 + 1, 10**6, 0, 10**6)]
    (day / "rollout-2026-01-02T03-04-06-y.jsonl").write_text(
        "\n".join(json.dumps(x) for x in other) + "\n")
    # Gemini: a chat file under the sha256 of the worktree
    gcwd = town.workdir(town.agent("gem"))
    chats = homes["gemini"] / "tmp" / hashlib.sha256(gcwd.encode()).hexdigest() / "chats"
    chats.mkdir(parents=True)
    (chats / "session-2026-01-02T03-04-abc.json").write_text(json.dumps({
        "sessionId": "s1", "messages": [
            {"id": "u1", "timestamp": iso(t0), "type": "user", "content": "hi"},
            {"id": "g1", "timestamp": iso(t0 + 1), "type": "gemini", "model": "gemini-2.5-pro",
             "tokens": {"input": 2000, "output": 100, "cached": 500, "thoughts": 50,
                        "tool": 0, "total": 2150}}]}))
    # any other program: Claude-shaped lines in the town's usage file
    f = Path(usage_file(town.gt_dir, "cmd"))
    f.parent.mkdir(parents=True)
    f.write_text(claude_line(t0 + 3, "m1", "my-local-model", 700, 70) + "\n")

    data = gt_json(town, "costs", "--by", "agent")
    by = {g["agent"]: g for g in data["groups"]}
    assert set(by) == {"cla", "cod", "gem", "cmd"}
    cla = by["cla"]
    assert (cla["calls"], cla["input"], cla["output"], cla["cache_write"],
            cla["cache_read"]) == (2, 1010, 1000, 3000, 50000)
    assert cla["usd"] == pytest.approx((1010 * 3 + 1000 * 15 + 3000 * 3.75
                                        + 50000 * 0.30) / 1e6)
    cod = by["cod"]
    assert (cod["calls"], cod["input"], cod["cache_read"], cod["output"]) == (2, 2000, 7000, 300)
    assert cod["usd"] == pytest.approx((2000 * 1.25 + 7000 * 0.125 + 300 * 10) / 1e6)
    gem = by["gem"]
    assert (gem["input"], gem["cache_read"], gem["output"]) == (1500, 500, 150)
    cmd = by["cmd"]
    assert cmd["usd"] == 0 and cmd["unpriced_tokens"] == 770
    assert data["total_usd"] == pytest.approx(sum(g["usd"] for g in data["groups"]))
    text = gt(town, "costs").stdout
    assert "770 tokens unpriced" in text and "TOTAL" in text
    # a price in town.toml prices the unknown model and overrides a default
    set_costs(town, '[costs.prices.my-local-model]\ninput = 1.0\noutput = 2.0\n'
                    '[costs.prices."gpt-5"]\ninput = 2.0\noutput = 20.0\ncache_read = 0.0\n')
    by = {g["agent"]: g for g in gt_json(town, "costs")["groups"]}
    assert by["cmd"]["usd"] == pytest.approx((700 * 1 + 70 * 2) / 1e6)
    assert by["cod"]["usd"] == pytest.approx((2000 * 2 + 300 * 20) / 1e6)


def test_costs_by_session_molecule_convoy_and_day(town: Town) -> None:
    add_agent(town, "w", sleeper())
    f = Path(usage_file(town.gt_dir, "w"))
    f.parent.mkdir(parents=True)
    before = time.time() - 5  # before any session or work: session 0, no molecule
    with town.ledger("tester") as led:
        a = led.create("first job")["id"]
        b = led.create("second job")["id"]
    gt(town, "convoy", "create", "batch", b)
    started(town, "w")
    sling(town, a, "w", nudge=False, actor="tester")
    time.sleep(0.05)
    in_a = time.time()
    Sessions(town).stop(town.agent("w"), actor="tester")
    started(town, "w")
    time.sleep(0.05)
    in_s2 = time.time()
    with f.open("w") as fh:
        fh.write(claude_line(before, "m0", "claude-sonnet-4", 100, 10) + "\n")
        fh.write(claude_line(in_a, "m1", "claude-sonnet-4", 1000, 100) + "\n")
        fh.write(claude_line(in_s2, "m2", "claude-sonnet-4", 2000, 200) + "\n")
    sessions = {(g["agent"], g["session"]): g["input"]
                for g in gt_json(town, "costs", "--by", "session")["groups"]}
    assert sessions == {("w", 0): 100, ("w", 1): 1000, ("w", 2): 2000}
    mols = {g["molecule"]: g["input"] for g in gt_json(town, "costs", "--by", "molecule")["groups"]}
    assert mols == {None: 100, a: 3000}
    days = gt_json(town, "costs", "--by", "day")["groups"]
    assert sum(g["input"] for g in days) == 3100
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", g["day"]) for g in days)
    # b is in a convoy: usage while b is on the hook counts for that convoy
    gt(town, "hook", "clear", "w")
    sling(town, b, "w", nudge=False, actor="tester")
    time.sleep(0.05)
    with f.open("a") as fh:
        fh.write(claude_line(time.time(), "m3", "claude-sonnet-4", 5, 1) + "\n")
    convoys = {g["convoy"]: g["input"] for g in gt_json(town, "costs", "--by", "convoy")["groups"]}
    assert len(convoys) == 2 and convoys[None] == 3100
    (convoy_id,) = [k for k in convoys if k]
    assert convoys[convoy_id] == 5
    assert gt_json(town, "costs", "--since", "1h", "--agent", "w")["total_usd"] > 0


@pytest.mark.parametrize("toml,key", [
    ('[costs.prices.m]\ninput = "cheap"\noutput = 1\n', "costs.prices.m.input"),
    ('[costs.prices.m]\ninput = 1\n', "costs.prices.m.output"),
    ('[costs.prices.m]\ninput = -1\noutput = 1\n', "costs.prices.m.input"),
    ('[costs.prices.m]\ninput = 1\noutput = 1\nfree = true\n', "costs.prices.m"),
    ('[costs]\nprice = 1\n', "costs"),
    ('[budgets.agent]\nnobody = "$5/day"\n', "budgets.agent.nobody"),
    ('[budgets.agent]\nw = "5 dollars"\n', "budgets.agent.w"),
    ('[budgets.agent]\nw = "$5/fortnight"\n', "budgets.agent.w"),
    ('[budgets.agent]\nw = 5\n', "budgets.agent.w"),
    ('[budgets]\ntown = "$-1/day"\n', "budgets.town"),
    ('[budgets]\nagents = {}\n', "budgets"),
])
def test_bad_price_or_budget_is_one_line_naming_the_key(town: Town, toml: str,
                                                        key: str) -> None:
    add_agent(town, "w", sleeper())
    path = Path(town.config_path)
    path.write_text(path.read_text() + "\n" + toml)
    proc = gt(town, "costs", check=False)
    assert proc.returncode == ValidationError.exit_code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in proc.stderr


def test_limits_prices_and_periods() -> None:
    assert parse_limit("$5/day", "k") == (5.0, "usd", "day")
    assert parse_limit("$ 0.25 / hour", "k") == (0.25, "usd", "hour")
    assert parse_limit("2M tokens/week", "k") == (2e6, "tokens", "week")
    assert parse_limit("500k tokens/month", "k") == (5e5, "tokens", "month")
    assert price_of(DEFAULT_PRICES, "claude-opus-4-5-20251101") == DEFAULT_PRICES["claude-opus-4-5"]
    assert price_of(DEFAULT_PRICES, "claude-opus-4-1") == DEFAULT_PRICES["claude-opus-4"]
    assert price_of(DEFAULT_PRICES, "llama") is None
    at = datetime(2026, 3, 4, 15, 30, tzinfo=UTC).timestamp()  # a Wednesday
    day = period_bounds("day", at)
    assert day == (datetime(2026, 3, 4, tzinfo=UTC).timestamp(),
                   datetime(2026, 3, 5, tzinfo=UTC).timestamp())
    assert period_bounds("week", at)[0] == datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    assert period_bounds("month", at) == (datetime(2026, 3, 1, tzinfo=UTC).timestamp(),
                                          datetime(2026, 4, 1, tzinfo=UTC).timestamp())
    dec = datetime(2026, 12, 31, 23, tzinfo=UTC).timestamp()
    assert period_bounds("month", dec)[1] == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    cfg = parse_config({"town": {"name": "t"}, "budgets": {"town": "$1/day"}})
    assert cfg.budgets[0].kind == "town" and cfg.budgets[0].limit == 1.0


def test_budget_pauses_then_resumes_when_raised_or_next_period(town: Town) -> None:
    add_agent(town, "w", sleeper())
    add_agent(town, "v", sleeper())
    set_costs(town, '[budgets.agent]\nw = "$0.01/day"\nv = "1k tokens/day"\n')
    f = Path(usage_file(town.gt_dir, "w"))
    f.parent.mkdir(parents=True)
    now = time.time()
    f.write_text(claude_line(now - 1, "m1", "claude-sonnet-4", 1000, 1000) + "\n")  # $0.018
    with town.ledger("tester") as led:
        assert check_budgets(town, led, now) == {"paused": ["budgets.agent.w"], "resumed": []}
        assert check_budgets(town, led, now) == {"paused": [], "resumed": []}  # once
        held = paused(led)
        assert list(held) == ["gt.budget.paused.agent.w"]
        (ev,) = led.events(types=["budget.paused"])
        assert ev["payload"]["agent"] == "w" and ev["payload"]["spent"] == pytest.approx(0.018)
    status = gt(town, "status").stdout
    assert "Paused by budget: budgets.agent.w = $0.01/day" in status
    assert "PAUSED" in gt(town, "costs").stdout
    # the next day the spend is 0: resumed
    with town.ledger("tester") as led:
        assert check_budgets(town, led, now + 86400)["resumed"] == ["budgets.agent.w"]
        assert check_budgets(town, led, now)["paused"] == ["budgets.agent.w"]
    # raising the limit resumes it at once
    path = Path(town.config_path)
    path.write_text(path.read_text().replace('w = "$0.01/day"', 'w = "$1/day"'))
    town.reload()
    with town.ledger("tester") as led:
        assert check_budgets(town, led, now)["resumed"] == ["budgets.agent.w"]
        assert paused(led) == {}
        assert [e["payload"]["key"] for e in led.events(types=["budget.resumed"])] == [
            "budgets.agent.w", "budgets.agent.w"]
    assert "Paused by budget" not in gt(town, "status").stdout


def test_agents_sharing_the_town_folder_split_its_records_by_session(
        town: Town, tmp_path: Path) -> None:
    set_costs(town, f'[costs]\nclaude_dir = "{tmp_path / "claude"}"\n')
    add_agent(town, "mayor", sleeper(), rig=None)
    add_agent(town, "deacon", sleeper(), rig=None)
    assert town.workdir(town.agent("mayor")) == town.workdir(town.agent("deacon"))
    proj = Path(claude_project_dir(str(tmp_path / "claude"), town.root))
    proj.mkdir(parents=True)
    Sessions(town).start(town.agent("mayor"), actor="tester")
    time.sleep(0.05)
    t1 = time.time()
    Sessions(town).start(town.agent("deacon"), actor="tester")
    time.sleep(0.05)
    t2 = time.time()
    (proj / "x.jsonl").write_text(claude_line(t1, "m1", "claude-sonnet-4", 100, 1) + "\n"
                                  + claude_line(t2, "m2", "claude-sonnet-4", 200, 2) + "\n")
    by = {g["agent"]: g["input"] for g in gt_json(town, "costs")["groups"]}
    assert by == {"mayor": 100, "deacon": 200}, "each record once, to the latest session"
