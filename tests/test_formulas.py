"""Formula loading, checking and compiling (no ledger needed).

The shared real-world formulas in ``../shared/formulas`` are read from there;
the small formulas below are written to a temporary directory per test.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gastown.chemistry import api, search
from gastown.chemistry.distilling import write_formula
from gastown.chemistry.model import Blueprint, Formula
from gastown.chemistry.tomlw import toml_string, toml_value
from gastown.errors import FormulaError, NotFoundError


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def compile_text(tmp_path: Path, text: str, values: dict[str, str] | None = None,
                 name: str = "f.formula.toml") -> Blueprint:
    path = write(tmp_path, name, text)
    return api.compile_ref(str(path), [str(tmp_path)], values)


def graph(bp: Blueprint) -> dict[str, list[str]]:
    return {s.id: list(s.needs) for s in bp.all_steps()}


# ------------------------------------------------------------------ shared formulas
EXPECTED = {
    "shiny": {"design": [], "implement": ["design"], "review": ["implement"],
              "test": ["review"], "submit": ["test"]},
    "pancakes": {"dry": [], "wet": [], "combine": ["dry", "wet"], "cook": ["combine"],
                 "serve": ["cook"]},
    "feature-workflow": {"design": [], "implement": ["design"], "test": ["implement"],
                         "review": ["test"], "merge": ["review"]},
    "shiny-enterprise": {
        "design": [], "implement.draft": ["design"],
        "implement.refine-1": ["implement.draft"], "implement.refine-2": ["implement.refine-1"],
        "implement.refine-3": ["implement.refine-2"], "implement.refine-4": ["implement.refine-3"],
        "review": ["implement.refine-4"], "test": ["review"], "submit": ["test"]},
    "rule-of-five": {"target.draft": [], "target.refine-1": ["target.draft"],
                     "target.refine-2": ["target.refine-1"],
                     "target.refine-3": ["target.refine-2"],
                     "target.refine-4": ["target.refine-3"]},
}


def test_every_shared_formula_loads_and_compiles(shared_dir: Path) -> None:
    files = sorted((shared_dir / "formulas").iterdir())
    assert len(files) >= 7
    for path in files:
        bp = api.compile_ref(str(path), [str(shared_dir / "formulas")])
        assert bp.all_steps(), path
        if bp.name in EXPECTED:
            assert graph(bp) == EXPECTED[bp.name], bp.name


def test_convoy_legs_run_in_parallel_and_synthesis_waits(shared_dir: Path) -> None:
    bp = api.compile_ref(str(shared_dir / "formulas" / "code-review.formula.toml"), [])
    g = graph(bp)
    legs = [s for s in g if s != "synthesis"]
    assert len(legs) == 10 and all(g[leg] == [] for leg in legs)
    assert sorted(g["synthesis"]) == sorted(legs)
    # inputs become variables, one of pr/files/branch being enough
    assert bp.vars["pr"].required_unless == ["files", "branch"]
    gate = api.compile_ref(str(shared_dir / "formulas" / "code-review.formula.toml"), [],
                           {"preset": "gate"})
    assert sorted(graph(gate)["synthesis"]) == ["security", "smells", "test-quality", "wiring"]


def test_expansion_substitutes_target_fields(shared_dir: Path) -> None:
    bp = api.compile_ref("shiny-enterprise", [str(shared_dir / "formulas")])
    draft = next(s for s in bp.all_steps() if s.id == "implement.draft")
    assert draft.title == "Draft: Implement {{feature}}"
    assert "Write the code for {{feature}}" in draft.description
    assert draft.source == "rule-of-five"


def test_name_lookup_variants_and_search_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "formulas", tmp_path / "b"
    first.mkdir(parents=True)
    second.mkdir()
    wf = 'formula = "{n}"\n[[steps]]\nid = "s"\ntitle = "{t}"\n'
    write(first, "mol-thing.toml", wf.format(n="mol-thing", t="first"))
    write(second, "mol-thing.formula.toml", wf.format(n="mol-thing", t="second"))
    write(second, "only.formula.toml", wf.format(n="only", t="x"))
    write(second, "bare.toml", wf.format(n="bare", t="x"))  # bare .toml outside formulas/
    paths = [str(first), str(second)]
    assert search.find_formula("thing", paths) == str(first / "mol-thing.toml")
    assert search.find_formula("mol-thing", paths) == str(first / "mol-thing.toml")
    assert search.find_formula("mol-only", paths) == str(second / "only.formula.toml")
    assert search.find_formula("only.formula.toml", paths) == str(second / "only.formula.toml")
    with pytest.raises(NotFoundError):
        search.find_formula("bare", paths)
    names = [(r.name, r.shadowed) for r in search.list_formulas(paths)]
    assert ("mol-thing", False) in names and ("mol-thing", True) in names


def test_compiling_by_name_parses_each_file_once(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding a formula by name reads its declared name; that parse is the one compiled."""
    write(tmp_path, "base.formula.toml", 'formula = "base"\n[[steps]]\nid = "a"\ntitle = "A"\n')
    write(tmp_path, "top.formula.toml",
          'formula = "top"\nextends = ["base"]\n[[steps]]\nid = "b"\ntitle = "B"\n'
          'needs = ["a"]\n')
    parsed: list[str] = []
    real = search.load_file

    def counting(path: str) -> Formula:
        parsed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(search, "load_file", counting)
    monkeypatch.setattr(api, "load_file", counting)
    bp = api.compile_ref("top", [str(tmp_path)], {})
    assert graph(bp) == {"a": [], "b": ["a"]}
    assert sorted(parsed) == ["base.formula.toml", "top.formula.toml"]


