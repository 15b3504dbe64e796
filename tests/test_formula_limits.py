"""Formulas and their variables are untrusted input: every dimension is bounded.

Each case found by fuzzing runs ``bd cook --dry-run`` in a child process with an
address-space limit and a wall-clock limit, and must be refused quickly with one
line naming the key (exit 8, invalid formula) — never a MemoryError, a
RecursionError, an internal error (exit 70) or minutes of CPU.  For a longer
fuzzing run, ``GASTOWN_FORMULA_FUZZ_EXAMPLES`` sets the examples of each
in-process fuzz test (default 150 and 200) and ``GASTOWN_FORMULA_FUZZ_CLI_EXAMPLES``
those run through ``bd cook`` (default 15); pytest's ``--hypothesis-seed`` fixes
the seed.  The counts go to :func:`helpers.robustness_report.report`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gastown.chemistry import api
from gastown.errors import GastownError
from helpers.robustness_report import report

#: generous for a slow, shared machine; the unbounded versions took minutes or GBs
LIMIT_S = 20.0
MEMORY_BYTES = 1 << 30


def _examples(var: str, default: int) -> int:
    return int(os.environ.get(var, str(default)))


#: what the fuzz tests of this module ran, reported once the module is done
_FUZZ = {"cases": 0, "internal": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_fuzz_counts() -> Iterator[None]:
    yield
    if _FUZZ["cases"]:
        report("fuzz-formulas", **_FUZZ)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def cook(tmp_path: Path, path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env.pop("GT_FORMULA_PATH", None)
    env.pop("GT_TOWN", None)
    start = time.monotonic()
    proc = subprocess.run(["bd", "cook", "--dry-run", str(path), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=LIMIT_S * 2,
                          preexec_fn=_limit_memory)
    return proc, time.monotonic() - start


def refused(tmp_path: Path, path: Path, *args: str, says: str) -> str:
    proc, elapsed = cook(tmp_path, path, *args)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 8, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1, proc.stderr[-2000:]
    assert says in lines[0], lines[0]
    assert elapsed < LIMIT_S, elapsed
    return lines[0]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


LOOP = """formula = "big"
[[steps]]
id = "rep"
[steps.loop]
count = {count}
[[steps.loop.body]]
id = "x"
title = "X"
"""


@pytest.mark.parametrize("count", [10**8, 10**9, 10**18])
def test_huge_loop_count_is_refused_before_building(tmp_path: Path, count: int) -> None:
    path = write(tmp_path, "big.formula.toml", LOOP.format(count=count))
    line = refused(tmp_path, path, says="key 'count'")
    assert "step 'rep'" in line and str(path) in line


WIDE_LOOP = """formula = "wide"
[[steps]]
id = "rep"
[steps.loop]
range = "1000000000000000000..{end}"
var = "i"
[[steps.loop.body]]
id = "x"
title = "X"
description = "{text}"
"""


@pytest.mark.parametrize(("placeholder", "copies", "end", "says"), [
    # one 3 MB text of {i}: 19 characters each, 19 MB per iteration
    ("{i}", 1_000_000, "1000000000000000200", "placeholders"),
    # each iteration within the 1 MiB per text, 19,000 of them 18 GB in all
    ("{{i}}", 50_000, "1000000000000019000", "the steps' text"),
])
def test_loop_variables_cannot_blow_up_the_text(tmp_path: Path, placeholder: str, copies: int,
                                                end: str, says: str) -> None:
    path = write(tmp_path, "wide.formula.toml",
                 WIDE_LOOP.format(end=end, text=placeholder * copies))
    line = refused(tmp_path, path, says=says)
    assert "step 'rep'" in line


def test_nested_loops_are_refused_quickly(tmp_path: Path) -> None:
    path = write(tmp_path, "nest.formula.toml", """formula = "nest"
