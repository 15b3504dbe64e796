"""Run every benchmark script in this folder, one after another (./run bench)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    rc = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        rc |= subprocess.run([sys.executable, str(script), *sys.argv[1:]]).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
