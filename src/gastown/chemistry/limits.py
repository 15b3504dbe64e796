"""Bounds on everything a formula (untrusted input) can make us build or compute.

Every dimension is checked *before* the work it bounds: a loop's iteration count
before its list exists, an expansion's size before it is copied, a range
expression's operands before they are multiplied.  Exceeding a bound is a
:class:`~gastown.errors.FormulaError` naming the key, the step and the file.
"""

from __future__ import annotations

from ..errors import FormulaError

__all__ = ["MAX_STEPS", "MAX_FILE_BYTES", "MAX_NESTING", "MAX_EXTENDS_DEPTH", "MAX_FORMULAS",
           "MAX_EXPAND_DEPTH", "MAX_RULES", "MAX_VALUE_CHARS", "MAX_TEXT_CHARS",
           "MAX_RANGE_CHARS", "MAX_RANGE_BITS", "MAX_PATTERN_CHARS", "Budget"]

#: no formula compiles to more steps than this
MAX_STEPS = 20_000
#: a formula file larger than this is refused before it is parsed
MAX_FILE_BYTES = 4 << 20
#: children and loop bodies nest at most this deep
MAX_NESTING = 12
#: tables and arrays in a formula file nest at most this deep (metadata included)
MAX_DATA_DEPTH = 100
#: extends chains at most this deep
MAX_EXTENDS_DEPTH = 8
#: distinct formulas one compile may load (extends, expansions, aspects)
MAX_FORMULAS = 256
#: expansions inside expansions at most this deep
MAX_EXPAND_DEPTH = 8
#: compose/advice rules per formula (each is a pass over all steps)
MAX_RULES = 256
#: a variable's value (``--var k=v`` or a default)
MAX_VALUE_CHARS = 65_536
#: one text field after substitution
MAX_TEXT_CHARS = 1 << 20
#: all text of one pour or cook after substitution
MAX_TOTAL_TEXT_CHARS = 64 << 20
#: a loop range expression after substitution
MAX_RANGE_CHARS = 200
#: every integer in a range expression (operands and results) fits in this many bits
MAX_RANGE_BITS = 62
#: a variable's ``pattern``
MAX_PATTERN_CHARS = 512


class Budget:
    """What a compile has produced so far: steps (refused past :data:`MAX_STEPS`) and new
    text (refused past :data:`MAX_TOTAL_TEXT_CHARS`)."""

    def __init__(self, where: str, steps: int = 0) -> None:
        self.where = where
        self.steps = steps
        self.formulas: set[str] = set()
        #: characters of new text (filled-in placeholders) built so far
        self.text = 0

    def charge(self, grow: int, what: str) -> None:
        """Account for ``grow`` more steps made by ``what`` (before making them)."""
        if self.steps + grow > MAX_STEPS:
            raise FormulaError(f"{self.where}: {what}: the formula would compile to more "
                               f"than {MAX_STEPS} steps")
        self.steps += grow

    def loaded(self, name: str, what: str) -> None:
        """Count one more distinct formula loaded for this compile."""
        self.formulas.add(name)
        if len(self.formulas) > MAX_FORMULAS:
            raise FormulaError(f"{self.where}: {what}: more than {MAX_FORMULAS} formulas "
                               "involved")

    def built(self, text: str, original: str, what: str) -> str:
        """Account for ``text`` made from ``original`` by ``what`` (nothing when unchanged)."""
        if text is not original:
            self.text += len(text)
            if self.text > MAX_TOTAL_TEXT_CHARS:
                raise FormulaError(f"{self.where}: {what}: the steps' text would be longer "
                                   f"than {MAX_TOTAL_TEXT_CHARS} characters")
        return text