[[steps]]
id = "outer"
[steps.loop]
count = 2000
[[steps.loop.body]]
id = "inner"
[steps.loop.body.loop]
count = 2000
[[steps.loop.body.loop.body]]
id = "x"
title = "X"
""")
    line = refused(tmp_path, path, says="steps")
    assert "loop" in line and "nest.formula.toml" in line


def test_extends_diamond_is_deduplicated(tmp_path: Path) -> None:
    """12 formulas per level, each extending all 12 of the level below, 9 levels deep."""
    width, levels = 12, 9
    for j in range(width):
        write(tmp_path, f"l0-{j}.formula.toml",
              f'formula = "l0-{j}"\n[[steps]]\nid = "s{j}"\ntitle = "S{j}"\n')
    for k in range(1, levels):
        parents = json.dumps([f"l{k - 1}-{j}" for j in range(width)])
        for j in range(width):
            write(tmp_path, f"l{k}-{j}.formula.toml",
                  f'formula = "l{k}-{j}"\nextends = {parents}\n')
    last = json.dumps([f"l{levels - 1}-{j}" for j in range(width)])
    top = write(tmp_path, "top.formula.toml", f'formula = "top"\nextends = {last}\n')
    proc, elapsed = cook(tmp_path, top)
    assert elapsed < LIMIT_S, elapsed
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    if proc.returncode == 0:
        assert "12 steps" in proc.stdout, proc.stdout[:500]
    else:
        assert proc.returncode == 8 and len(lines) == 1, proc.stderr[-2000:]
        assert "extends" in lines[0]


def test_repeated_parent_in_extends_is_folded_once(tmp_path: Path) -> None:
    write(tmp_path, "base.formula.toml", 'formula = "base"\n[[steps]]\nid = "a"\ntitle = "A"\n')
    prev = "base"
    for k in range(8):
        write(tmp_path, f"m{k}.formula.toml",
              f'formula = "m{k}"\nextends = {json.dumps([prev] * 12)}\n')
        prev = f"m{k}"
    top = write(tmp_path, "top.formula.toml", f'formula = "top"\nextends = ["{prev}"]\n')
    proc, elapsed = cook(tmp_path, top)
    assert proc.returncode == 0, proc.stderr
    assert elapsed < LIMIT_S


def test_expansion_fan_out_is_refused(tmp_path: Path) -> None:
    """Each expansion's 8 template steps expand the next one: 8^6 steps."""
    depth, width = 6, 8
    for k in range(depth):
        body = "".join(
            f'[[template]]\nid = "{{target}}.t{j}"\ntitle = "T{j}"\n'
            + (f'expand = "e{k + 1}"\n' if k + 1 < depth else "") for j in range(width))
        write(tmp_path, f"e{k}.formula.toml", f'formula = "e{k}"\ntype = "expansion"\n{body}')
    top = write(tmp_path, "fan.formula.toml",
                'formula = "fan"\n[[steps]]\nid = "go"\ntitle = "Go"\nexpand = "e0"\n')
    refused(tmp_path, top, says="steps")


def test_self_expansion_is_refused(tmp_path: Path) -> None:
    body = "".join(f'[[template]]\nid = "{{target}}.t{j}"\ntitle = "T"\nexpand = "me"\n'
                   for j in range(8))
    write(tmp_path, "me.formula.toml", f'formula = "me"\ntype = "expansion"\n{body}')
    top = write(tmp_path, "top.formula.toml",
                'formula = "top"\n[[steps]]\nid = "go"\ntitle = "Go"\nexpand = "me"\n')
    refused(tmp_path, top, says="expan")


def test_children_nested_500_deep_are_refused(tmp_path: Path) -> None:
    step = '{"id": "leaf", "title": "Leaf"}'
    for k in range(500):
        step = f'{{"id": "c{k}", "title": "C", "children": [{step}]}}'
    path = write(tmp_path, "deep.formula.json", f'{{"formula": "deep", "steps": [{step}]}}')
    line = refused(tmp_path, path, says="children")
    assert "deep.formula.json" in line


def test_deep_toml_nesting_is_refused(tmp_path: Path) -> None:
    value = "[" * 5000 + "]" * 5000
    path = write(tmp_path, "arr.formula.toml", f'formula = "arr"\nx = {value}\n')
    refused(tmp_path, path, says="arr.formula.toml")


def test_deeply_nested_metadata_is_refused(tmp_path: Path) -> None:
    value = "[" * 200 + "]" * 200
    path = write(tmp_path, "meta.formula.toml", 'formula = "meta"\n[[steps]]\nid = "a"\n'
                 f'title = "A"\nmetadata = {{ x = {value} }}\n')
    refused(tmp_path, path, says="nested more than")