def test_search_path_order_from_environment(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GT_TOWN", str(tmp_path / "town"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("GT_FORMULA_PATH", f"{tmp_path / 'p1'}:{tmp_path / 'p2'}")
    (tmp_path / "cfg" / "gastown" / "packs" / "pk" / "formulas").mkdir(parents=True)
    paths = search.search_paths(str(tmp_path / "rig" / ".beads"), [str(tmp_path / "x")])
    assert paths == [str(tmp_path / "x"), str(tmp_path / "town" / ".beads" / "formulas"),
                     str(tmp_path / "rig" / ".beads" / "formulas"),
                     str(tmp_path / "cfg" / "gastown" / "formulas"),
                     str(tmp_path / "p1"), str(tmp_path / "p2"),
                     str(tmp_path / "cfg" / "gastown" / "packs" / "pk" / "formulas"),
                     search.library_dir()]


def test_shipped_library_is_valid_and_complete() -> None:
    refs = {r.name: r for r in search.list_formulas([search.library_dir()])}
    for name in ("mol-engineer-in-box", "mol-quick-fix", "mol-research", "mol-agent-work",
                 "mol-patrol"):
        assert name in refs and refs[name].error is None, name
        bp, warnings = api.check_formula(refs[name].path, [search.library_dir()])
        assert warnings == [], warnings
    eib = api.compile_ref("engineer-in-box", [search.library_dir()])
    assert graph(eib) == {"design": [], "implement": ["design"], "review": ["implement"],
                          "test": ["review"], "submit": ["test"]}
    assert api.compile_ref("patrol", [search.library_dir()]).phase == "vapor"


# ------------------------------------------------------------------ composition
def test_extends_replaces_same_id_and_appends_new(tmp_path: Path) -> None:
    write(tmp_path, "base.formula.toml", """
formula = "base"
[vars.x]
default = "1"
[[steps]]
id = "a"
title = "A"
[[steps]]
id = "b"
title = "B"
needs = ["a"]
""")
    bp = compile_text(tmp_path, """
formula = "child"
extends = ["base"]
[vars.x]
default = "2"
[[steps]]
id = "a"
title = "A replaced"
[[steps]]
id = "c"
title = "C"
needs = ["b"]
""")
    assert [(s.id, s.title) for s in bp.steps] == [("a", "A replaced"), ("b", "B"), ("c", "C")]
    assert bp.vars["x"].default == "2"
    assert graph(bp) == {"a": [], "b": ["a"], "c": ["b"]}


def test_loops_count_and_range_chain_iterations(tmp_path: Path) -> None:
    bp = compile_text(tmp_path, """
formula = "loopy"
[[steps]]
id = "setup"
title = "Setup"
[[steps]]
id = "round"
needs = ["setup"]
loop = { count = 2, body = [ { id = "a", title = "A" }, { id = "b", title = "B", needs = ["a"] } ] }
[[steps]]
id = "moves"
needs = ["round"]
loop = { range = "1..{{n}}", var = "k", body = [ { id = "m", title = "Move {k} of {{n}}" } ] }
[[steps]]
id = "end"
title = "End"
needs = ["moves"]
""", {"n": "3"})
    g = graph(bp)
    assert g["round.iter1.a"] == ["setup"]
    assert g["round.iter1.b"] == ["round.iter1.a"]
    assert g["round.iter2.a"] == ["round.iter1.b"]
    assert g["moves.iter1.m"] == ["round.iter2.b"]
    assert g["moves.iter3.m"] == ["moves.iter2.m"]
    assert g["end"] == ["moves.iter3.m"]
    titles = {s.id: s.title for s in bp.all_steps()}
    assert titles["moves.iter2.m"] == "Move 2 of {{n}}"


def test_aspect_advice_and_branch(tmp_path: Path) -> None:
    write(tmp_path, "audit.formula.toml", """
formula = "audit"
type = "aspect"
[[advice]]
target = "impl*"
before = { id = "{step.id}-check", title = "Check before {step.id}" }
after = { id = "{step.id}-audit", title = "Audit {step.title}" }
""")
    bp = compile_text(tmp_path, """
formula = "wf"
[compose]
aspects = ["audit"]
branch = [ { from = "plan", steps = ["x", "y"], join = "join" } ]
[[steps]]
id = "plan"
title = "Plan"
[[steps]]
id = "implement"
title = "Implement"
needs = ["plan"]
[[steps]]
id = "x"
title = "X"
[[steps]]
id = "y"
title = "Y"
[[steps]]
id = "join"
title = "Join"
needs = ["implement"]
""")
    g = graph(bp)
    assert g["implement-check"] == ["plan"]
    assert g["implement"] == ["implement-check"]
    assert g["implement-audit"] == ["implement"]
    assert g["join"] == ["implement-audit", "x", "y"]
    assert g["x"] == ["plan"] and g["y"] == ["plan"]
    assert [s.id for s in bp.steps][:4] == ["plan", "implement-check", "implement",
                                            "implement-audit"]


def test_children_gate_waits_for_condition_compile(tmp_path: Path) -> None:
    bp = compile_text(tmp_path, """
formula = "rich"
[[steps]]
id = "spawn"
title = "Spawn"
[[steps.children]]
id = "arm-a"
title = "Arm A"
[[steps.children]]
id = "arm-b"
title = "Arm B"
needs = ["arm-a"]
[[steps]]
id = "collect"
title = "Collect"
needs = ["spawn"]
waits_for = "all-children"
gate = { type = "human", id = "approve" }
condition = "{{mode}} != fast"
""")
    spawn, collect = bp.steps
    assert [c.id for c in spawn.children] == ["arm-a", "arm-b"]
    assert collect.waits_for == "spawn"
    assert collect.gate is not None and collect.gate.type == "human"
    assert collect.condition == "{{mode}} != fast"


# ------------------------------------------------------------------ broken formulas
BROKEN = [
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\nbogus = 1\n',
     "step 'a': unknown key 'bogus'"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\non_complete = { for_each = "o" }\n',
     "step 'a': key 'on_complete' (runtime for-each expansion) is not supported"),
    ('formula = "x"\nflavour = "sour"\n[[steps]]\nid = "a"\ntitle = "A"\n',
     "unknown key 'flavour'"),
    ('formula = "x"\n[[steps]]\ntitle = "A"\n', "steps[0]: key 'id' is required"),
    ('formula = "x"\n[[steps]]\nid = "a"\n', "step 'a': key 'title' is required"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\nneeds = ["zzz"]\n',
     "step 'a': key 'needs' references unknown step 'zzz'"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\nneeds = ["b"]\n'
     '[[steps]]\nid = "b"\ntitle = "B"\nneeds = ["a"]\n', "dependency cycle: a -> b -> a"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\n[[steps]]\nid = "a"\ntitle = "B"\n',
     "duplicate step id 'a'"),
    ('formula = "x"\ntype = "ritual"\n[[steps]]\nid = "a"\ntitle = "A"\n',
     "key 'type': unknown formula type 'ritual'"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\ntype = "dance"\n',
     "step 'a': key 'type': unknown step type 'dance'"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\npriority = 9\n',
     "step 'a': key 'priority' must be an integer 0-4"),
    ('formula = "x"\n[vars.v]\nflavour = 1\n[[steps]]\nid = "a"\ntitle = "A"\n',
     "vars.v: unknown key 'flavour'"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\nloop = { until = "done", max = 3, '
     'body = [] }\n', "step 'a': loop: key 'until' (conditional loops) is not supported"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\nwaits_for = "any-children"\nneeds = []\n',
     "'any-children' is not supported"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\ncondition = "maybe"\n',
     "step 'a': key 'condition': cannot parse 'maybe'"),
    ('formula = "x"\n[[steps]]\nid = "p"\ntitle = "P"\nneeds = ["c"]\n'
     '[[steps.children]]\nid = "c"\ntitle = "C"\n', "cannot wait for its own child 'c'"),
    ('formula = "x"\nextends = ["nowhere"]\n', "extends: formula 'nowhere' not found"),
    ('formula = "x"\n[compose]\nhooks = []\n[[steps]]\nid = "a"\ntitle = "A"\n',
     "compose: key 'hooks' (label-triggered attachments) is not supported"),
    ('formula = "has space"\n[[steps]]\nid = "a"\ntitle = "A"\n', "invalid name 'has space'"),
    ('formula = "trailing\\n"\n[[steps]]\nid = "a"\ntitle = "A"\n', "invalid name 'trailing\\n'"),
    ('formula = "x"\n[[steps]]\nid = "a\\n"\ntitle = "A"\n', "invalid step id 'a\\n'"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\n[[steps]\n', "invalid TOML"),
    ('formula = "x"\n', "a workflow needs [[steps]]"),
]


@pytest.mark.parametrize("text, message", BROKEN, ids=[m for _, m in BROKEN])
def test_broken_formula_messages(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.formula.toml", text)
    with pytest.raises(FormulaError) as info:
        api.compile_ref(str(path), [str(tmp_path)])
    line = str(info.value)
    assert message in line
    assert "\n" not in line
    assert str(path) in line  # the file is named


def test_variable_checks_at_pour_time(tmp_path: Path) -> None:
    from gastown.chemistry.vars import resolve_vars

    bp = compile_text(tmp_path, """
formula = "v"
[vars.env]
enum = ["dev", "prod"]
default = "dev"
[vars.ver]
pattern = "[0-9]+[.][0-9]+"
required = true
[vars.n]
type = "int"
default = "1"
[[steps]]
id = "a"
title = "Ship {{ver}} to {{env}} x{{n}} by {{who}}"
""")
    with pytest.raises(FormulaError, match=r"missing variable\(s\): ver; who \(used by step a\)"):
        resolve_vars(bp, {})
    with pytest.raises(FormulaError, match="env='staging' is not one of dev, prod"):
        resolve_vars(bp, {"ver": "1.0", "who": "me", "env": "staging"})
    with pytest.raises(FormulaError, match="does not match pattern"):
        resolve_vars(bp, {"ver": "one", "who": "me"})
    with pytest.raises(FormulaError, match="is not an integer"):
        resolve_vars(bp, {"ver": "1.0", "who": "me", "n": "x"})
    values = resolve_vars(bp, {"ver": "1.0", "who": "me"})
    assert values == {"env": "dev", "ver": "1.0", "n": "1", "who": "me"}


def test_conditions() -> None:
    from gastown.chemistry.vars import eval_condition

    assert eval_condition("{{x}}", {"x": "yes"}) and not eval_condition("{{x}}", {"x": "false"})
    assert eval_condition("!{{x}}", {}) and not eval_condition("!{{x}}", {"x": "1"})
    assert eval_condition("{{m}} == 'fast'", {"m": "fast"})
    assert eval_condition("{{m}} != fast", {"m": "slow"})
    assert not eval_condition("{{m}} == fast", {})


def test_substitution_leaves_go_templates_and_unknowns_alone() -> None:
    from gastown.chemistry.vars import substitute

    text = "{{a}} {{ .leg.id }} {{if .x}} {{b}} {{ a }}"
    assert substitute(text, {"a": "1"}) == "1 {{ .leg.id }} {{if .x}} {{b}} 1"
    # values are data: braces and shell syntax in them are copied, never interpreted
    assert substitute("{{a}}", {"a": "$(rm -rf /) {{b}}"}) == "$(rm -rf /) {{b}}"


# ------------------------------------------------------------------ TOML writer
@settings(max_examples=200, deadline=None)
@given(st.text())
def test_toml_strings_round_trip(text: str) -> None:
    assert tomllib.loads(f"v = {toml_string(text)}\n")["v"] == text


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(min_size=1), st.one_of(st.text(), st.integers(), st.booleans(),
                                                      st.lists(st.text()))))
def test_toml_inline_tables_round_trip(data: dict[str, object]) -> None:
    assert tomllib.loads(f"v = {toml_value(data)}\n")["v"] == data


def test_written_formula_nests_children(tmp_path: Path) -> None:
    text = write_formula({"formula": "w", "version": 1}, {"v": {"required": True}},
                         [{"id": "a", "title": "A\nnot one line? no", "children": [
                             {"id": "b", "title": "B", "gate": {"type": "human"},
                              "children": [{"id": "c", "title": "C", "needs": ["b"]}]}]},
                          {"id": "d", "title": "D", "needs": ["a"]}])
    data = tomllib.loads(text)
    assert data["steps"][0]["children"][0]["children"][0]["id"] == "c"
    assert data["steps"][0]["children"][0]["gate"] == {"type": "human"}
    assert data["steps"][1]["needs"] == ["a"]
    assert data["vars"]["v"]["required"] is True
