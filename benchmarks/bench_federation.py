"""Federation benchmark: syncing a remote town's log of 100,000 records.

Run: ``.venv/bin/python benchmarks/bench_federation.py [--records N] [--quick]``

A remote log of N ``bead`` records (each a small bead snapshot, Ed25519-signed
and hash-linked, as ``gt publish`` writes them) is written to a directory; a
fresh SQLite ledger adds it as a remote and syncs it.  The sync is timed whole:
reading, parsing, checking every hash link and every signature, merging into the
mirror and writing it in one transaction.  Verification alone is timed too, and
a second sync (nothing new: the whole log re-verified) shows the cost of staying
current.  Prints records/s for each.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from gastown import Ledger  # noqa: E402
from gastown.federation import keys, transport  # noqa: E402
from gastown.federation.log import canonical, make_record, parse_lines, verify_chain  # noqa: E402
from gastown.federation.remotes import add, sync  # noqa: E402

TOWN = "gt://alice@example.com/atown"


def write_log(directory: Path, n: int) -> tuple[str, float]:
    """A signed log of ``n`` bead records in ``directory``; (public key, seconds to sign)."""
    key = keys.load_or_create(str(directory / "gt"))
    t0 = time.perf_counter()
    lines, prev = [], ""
    for i in range(1, n + 1):
        bead_id = f"atown-{i:x}"
        body = {"id": bead_id, "rig": "_", "ledger_seq": i, "uri": f"{TOWN}/_/{bead_id}",
                "bead": {"id": bead_id, "title": f"work item {i}", "status": "open",
                         "priority": 2, "issue_type": "task", "labels": []}}
        raw = canonical(make_record(key, seq=i, prev=prev, town=TOWN, kind="bead",
                                    at="2026-01-01T00:00:00Z", body=body))
        prev = hashlib.sha256(raw).hexdigest()
        lines.append(raw)
    signing = time.perf_counter() - t0
    public = keys.public_b64(key)
    transport.write_dir(str(directory / "pub"), b"".join(ln + b"\n" for ln in lines),
                        {"owner": "alice@example.com", "name": "atown", "public_key": public})
    return public, signing


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="10,000 records")
    args = ap.parse_args()
    n = 10_000 if args.quick else args.records
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        public, signing = write_log(root, n)
        data = (root / "pub" / "log.jsonl").read_bytes()
        t0 = time.perf_counter()
        records = parse_lines(data.split(b"\n"), "bench")
        list(verify_chain(records, public, TOWN))
        verify_s = time.perf_counter() - t0
        (root / "town").mkdir()
        led = Ledger.init(str(root / "town"), prefix="ct")
        try:
            add(led, "alice", "gt://alice@example.com/atown", str(root / "pub"))
            cache = os.path.join(tmp, "fetch.git")
            t0 = time.perf_counter()
            first = sync(led, "alice", cache)
            sync_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = sync(led, "alice", cache)
            again_s = time.perf_counter() - t0
        finally:
            led.close()
    assert first["applied"] == n and again["new"] == 0
    out = {"records": n, "log_mb": round(len(data) / 1e6, 1),
           "sign_records_per_s": round(n / signing),
           "verify_records_per_s": round(n / verify_s),
           "sync_s": round(sync_s, 2), "sync_records_per_s": round(n / sync_s),
           "resync_nothing_new_s": round(again_s, 2)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