RANGE = """formula = "rng"
[vars.n]
default = "3"
[[steps]]
id = "rep"
[steps.loop]
range = "1..{{n}}"
[[steps.loop.body]]
id = "x"
title = "X"
"""


@pytest.mark.parametrize("expr", ["(((10^64)^64)^64)^64", "9^9^9^9", "2**64**64",
                                  "10000000000*10000000000*10000000000*1000000000",
                                  "9" * 5000, "(" * 3000 + "1" + ")" * 3000])
def test_range_expression_blow_up_is_refused(tmp_path: Path, expr: str) -> None:
    path = write(tmp_path, "rng.formula.toml", RANGE)
    line = refused(tmp_path, path, "--var", f"n={expr}", says="range")
    assert "step 'rep'" in line


def test_small_range_still_works(tmp_path: Path) -> None:
    path = write(tmp_path, "rng.formula.toml", RANGE)
    proc, _ = cook(tmp_path, path, "--var", "n=2*(1+1)^2-5", "--json")
    assert proc.returncode == 0, proc.stderr
    steps = [s["step"] for s in json.loads(proc.stdout)["steps"]]
    assert steps == ["rep.iter1.x", "rep.iter2.x", "rep.iter3.x"]


PATTERN = """formula = "pat"
[vars.name]
pattern = '{pattern}'
[[steps]]
id = "a"
title = "Do {{{{name}}}}"
"""


@pytest.mark.parametrize("pattern", ["^(a+)+$", "(a*)*b", r"^(\w+\s?)*$", "(x+x+)+y"])
def test_catastrophic_pattern_is_refused(tmp_path: Path, pattern: str) -> None:
    path = write(tmp_path, "pat.formula.toml", PATTERN.format(pattern=pattern))
    # refused when the file is read, not by the time limit on the match (which says
    # "took too long"): the pattern is never run
    line = refused(tmp_path, path, "--var", "name=" + "a" * 34 + "!",
                   says="catastrophic backtracking")
    assert "vars.name" in line


def test_slow_pattern_is_time_limited(tmp_path: Path) -> None:
    """No nesting, but polynomial backtracking: the match itself is time-limited."""
    path = write(tmp_path, "pat.formula.toml", PATTERN.format(pattern="a*a*a*a*a*a*a*b"))
    refused(tmp_path, path, "--var", "name=" + "a" * 3000, says="took too long")


#: a process with a second thread holding a lock that an at-fork handler takes (as the
#: PostgreSQL store's does): a forked matcher would hang on it and be refused as too slow
_THREADED_MATCH = """
import os, threading
from gastown.chemistry.patterns import pattern_matches
lock = threading.Lock()
os.register_at_fork(after_in_child=lambda: (lock.acquire(), lock.release()))
held, done = threading.Event(), threading.Event()
def hold():
    with lock:
        held.set()
        done.wait()
threading.Thread(target=hold).start()
held.wait()
try:
    print(pattern_matches(r"^v?\\d+\\.\\d+\\.\\d+$", "v1.2.3"),
          pattern_matches(r"^v?\\d+\\.\\d+\\.\\d+$", "1.2"))
finally:
    done.set()
"""


def test_time_limited_match_is_safe_in_a_threaded_process() -> None:
    proc = subprocess.run([sys.executable, "-c", _THREADED_MATCH], capture_output=True,
                          text=True, timeout=LIMIT_S)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "False"]


def test_ordinary_patterns_still_match(tmp_path: Path) -> None:
    path = write(tmp_path, "pat.formula.toml", PATTERN.format(pattern=r"^v?\d+\.\d+\.\d+$"))
    proc, _ = cook(tmp_path, path, "--var", "name=v1.2.3")
    assert proc.returncode == 0, proc.stderr
    refused(tmp_path, path, "--var", "name=1.2", says="does not match")


def test_variable_value_length_is_bounded(tmp_path: Path) -> None:
    path = write(tmp_path, "v.formula.toml", PATTERN.format(pattern=".*"))
    line = refused(tmp_path, path, "--var", "name=" + "x" * 100_000, says="longer than")
    assert "name" in line


