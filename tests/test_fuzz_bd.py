"""Fuzzing ``bd``: odd arguments and import lines never give an internal error.

A seeded generator builds command lines from the shapes that broke ``bd``
before (tracker issue 9: deeply nested JSON, integers of thousands of digits,
undecodable bytes, ids of 50,000 characters, control characters, option-like
values) and runs them in-process against one real SQLite ledger.  Every run
must end with a proper exit code (never 70), no traceback, and on failure
exactly one line on stderr.  ``GASTOWN_FUZZ_EXAMPLES`` sets how many command
lines run (default 400, bounded to about 45 s); ``GASTOWN_FUZZ_SEED`` the seed;
the counts go to :func:`helpers.robustness_report.report`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.bd_inprocess import bd_main
from helpers.robustness_report import report

BD = str(Path(sys.executable).parent / "bd")
EXAMPLES = int(os.environ.get("GASTOWN_FUZZ_EXAMPLES", "400"))
SEED = int(os.environ.get("GASTOWN_FUZZ_SEED", "20261129"))
#: the default run stops after this many seconds, whatever EXAMPLES says
BUDGET_S = 45.0 if "GASTOWN_FUZZ_EXAMPLES" not in os.environ else float("inf")


def run(cwd: Path, argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    return bd_main(cwd, *argv, stdin=stdin)


class Gen:
    """Random values of the shapes that hurt, plus ordinary ones."""

    def __init__(self, rng: random.Random, ids: list[str], tmp: Path) -> None:
        self.rng = rng
        self.ids = ids
        self.tmp = tmp

    def pick(self, *options: object) -> object:
        return self.rng.choice(options)

    def nested(self) -> str:
        depth = self.rng.choice([3, 63, 64, 65, 200, 1000, 5000, 100000])
        open_, close = self.rng.choice([("[", "]"), ('{"a":', "}")])
        return open_ * depth + "1" + close * depth

    def big_int(self) -> str:
        return self.rng.choice(["9", "-", "1"]) + "9" * self.rng.choice([19, 20, 4299, 4301, 9000])

    def text(self) -> str:
        r = self.rng.random()
        if r < 0.12:
            return self.nested()
        if r < 0.22:
            return self.big_int()
        if r < 0.30:
            return "x\udcff\udc80y"  # undecodable bytes as Python hands them over
        if r < 0.36:
            return "i" * self.rng.choice([256, 1001, 50000])
        if r < 0.46:
            return self.rng.choice(["line\nbreak", "tab\there", "nul\x00", "cr\r", "\x1b[31m",
                                    "bell\x07", "ls\u2028sep", "", " ", "-", "--", "-x", "P9",
                                    "²", "٣", "1e3", "nan", "-1", "0", "4", "5"])
        if r < 0.56:
            return json.dumps(self.rng.choice([{}, [], {"a": 1}, {"a": "\\ud800"}, "s", None,
                                               {"n": 10 ** 30}, {"deep": [[[[]]]]}]))
        if r < 0.70:
            return self.bead_id()
        return "".join(self.rng.choice("abcXYZ019-_.:,/ éü✓") for _ in range(
            self.rng.randint(1, 12)))

    def bead_id(self) -> str:
        if self.ids and self.rng.random() < 0.7:
            return self.rng.choice(self.ids)
        return self.rng.choice(["fz-nope", "fz", "f", "fz-", "fz-" + "z" * 50000, "zz-1.2.3",
                                "%", "_", "fz-%", "\\"])

    def maybe(self, *opts: str) -> list[str]:
        out: list[str] = []
        for opt in opts:
            if self.rng.random() < 0.3:
                out += [opt, self.text()]
        return out

    def import_line(self) -> str:
        obj: dict[str, object] = {"id": self.rng.choice([self.bead_id(), "fz-imp1", "fz-imp2"]),
                                  "title": self.rng.choice(["ok title", "", " ", "a\nb", 5])}
        for key, values in (("status", ["open", "closed", "tombstone", "weird", 3, None]),
                            ("priority", [0, 4, 5, -1, True, "1", 10 ** 40]),
                            ("issue_type", ["task", "bug", "epic", "nope", 7]),
                            ("labels", [["a"], ["a b"], "a", [1], ["ok", "ok"]]),
                            ("estimated_minutes", [5, -5, 1.5, "x"]),
                            ("created_at", ["2025-01-01T00:00:00Z", "yesterday", 5]),
                            ("comments", [[{"id": 1, "text": "c"}], [{"text": 5}], "x"])):
            if self.rng.random() < 0.4:
                obj[key] = self.rng.choice(values)
        if self.rng.random() < 0.5:
            obj["dependencies"] = [{"depends_on_id": self.rng.choice(
                [self.bead_id(), obj["id"], "fz-imp1", "fz-imp2"]),
                "type": self.rng.choice(["blocks", "parent-child", "parent_child", "related",
                                         "", "two words", "waits-for"])}]
        text = json.dumps(obj)
        r = self.rng.random()
        if r < 0.1:
            text = text[:-1] + ', "metadata": ' + self.nested() + "}"
        elif r < 0.2:
            text = text[:-1] + ', "priority": ' + self.big_int() + "}"
        elif r < 0.25:
            text = text[: self.rng.randint(0, len(text))]
        return text

    def argv(self) -> tuple[list[str], str]:
        """One command line and what goes on its stdin."""
        g, rng = self, self.rng
        kind = rng.choice(["create", "q", "update", "show", "close", "reopen", "delete",
                           "label", "comment", "comments", "dep", "list", "ready", "blocked",
                           "search", "stats", "events", "prime", "kv", "config", "import",
                           "export", "doctor", "count-ids"])
        if kind in ("create", "q"):
            return [kind, g.text(), *g.maybe("-p", "-t", "-d", "--metadata", "-l", "--deps",
                                             "--parent", "--id", "-e", "--defer", "--due",
                                             "-a", "--notes", "--body-file", "--external-ref",
                                             "--owner", "--design")], ""
        if kind == "update":
            ids = [g.bead_id() for _ in range(rng.randint(1, 3))]
            extra = g.maybe("-p", "-s", "-t", "--title", "--notes", "--append-notes",
                            "--metadata", "--add-label", "--remove-label", "--set-labels",
                            "--defer", "-e", "--pinned")
            if rng.random() < 0.2:
                extra.append("--claim")
            return ["update", *ids, *extra], ""
        if kind in ("show", "close", "reopen"):
            return [kind, *[g.bead_id() for _ in range(rng.randint(1, 3))]], ""
        if kind == "delete":
            return ["delete", *[g.bead_id() for _ in range(rng.randint(1, 3))], "--force",
                    *(["--cascade"] if rng.random() < 0.5 else [])], ""
        if kind == "label":
            action = str(g.pick("add", "remove", "list", "list-all"))
            return ["label", action, *[g.bead_id() for _ in range(rng.randint(0, 2))],
                    g.text()], ""
        if kind == "comment":
            if rng.random() < 0.3:
                return ["comment", g.bead_id(), "-f", str(g.pick(
                    "-", self.tmp, self.tmp / "missing.txt", self.tmp / "notes.txt"))], g.text()
            return ["comment", g.bead_id(), g.text()], ""
        if kind == "comments":
            return ["comments", *(["add"] if rng.random() < 0.5 else []), g.bead_id(),
                    g.text()], ""
        if kind == "dep":
            action = str(g.pick("add", "remove", "list", "tree", "cycles"))
            return ["dep", action, g.bead_id(), g.bead_id(), *g.maybe("-t", "--max-depth")], ""
        if kind in ("list", "ready", "blocked", "search"):
            args = [kind] + ([g.text()] if kind == "search" else [])
            return args + g.maybe("-s", "-t", "-p", "--priority-min", "-l", "-a", "--parent",
                                  "-n", "--limit"), ""
        if kind in ("stats", "prime", "doctor"):
            return [kind], ""
        if kind == "events":
            return ["events", *g.maybe("--since", "-n", "--type")], ""
        if kind == "kv":
            return ["kv", str(g.pick("set", "get", "clear")), g.text(), g.text()], ""
        if kind == "config":
            key = str(g.pick("issue_prefix", g.text()))
            if rng.random() < 0.5:
                return ["config", "set", key, g.text()], ""
            return ["config", "get", key], ""
        if kind == "import":
            lines = "\n".join(g.import_line() for _ in range(rng.randint(1, 4))) + "\n"
            if rng.random() < 0.5:
                return ["import", "-", *(["--dry-run"] if rng.random() < 0.3 else [])], lines
            path = self.tmp / f"in{rng.randint(0, 3)}.jsonl"
            path.write_text(lines, encoding="utf-8")
            if rng.random() < 0.1:
                path = self.tmp / str(g.pick("missing.jsonl", "notes.txt", ""))
            return ["import", str(path)], ""
        if kind == "export":
            target = str(g.pick(self.tmp / "out.jsonl", self.tmp / "notes.txt", self.tmp,
                                "/dev/null", "-", self.tmp / "missing" / "x.jsonl"))
            return ["export", "-o", target, *(["--force"] if rng.random() < 0.3 else [])], ""
        return ["list", "--json", *g.maybe("-n")], ""


@pytest.fixture
def fuzz_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BD_ACTOR", "fuzzer")
    monkeypatch.delenv("BD_DB", raising=False)
    monkeypatch.delenv("BEADS_DB", raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    assert run(repo, ["init", "--prefix", "fz", "-q"])[0] == 0
    (tmp_path / "notes.txt").write_text("not an export\n", encoding="utf-8")
    return repo


def _ids(repo: Path) -> list[str]:
    code, out, _ = run(repo, ["list", "--json", "--all", "-n", "0"])
    if code != 0:
        code, out, _ = run(repo, ["list", "--json"])
    return [b["id"] for b in json.loads(out)] if code == 0 else []


def test_fuzz_bd_commands_never_fail_inside(fuzz_repo: Path) -> None:
    rng = random.Random(SEED)
    for title in ("alpha", "beta", "gamma"):
        run(fuzz_repo, ["q", title])
    ids = _ids(fuzz_repo)
    run(fuzz_repo, ["q", "child", "--parent", ids[0]])
    gen = Gen(rng, _ids(fuzz_repo), fuzz_repo.parent)
    started = time.monotonic()
    bad: list[str] = []
    ran = internal = 0
    for n in range(EXAMPLES):
        if time.monotonic() - started > BUDGET_S:
            break
        argv, stdin = gen.argv()
        if rng.random() < 0.15:
            argv.append("--json")
        if rng.random() < 0.05:
            argv += ["--actor", gen.text()]
        code, _out, err = run(fuzz_repo, argv, stdin)
        ran += 1
        shown = " ".join(ascii(a[:30]) for a in argv)
        if code == 70 or "Traceback" in err or "internal error" in err:
            internal += 1
            bad.append(f"#{n} {shown}: exit {code}: {err[:300]}")
        elif code == 1 and argv[0] in ("doctor", "dep"):
            pass  # a check that found something (README: exit 1), reported on stdout
        elif code != 0 and (err.count("\n") != 1 or not err.endswith("\n")):
            bad.append(f"#{n} {shown}: exit {code} with {err.count(chr(10))} lines: {err[:300]}")
        if n % 25 == 0:
            gen.ids = _ids(fuzz_repo) or gen.ids
    report("fuzz-bd", cases=ran, internal=internal)
    assert not bad, f"{len(bad)} of {ran} runs failed:\n" + "\n".join(bad[:20])
    assert ran >= min(EXAMPLES, 50)
    # the ledger is still whole: every reader works on what the fuzzing left
    for argv in (["list"], ["prime"], ["ready", "--json"], ["blocked"], ["stats"],
                 ["export", "-o", "-"], ["dep", "cycles"]):
        code, _out, err = run(fuzz_repo, argv)
        assert code == 0, (argv, err)
    for bead_id in _ids(fuzz_repo):
        assert run(fuzz_repo, ["show", bead_id])[0] == 0


@pytest.mark.parametrize("argv", [
    [b"show", b"\xff\xfe"],
    [b"create", b"caf\xe9"],
    [b"update", b"fz-x", b"--notes", b"\x80"],
    [b"list", b"-a", b"\xc3"],
])
def test_undecodable_arguments_in_a_real_process(fuzz_repo: Path, argv: list[bytes]) -> None:
    env = dict(os.environ, BD_ACTOR="fuzzer")
    proc = subprocess.run([BD.encode(), *argv], cwd=fuzz_repo, env=env, capture_output=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count(b"\n") == 1 and b"not valid UTF-8" in proc.stderr, proc.stderr


def test_huge_and_nested_arguments_in_a_real_process(fuzz_repo: Path) -> None:
    env = dict(os.environ, BD_ACTOR="fuzzer")
    for argv, code in ((["show", "fz-" + "q" * 50000], 3),
                       (["create", "t", "--metadata", "[" * 50000 + "]" * 50000], 5),
                       (["create", "t", "-p", "7" * 5000], 5)):
        proc = subprocess.run([BD, *argv], cwd=fuzz_repo, env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == code, proc.stderr[:300]
        assert proc.stderr.count("\n") == 1 and len(proc.stderr) < 1200, proc.stderr[:300]
