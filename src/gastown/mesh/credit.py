"""Credit between towns: delegation receipts, a double-entry ledger, netting, settlement.

The flow (each step a signed event; see :mod:`.kinds`):

1. the requester signs an OFFER to the provider town (``p`` = its key, ``bid`` units);
2. the provider decides with :func:`decide`: it refuses when the requester's balance
   with it plus the bid would pass the limit trust allows,
   ``limit = min + (max - min) * trust**2``; it signs a RESULT (``done``/``refused``);
3. the requester signs an ACCEPTANCE of a done result: *that* creates the debt, on
   both sides, when :func:`apply` meets it among the held events;
4. :func:`settle` nets what is owed with a peer and pays it through a
   :class:`SettlementBackend`; the payer signs a RECEIPT.

Entries are integers (units) in the ledger's key/value store, ``mesh.cr.tx.*``; each
transaction's postings sum to zero.  Accounts: ``receivable:T`` (T owes us),
``payable:T`` (we owe T), ``revenue``, ``expense``, ``settlement``.  A transaction
made from an event is keyed by that event's id, so applying events twice changes
nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConflictError, UsageError
from ..ledger.core import Ledger
from . import kinds, store
from .events import Event, sign
from .trust import town_of_key

__all__ = ["limit_for", "balances", "balance_with", "history", "offer", "decide", "result",
           "accept", "apply", "settle", "SettlementBackend", "SimulatedSettlement",
           "DEFAULT_MIN", "DEFAULT_MAX"]

TX = "mesh.cr.tx."
DEFAULT_MIN, DEFAULT_MAX = 0, 1000
MAX_BID = 10**12


def limit_for(trust: float, lo: int = DEFAULT_MIN, hi: int = DEFAULT_MAX) -> int:
    """The credit a requester of ``trust`` may owe: ``lo + (hi - lo) * trust**2``."""
    t = min(1.0, max(0.0, trust))
    return int(lo + (hi - lo) * t * t)


def _postings_ok(postings: list[tuple[str, int]]) -> None:
    if sum(a for _n, a in postings) != 0:
        raise ConflictError("credit: a transaction's postings must sum to zero")


def _tx(ref: str, at: int, memo: str, postings: list[tuple[str, int]], peer: str
        ) -> tuple[str, str]:
    _postings_ok(postings)
    return (f"{TX}{at:012d}.{ref}",
            json.dumps({"ref": ref, "at": at, "memo": memo, "peer": peer,
                        "postings": [[n, a] for n, a in postings]}, sort_keys=True))


def history(ledger: Ledger, peer: str | None = None) -> list[dict[str, Any]]:
    """Transactions, oldest first (those with ``peer`` only, when given)."""
    txs = [json.loads(v) for _k, v in ledger.kv_scan(TX)]
    return [t for t in txs if peer is None or t["peer"] == peer]


def balances(ledger: Ledger) -> dict[str, int]:
    """Every account's balance (they sum to zero)."""
    out: dict[str, int] = {}
    for t in history(ledger):
        for name, amount in t["postings"]:
            out[name] = out.get(name, 0) + int(amount)
    return out


def balance_with(ledger: Ledger, peer: str) -> int:
    """What ``peer`` (a town key) owes us, less what we owe it."""
    b = balances(ledger)
    return b.get(f"receivable:{peer}", 0) + b.get(f"payable:{peer}", 0)


def offer(secret: bytes, town: str, provider_key: str, item: str, bid: int,
          title: str = "") -> Event:
    """A signed OFFER of work ``item`` (a ``gt://`` address) to the provider town."""
    if isinstance(bid, bool) or not 0 < bid <= MAX_BID:
        raise UsageError(f"bid {bid}: a whole number of units in 1..{MAX_BID}")
    return sign(secret, kinds.OFFER, json.dumps({"title": title, "item": item}),
                [["gt", town], ["p", provider_key], ["bid", str(bid)], ["item", item]])


def _bid(ev: Event) -> int:
    v = ev.tag("bid") or ev.tag("amount") or ""
    if not v.isdigit() or not 0 < int(v) <= MAX_BID:
        raise UsageError(f"event {ev.id[:16]}…: its bid {v!r} is not 1..{MAX_BID} units")
    return int(v)


def decide(ledger: Ledger, me_key: str, off: Event, trust: float, lo: int = DEFAULT_MIN,
           hi: int = DEFAULT_MAX) -> tuple[bool, str]:
    """Take the offer? ``(False, why)`` when it would pass the requester's limit."""
    towns = town_of_key(ledger)
    req = towns.get(off.pubkey, off.pubkey)
    owed, bid, lim = balance_with(ledger, req), _bid(off), limit_for(trust, lo, hi)
    if owed + bid > lim:
        return False, (f"credit limit: {req[:16]}… owes {owed} and bids {bid}; its limit at "
                       f"trust {trust:.2f} is {lim}")
    return True, f"within the limit ({owed} + {bid} <= {lim})"