def test_substitution_blow_up_is_bounded(tmp_path: Path) -> None:
    path = write(tmp_path, "sub.formula.toml",
                 'formula = "sub"\n[vars.x]\ndefault = ""\n[[steps]]\nid = "a"\n'
                 f'title = "A"\ndescription = "{"{{x}}" * 50_000}"\n')
    refused(tmp_path, path, "--var", "x=" + "y" * 60_000, says="step 'a'")


def test_many_loops_compile_in_linear_time(tmp_path: Path) -> None:
    """5,000 loop steps (one iteration each) chained: no quadratic pass."""
    parts = ['formula = "many"\n']
    for k in range(5000):
        needs = f'needs = ["l{k - 1}"]\n' if k else ""
        parts.append(f'[[steps]]\nid = "l{k}"\n{needs}[steps.loop]\ncount = 1\n'
                     f'[[steps.loop.body]]\nid = "x"\ntitle = "X"\n')
    path = write(tmp_path, "many.formula.toml", "".join(parts))
    proc, elapsed = cook(tmp_path, path, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert elapsed < LIMIT_S, elapsed
    steps = json.loads(proc.stdout)["steps"]
    assert len(steps) == 5000 and steps[-1]["needs"] == ["many.l4998.iter1.x"]


# ------------------------------------------------------------------ fuzz


_IDS = st.sampled_from(["a", "b", "c", "d", "e"])
#: mostly small, sometimes absurd: the absurd ones must be refused, the rest compiled
_INTS = st.one_of(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(-5, 30),
                  st.sampled_from([10**6, 10**9, 2**63, 10**30]))
_EXPRS = st.one_of(st.integers(1, 4).map(str), st.integers(1, 4).map(str), st.sampled_from(
    ["{{n}}", "2^{{n}}", "{{n}}*{{n}}", "(9^9)^9", "{n}", "1/0", "x", "{{m}}", "..", "1..2"]))


def _rarely(value: st.SearchStrategy[object], common: object) -> st.SearchStrategy[object]:
    """``common`` three times out of four, else something from ``value``."""
    return st.one_of(st.just(common), st.just(common), st.just(common), value)


@st.composite
def _step(draw: st.DrawFn, depth: int) -> dict[str, object]:
    step: dict[str, object] = {"id": draw(_IDS)}
    title = draw(_rarely(st.sampled_from(["{{n}}", "{{x}} {{x}}", "", "a\nb"]), "T"))
    if title != "":
        step["title"] = title
    if draw(st.booleans()):
        step["needs"] = draw(st.lists(_IDS, max_size=2))
    kind = draw(st.sampled_from(["plain", "plain", "loop", "range", "children", "expand",
                                 "check", "parallel", "bad"]))
    if kind == "loop" and depth < 3:
        step["loop"] = {"count": draw(_INTS),
                        "body": draw(st.lists(_step(depth + 1), min_size=1, max_size=3))}
    elif kind == "range" and depth < 3:
        step["loop"] = {"range": f"{draw(_EXPRS)}..{draw(_EXPRS)}", "var": "i",
                        "body": draw(st.lists(_step(depth + 1), min_size=1, max_size=3))}
    elif kind == "children" and depth < 3:
        step["children"] = draw(st.lists(_step(depth + 1), max_size=3))
    elif kind == "expand":
        step["expand"] = draw(st.sampled_from(["exp", "exp", "top", "nothing"]))
    elif kind == "check":
        step["ralph"] = {"max_attempts": draw(_INTS),
                         "check": {"mode": "exec", "path": "true", "timeout": "5s"}}
    elif kind == "parallel":
        step["type"] = "parallel"
        step["children"] = draw(st.lists(_step(depth + 1), max_size=3)) if depth < 3 else []
    elif kind == "bad":
        step[draw(st.sampled_from(["zz", "priority", "gate", "labels"]))] = draw(
            st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)))
    return step


