"""Federation benchmarks: syncing a remote town's log of 100,000 records, the cost of
cross-town dependencies on ``bd ready``, and the cost of ``auto_publish`` on ``bd``.

Run: ``.venv/bin/python benchmarks/bench_federation.py [--records N] [--quick]
[--only sync|ready|autopub] [--rounds R]``

A remote log of N ``bead`` records (each a small bead snapshot, Ed25519-signed
and hash-linked, as ``gt publish`` writes them) is written to a directory; a
fresh SQLite ledger adds it as a remote and syncs it.  The sync is timed whole:
reading, parsing, checking every hash link and every signature, merging into the
mirror and writing it in one transaction.  Verification alone is timed too, and
a second sync (nothing new: the whole log re-verified) shows the cost of staying
current.  Prints records/s for each.

``ready``: a 2,000-bead SQLite ledger, ``bd ready --json``'s query and rows (in process, median
of R) with no cross-town edges and with 500 beads held by ``gt://`` edges, and a
sync-like transaction that closes 50 remote beads, freeing 500 local ones.

``autopub``: two real towns side by side, one with ``[federation] auto_publish =
true`` publishing to a bare git repository, one without; ``bd q`` (whole process,
alternating, median of R) in each, and how long after ``bd`` exits the new bead is
in the pushed log (median).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
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


def bench_sync(n: int) -> dict[str, object]:
    """Sync of ``n`` signed records from a directory, verification included."""
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
    return {"records": n, "log_mb": round(len(data) / 1e6, 1),
            "sign_records_per_s": round(n / signing),
            "verify_records_per_s": round(n / verify_s),
            "sync_s": round(sync_s, 2), "sync_records_per_s": round(n / sync_s),
            "resync_nothing_new_s": round(again_s, 2)}


def _median_ms(fn: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 2)


def bench_ready(rounds: int) -> dict[str, object]:
    """``bd ready``'s query without and with 500 beads held by cross-town edges."""
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        led = Ledger.init(tmp, prefix="rd")
        try:
            ids = [led.create(f"bead {i}")["id"] for i in range(2000)]
            out["ready_no_remote_edges_ms"] = _median_ms(led.ready_json, rounds)
            out["ready_count_before"] = len(led.ready())
            for i, bead_id in enumerate(ids[:500]):
                led.add_dep(bead_id, f"{TOWN}/_/atown-{i % 50:x}", "blocks")
            out["ready_500_held_by_remote_edges_ms"] = _median_ms(led.ready_json, rounds)
            out["ready_count_after"] = len(led.ready())
            closed = {f"{TOWN}/_/atown-{i:x}": True for i in range(50)}
            t0 = time.perf_counter()
            led.kv_set_many([], "federation.synced", {"bench": True}, remote_closed=closed)
            out["sync_tx_closing_50_freeing_500_ms"] = round(
                (time.perf_counter() - t0) * 1000, 1)
            out["ready_count_freed"] = len(led.ready())
        finally:
            led.close()
    return out


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _town(root: Path, name: str, extra: str) -> Path:
    subprocess.run([_bin("gt"), "init", name, "--owner", f"{name}.com", "--name", name,
                    "--provider", "subprocess", "--email", f"a@{name}.test"], cwd=root,
                   check=True, capture_output=True)
    town = root / name
    with open(town / "town.toml", "a", encoding="utf-8") as fh:
        fh.write(f"\n[federation]\n{extra}\n")
    return town


def _pushed(hub: Path) -> bytes:
    p = subprocess.run(["git", "--git-dir", str(hub), "show",
                        "refs/gastown/federation:log.jsonl"], capture_output=True, check=False)
    return p.stdout


def bench_autopub(rounds: int) -> dict[str, object]:
    """``bd q`` with and without auto_publish (whole process), and publish latency."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hub = root / "on.git"
        subprocess.run(["git", "init", "-q", "--bare", str(hub)], check=True)
        on = _town(root, "on", f'publish = "all"\npublish_to = ["{hub}"]\nauto_publish = true')
        off = _town(root, "off", 'publish = "all"')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BD_", "GT_"))}
        times: dict[str, list[float]] = {"on": [], "off": []}
        lag: list[float] = []
        for i in range(rounds):
            for label, town in (("off", off), ("on", on)):
                t0 = time.perf_counter()
                p = subprocess.run([_bin("bd"), "q", f"work {i}"], cwd=town, env=env,
                                   capture_output=True, text=True, check=True)
                done = time.perf_counter()
                times[label].append(done - t0)
                if label == "on":  # wait until it is pushed before the next round
                    bead_id = p.stdout.strip().encode()
                    while bead_id not in _pushed(hub):
                        if time.perf_counter() - done > 60:
                            raise SystemExit("auto-publish did not push within 60 s")
                        time.sleep(0.02)
                    lag.append(time.perf_counter() - done)
    off_ms = statistics.median(times["off"]) * 1000
    on_ms = statistics.median(times["on"]) * 1000
    return {"rounds": rounds, "bd_q_without_ms": round(off_ms, 1),
            "bd_q_with_auto_publish_ms": round(on_ms, 1), "ratio": round(on_ms / off_ms, 2),
            "pushed_after_bd_exit_median_ms": round(statistics.median(lag) * 1000),
            "pushed_after_bd_exit_max_ms": round(max(lag) * 1000)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="10,000 records")
    ap.add_argument("--only", choices=("sync", "ready", "autopub"))
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    n = 10_000 if args.quick else args.records
    out: dict[str, object] = {}
    if args.only in (None, "sync"):
        out["sync"] = bench_sync(n)
    if args.only in (None, "ready"):
        out["ready"] = bench_ready(args.rounds)
    if args.only in (None, "autopub"):
        out["autopub"] = bench_autopub(args.rounds)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
