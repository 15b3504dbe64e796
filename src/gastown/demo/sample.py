"""The sample project of ``gt demo``: ``textkit``, a few small text helpers.

It has a working test suite and one known defect (``title_case`` capitalises
the letter after an apostrophe), which the demo's quick-fix repairs.
"""

from __future__ import annotations

import os
import subprocess

__all__ = ["FILES", "TEST_ARGS", "BUG_TITLE", "write_sample"]

#: how the sample's tests run (after the interpreter): the merge queue's test command
TEST_ARGS = ["-m", "unittest", "discover", "-s", "tests", "-t", ".", "-q"]

BUG_TITLE = "title_case capitalises the letter after an apostrophe (\"Don'T\")"

FILES: dict[str, str] = {
    # what running the tests leaves behind never belongs in a commit
    ".gitignore": "__pycache__/\n*.py[cod]\n",
    "README.md": """\
# textkit

Small, dependency-free text helpers. This repository is created by `gt demo`;
the agents of the demo town add features to it and fix a bug, and the town's
merge queue lands their branches here.

Run the tests with `python3 -m unittest discover -s tests -t .`.
""",
    "textkit/__init__.py": '''\
"""textkit: small text helpers."""

from .words import title_case, words

__all__ = ["title_case", "words"]
''',
    "textkit/words.py": '''\
"""Splitting text into words and changing their case."""

import re

_WORD = re.compile(r"[A-Za-z0-9']+")


def words(text):
    """The words of ``text``, in order (apostrophes stay inside words)."""
    return _WORD.findall(text)


def title_case(text):
    """``text`` with the first letter of every word in upper case."""
    return text.title()
''',
    "tests/__init__.py": "",
    "tests/test_words.py": '''\
import unittest

from textkit.words import title_case, words


class WordsTest(unittest.TestCase):
    def test_words_splits_on_spaces_and_punctuation(self):
        self.assertEqual(words("one, two  three."), ["one", "two", "three"])

    def test_words_keeps_apostrophes(self):
        self.assertEqual(words("it's here"), ["it's", "here"])

    def test_title_case_plain_words(self):
        self.assertEqual(title_case("hello world"), "Hello World")


if __name__ == "__main__":
    unittest.main()
''',
}


def write_sample(path: str) -> str:
    """Create the sample repository at ``path`` (one commit on ``main``); returns ``path``.

    It accepts pushes to its checked-out ``main`` (``updateInstead``), so the
    town's merge queue can land work straight into it and its files show it.
    """
    os.makedirs(path)
    for rel, text in FILES.items():
        full = os.path.join(path, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as fh:
            fh.write(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GT_", "BD_"))}
    env.update(GIT_AUTHOR_NAME="textkit maintainer", GIT_AUTHOR_EMAIL="maintainer@textkit.test",
               GIT_COMMITTER_NAME="textkit maintainer",
               GIT_COMMITTER_EMAIL="maintainer@textkit.test")
    for argv in (["init", "-q", "-b", "main"], ["config", "receive.denyCurrentBranch",
                                               "updateInstead"],
                 ["add", "-A"], ["commit", "-q", "-m", "textkit: words and title_case"]):
        subprocess.run(["git", *argv], cwd=path, env=env, check=True, capture_output=True)
    return path