@st.composite
def _formula(draw: st.DrawFn) -> dict[str, object]:
    data: dict[str, object] = {"formula": "top", "steps": draw(st.lists(_step(0), max_size=4))}
    if draw(st.booleans()):
        data["vars"] = {"n": {"default": draw(_EXPRS)},
                        "x": {"pattern": draw(_rarely(st.sampled_from(["^(a+)+$", "a*a*b", "["]),
                                                      ".*"))}}
    if draw(st.booleans()):
        data["extends"] = draw(st.lists(st.sampled_from(["base", "base", "top", "nope"]),
                                        max_size=2))
    if draw(st.booleans()):
        data["squash"] = {"trigger": draw(_rarely(st.sampled_from(["never", 3]), "on_complete"))}
    return data


@settings(max_examples=_examples("GASTOWN_FORMULA_FUZZ_EXAMPLES", 150), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(data=_formula(), n=_EXPRS, x=st.text(max_size=40))
def test_fuzz_random_formulas_never_crash(tmp_path_factory: pytest.TempPathFactory,
                                          data: dict[str, object], n: str, x: str) -> None:
    directory = tmp_path_factory.mktemp("fuzz")
    write(directory, "base.formula.toml",
          'formula = "base"\n[[steps]]\nid = "a"\ntitle = "A"\n[steps.loop]\ncount = 3\n'
          '[[steps.loop.body]]\nid = "z"\ntitle = "Z"\n')
    write(directory, "exp.formula.toml",
          'formula = "exp"\ntype = "expansion"\n[[template]]\nid = "{target}.one"\n'
          'title = "One"\nexpand = "exp"\n[[template]]\nid = "{target}.two"\ntitle = "Two"\n'
          'expand = "exp"\n')
    path = write(directory, "top.formula.json", json.dumps(data))
    start = time.monotonic()
    _FUZZ["cases"] += 1
    try:
        api.compile_ref(str(path), [str(directory)], {"n": n, "x": x})
        api.cook_view(str(path), [str(directory)], {"n": n, "x": x})
    except GastownError as exc:
        assert "\n" not in str(exc).strip() or "Traceback" not in str(exc)
    except Exception:
        _FUZZ["internal"] += 1
        raise
    assert time.monotonic() - start < 10.0


def test_target_placeholders_cannot_blow_up_an_expansion(tmp_path: Path) -> None:
    """{target.description} 200,000 times over a 100 KB description: refused, not built."""
    write(tmp_path, "exp.formula.toml", 'formula = "exp"\ntype = "expansion"\n[[template]]\n'
          f'id = "{{target}}.x"\ntitle = "X"\ndescription = "{"{target.description}" * 200_000}"\n')
    top = write(tmp_path, "top.formula.toml",
                'formula = "top"\n[[steps]]\nid = "go"\ntitle = "Go"\n'
                f'description = "{"d" * 100_000}"\nexpand = "exp"\n')
    line = refused(tmp_path, top, says="placeholders")
    assert "step 'go'" in line and "top.formula.toml" in line


def test_target_placeholders_are_filled_in_once(tmp_path: Path) -> None:
    """A target title made of {target.description} is not expanded again: 100 x 400 copies
    of a 1 MB description would be 40 GB, though each text is within the bound."""
    title = "{target.description}" * 400
    write(tmp_path, "exp.formula.toml", 'formula = "exp"\ntype = "expansion"\n[[template]]\n'
          f'id = "{{target}}.x"\ntitle = "X"\ndescription = "{"{target.title}" * 100}"\n')
    top = write(tmp_path, "top.formula.toml",
                f'formula = "top"\n[[steps]]\nid = "go"\ntitle = "{title}"\n'
                f'description = "{"d" * 1_000_000}"\nexpand = "exp"\n')
    proc, elapsed = cook(tmp_path, top, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    [step] = json.loads(proc.stdout)["steps"]
    assert step["description"] == title * 100
    assert elapsed < LIMIT_S, elapsed


def test_advice_on_many_steps_is_bounded_in_all(tmp_path: Path) -> None:
    """Each advice text is within 1 MiB (160 copies of a 6 KB title), but 9,000 of them
    would be 8.6 GB: the compile's total text is bounded too."""
    path = write(tmp_path, "adv.formula.toml",
                 'formula = "adv"\n[[steps]]\nid = "rep"\n[steps.loop]\ncount = 9000\n'
                 f'var = "i"\n[[steps.loop.body]]\nid = "x"\ntitle = "{"t" * 6000}{{{{i}}}}"\n'
                 '[[advice]]\ntarget = "rep.*"\n[[advice.before]]\nid = "{step.id}-pre"\n'
                 f'title = "Pre"\ndescription = "{"{step.title}" * 160}"\n')
    refused(tmp_path, path, says="the steps' text")


def test_step_placeholders_cannot_blow_up_advice(tmp_path: Path) -> None:
    path = write(tmp_path, "adv.formula.toml",
                 'formula = "adv"\n[[steps]]\nid = "go"\n'
                 f'title = "{"t" * 50_000}"\n[[advice]]\ntarget = "go"\n[[advice.before]]\n'
                 f'id = "pre"\ntitle = "Pre"\ndescription = "{"{step.title}" * 100_000}"\n')
    line = refused(tmp_path, path, says="advice")
    assert "step 'go'" in line


_FRAGMENTS = st.sampled_from([
    'formula = "t"\n', '[[steps]]\n', 'id = "a"\n', 'id = "b"\n', 'title = "T"\n',
    'needs = ["a"]\n', '[steps.loop]\n', 'count = 3\n', 'count = 100000000\n',
    'range = "1..{{n}}"\n', '[[steps.loop.body]]\n', '[[steps.children]]\n',
    '[steps.ralph]\n', 'max_attempts = 2\n', '[steps.ralph.check]\n', 'path = "c.sh"\n',
    'timeout = "1s"\n', '[squash]\n', 'trigger = "on_complete"\n', 'type = "parallel"\n',
    'extends = ["t"]\n', '[vars.n]\n', 'default = "9^9^9"\n', 'pattern = "(a+)+"\n',
    'x = [[[[[[1]]]]]]\n', '= broken\n', '"\\ud800"\n', '[steps.retry]\n', 'expand = "t"\n',
    'description = "{{n}}{{n}}"\n', '\x00', 'review_only = true\n', '[[template]]\n',
])


@settings(max_examples=_examples("GASTOWN_FORMULA_FUZZ_EXAMPLES", 200), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(parts=st.lists(_FRAGMENTS, max_size=25), n=_EXPRS)
def test_fuzz_random_formula_texts_never_crash(tmp_path_factory: pytest.TempPathFactory,
                                               parts: list[str], n: str) -> None:
    directory = tmp_path_factory.mktemp("text")
    path = write(directory, "t.formula.toml", "".join(parts))
    start = time.monotonic()
    _FUZZ["cases"] += 1
    try:
        api.compile_ref(str(path), [str(directory)], {"n": n})
    except GastownError:
        pass
    except Exception:
        _FUZZ["internal"] += 1
        raise
    assert time.monotonic() - start < 10.0


@settings(max_examples=_examples("GASTOWN_FORMULA_FUZZ_CLI_EXAMPLES", 15), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(parts=st.lists(_FRAGMENTS, min_size=3, max_size=25), n=_EXPRS)
def test_fuzz_formula_texts_through_bd_never_exit_70(tmp_path_factory: pytest.TempPathFactory,
                                                     parts: list[str], n: str) -> None:
    directory = tmp_path_factory.mktemp("cli")
    path = write(directory, "t.formula.toml", "".join(parts))
    proc, elapsed = cook(directory, path, "--var", f"n={n}")
    _FUZZ["cases"] += 1
    _FUZZ["internal"] += proc.returncode not in (0, 8) or "Traceback" in proc.stderr
    assert proc.returncode in (0, 8), (proc.returncode, proc.stderr[-1000:])
    assert "Traceback" not in proc.stderr and elapsed < LIMIT_S


@pytest.mark.parametrize("pattern", [r"(.*)\1", r"(?P<x>a*)(?P=x)b", r"(a)?(?(1)b|c)"])
def test_backreferences_are_matched_under_the_time_limit(pattern: str) -> None:
    """A backreference is not linear (``(.*)\\1`` is quadratic in the value's length):
    such a pattern is matched in the time-limited child, never in process."""
    from gastown.chemistry import patterns

    assert not patterns._is_linear(pattern)
    assert patterns._is_linear(r"^v?[0-9]+$")