def result(secret: bytes, town: str, off: Event, done: bool, note: str = "") -> Event:
    """The provider's signed RESULT of an offer."""
    return sign(secret, kinds.RESULT, json.dumps({"note": note}),
                [["gt", town], ["p", off.pubkey], ["e", off.id], ["offer", off.id],
                 ["status", "done" if done else "refused"], ["bid", str(_bid(off))]])


def accept(secret: bytes, town: str, off: Event, res: Event) -> Event:
    """The requester's signed ACCEPTANCE of a done result: the receipt that makes a debt."""
    if res.tag("status") != "done" or res.tag("offer") != off.id:
        raise ConflictError(f"result {res.id[:16]}… is not a done result of offer "
                            f"{off.id[:16]}…")
    return sign(secret, kinds.ACCEPTANCE, "",
                [["gt", town], ["p", res.pubkey], ["e", res.id], ["offer", off.id],
                 ["amount", str(_bid(off))]])


def apply(ledger: Ledger, me_key: str) -> int:
    """Post a transaction for every held acceptance that involves this town (once)."""
    towns = town_of_key(ledger)
    done = {t["ref"] for t in history(ledger)}
    offers = {e.id: e for e in store.events(ledger, kinds.OFFER)}
    items = []
    for acc in store.events(ledger, kinds.ACCEPTANCE):
        off = offers.get(acc.tag("offer") or "")
        if acc.id in done or off is None:
            continue
        req = towns.get(acc.pubkey)
        if req is None or req != towns.get(off.pubkey):
            continue  # only the offer's own town can accept its result
        prov = towns.get(acc.tag("p") or "", acc.tag("p") or "")
        amount = _bid(off)
        if prov == me_key:
            items.append(_tx(acc.id, acc.created_at, f"work accepted by {req[:16]}…",
                             [(f"receivable:{req}", amount), ("revenue", -amount)], req))
        elif req == me_key:
            items.append(_tx(acc.id, acc.created_at, f"work by {prov[:16]}… accepted",
                             [("expense", amount), (f"payable:{prov}", -amount)], prov))
    if items:
        ledger.kv_set_many(items, "mesh.credit", {"transactions": len(items)})
    return len(items)


class SettlementBackend(Protocol):
    """Moves value between towns (an ILP/STREAM connector later; a simulator now)."""

    def pay(self, payer: str, payee: str, amount: int, memo: str) -> str:
        """Pay ``amount`` units; a receipt reference (raises when it cannot)."""


@dataclass
class SimulatedSettlement:
    """A settlement backend that records payments in memory (and can be told to fail)."""

    fail: bool = False
    payments: list[dict[str, Any]] = field(default_factory=list)

    def pay(self, payer: str, payee: str, amount: int, memo: str) -> str:
        """Record the payment; its reference."""
        if self.fail:
            raise ConflictError("settlement backend refused the payment (simulated)")
        ref = f"sim-{len(self.payments) + 1}"
        self.payments.append({"payer": payer, "payee": payee, "amount": amount,
                              "memo": memo, "ref": ref})
        return ref


def settle(ledger: Ledger, me_key: str, secret: bytes, town: str, peer: str,
           backend: SettlementBackend, due: int | None = None) -> Event | None:
    """Net what this town owes ``peer`` and pay it; the signed RECEIPT (None: nothing owed).

    Only the debtor settles (the creditor waits for the receipt); ``due`` (epoch
    seconds) marks the receipt on time or late.
    """
    net = balance_with(ledger, peer)
    if net >= 0:
        return None
    amount = -net
    ref = backend.pay(me_key, peer, amount, f"net settlement with {peer[:16]}…")
    at = int(time.time())
    on_time = "1" if due is None or at <= due else "0"
    receipt = sign(secret, kinds.RECEIPT, json.dumps({"backend_ref": ref}),
                   [["gt", town], ["p", peer], ["amount", str(amount)], ["on_time", on_time]],
                   at)
    ledger.kv_set_many([_tx(receipt.id, at, f"settled {ref}",
                            [(f"payable:{peer}", amount), ("settlement", -amount)], peer)],
                       "mesh.settled", {"amount": amount})
    return receipt


def apply_receipts(ledger: Ledger, me_key: str) -> int:
    """Post the receipts of debtors who paid this town (once each)."""
    towns = town_of_key(ledger)
    done = {t["ref"] for t in history(ledger)}
    items = []
    for r in store.events(ledger, kinds.RECEIPT):
        payer = towns.get(r.pubkey)
        if r.id in done or payer is None or payer == me_key or r.tag("p") != me_key:
            continue
        amount = _bid(r)
        items.append(_tx(r.id, r.created_at, "settlement received",
                         [("settlement", amount), (f"receivable:{payer}", -amount)], payer))
    if items:
        ledger.kv_set_many(items, "mesh.credit", {"transactions": len(items)})
    return len(items)
