#!/usr/bin/env python3
"""An agent that only listens: every line typed into its session is appended, verbatim,
to the file named by its first argument (the nudge and injection tests read it back)."""

from __future__ import annotations

import sys


def main() -> int:
    path = sys.argv[1]
    print("ready>", flush=True)
    for line in sys.stdin:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
        print("ready>", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
