"""What the demo agent writes for each step: the stand-in for a model's judgement.

Given a formula, its variables and a step, :func:`plan` returns the files to
write and whether to run the tests.  Every feature adds files of its own (its
module, its test, its design note), so branches built side by side rebase onto
each other without conflicts; the quick-fix edits an existing file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Plan", "plan", "slug"]


@dataclass
class Plan:
    """The edits of one step."""

    files: dict[str, str] = field(default_factory=dict)   # path -> new content
    run_tests: bool = False
    note: str = ""


def slug(text: str) -> str:
    """A Python identifier from a feature name (``word frequencies`` -> ``word_frequencies``)."""
    out = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return ("f_" + out if out[:1].isdigit() else out) or "feature"


_FEATURES: dict[str, dict[str, str]] = {
    "slugify": {
        "design": "Turn a title into a URL slug: lower case, words joined by '-', anything "
                  "that is not a letter or digit dropped. New module textkit/slugify.py; "
                  "risky cases: empty input, runs of punctuation, leading/trailing dashes.",
        "code": '''\
"""URL slugs from titles."""

import re

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text, sep="-"):
    """``"Hello, World!"`` -> ``"hello-world"``: lower case words joined by ``sep``."""
    return _NOT_WORD.sub(sep, text.lower()).strip(sep)
''',
        "test": '''\
import unittest

from textkit.slugify import slugify


class SlugifyTest(unittest.TestCase):
    def test_words_joined_by_dashes(self):
        self.assertEqual(slugify("Hello, World!"), "hello-world")

    def test_runs_of_punctuation_collapse(self):
        self.assertEqual(slugify("a -- b ... c"), "a-b-c")

    def test_empty(self):
        self.assertEqual(slugify("  !! "), "")
''',
    },
    "word_frequencies": {
        "design": "Count how often each word occurs, case-insensitively, most frequent "
                  "first and ties in order of first appearance. New module "
                  "textkit/frequencies.py built on textkit.words.words.",
        "module": "frequencies",
        "code": '''\
"""How often each word occurs."""

from .words import words


def word_frequencies(text):
    """``[(word, count), ...]``, most frequent first; ties keep first-seen order."""
    counts = {}
    for word in words(text.lower()):
        counts[word] = counts.get(word, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])
''',
        "test": '''\
import unittest

from textkit.frequencies import word_frequencies


class FrequenciesTest(unittest.TestCase):
    def test_most_frequent_first(self):
        self.assertEqual(word_frequencies("b a b"), [("b", 2), ("a", 1)])

    def test_case_is_ignored_and_ties_keep_order(self):
        self.assertEqual(word_frequencies("Cat dog cat DOG emu"),
                         [("cat", 2), ("dog", 2), ("emu", 1)])
''',
    },
}

_GENERIC_CODE = '''\
"""{title}."""


def {name}(text):
    """A first version of {title}: returns ``text`` unchanged."""
    return text
'''

_GENERIC_TEST = '''\
import unittest

from textkit.{module} import {name}


class {cls}Test(unittest.TestCase):
    def test_returns_text(self):
        self.assertEqual({name}("x"), "x")
'''

_TITLE_CASE_FIXED = '''\
"""Splitting text into words and changing their case."""

import re

_WORD = re.compile(r"[A-Za-z0-9']+")


def words(text):
    """The words of ``text``, in order (apostrophes stay inside words)."""
    return _WORD.findall(text)


def title_case(text):
    """``text`` with the first letter of every word in upper case.

    Only a letter that starts a word changes: ``str.title`` would also raise
    the letter after an apostrophe ("Don'T").
    """
    return _WORD.sub(lambda m: m.group(0)[:1].upper() + m.group(0)[1:], text)
'''

_TITLE_CASE_TEST = '''\
import unittest

from textkit.words import title_case


class TitleCaseApostropheTest(unittest.TestCase):
    def test_letter_after_apostrophe_stays_lower(self):
        self.assertEqual(title_case("don't stop"), "Don't Stop")
'''


def _feature(name: str, step: str) -> Plan:
    key = slug(name)
    spec = _FEATURES.get(key, {})
    module = spec.get("module", key)
    design_path = f"docs/design/{key}.md"
    if step == "design":
        text = spec.get("design") or f"Add {name} as textkit/{module}.py with a test."
        return Plan({design_path: f"# Design: {name}\n\n{text}\n"}, note="plan written")
    if step == "implement":
        code = spec.get("code") or _GENERIC_CODE.format(title=name.capitalize(), name=key)
        return Plan({f"textkit/{module}.py": code}, note=f"textkit/{module}.py added")
    if step == "review":
        text = spec.get("design") or f"Add {name} as textkit/{module}.py with a test."
        return Plan({design_path: f"# Design: {name}\n\n{text}\n\nReviewed: the diff does what "
                                  "the plan says; no input is trusted; nothing left over.\n"},
                    note="review notes added")
    if step == "test":
        test = spec.get("test") or _GENERIC_TEST.format(module=module, name=key,
                                                        cls=key.title().replace("_", ""))
        return Plan({f"tests/test_{module}.py": test}, run_tests=True, note="tests added")
    return Plan(run_tests=step == "submit", note="checked")


def _quick_fix(issue: str, issue_title: str, step: str) -> Plan:
    known = "title_case" in issue_title
    if not known:
        if step == "fix":
            return Plan({f"docs/fixes/{slug(issue)}.md": f"# {issue}\n\n{issue_title}\n"})
        return Plan(run_tests=step == "verify")
    if step == "reproduce":
        return Plan({"tests/test_title_case.py": _TITLE_CASE_TEST}, note="failing test added")
    if step == "fix":
        return Plan({"textkit/words.py": _TITLE_CASE_FIXED}, note="title_case fixed")
    return Plan(run_tests=step == "verify", note="checked")


def plan(formula: str, vars: dict[str, str], step: str, issue_title: str = "") -> Plan:
    """The edits for one step of ``formula`` poured with ``vars``."""
    name = formula.removeprefix("mol-")
    if name == "engineer-in-box":
        return _feature(vars.get("feature", "feature"), step)
    if name == "quick-fix":
        return _quick_fix(vars.get("issue", "issue"), issue_title, step)
    return Plan(note="nothing to write for this step")
