"""The authenticated field fuzz: real requests of a provisioned, signed-on terminal —
purchase, balance, void, refund, reversal, settlement, batch upload, TC advice, echo —
with fields mutated and then MACed correctly under its TAK, so the mutations get past the
MAC check and reach the host's processing (card reading, sub-fields, PIN, risk, ledger).

The terminal remembers what the host approved (purchases it can void, refund or reverse;
settlements after which it moves to the next batch), so mutated follow-ups refer to real
originals. Amounts never fall in the sandbox's forced-response range (9,000.00–9,000.99),
so a 96 is always a host fault.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from smartpos.cards.tlv import encode_tlv
from smartpos.keys.mac import compute_mac
from smartpos.keys.pinblock import encrypt_pin_block
from smartpos.protocol import codec
from smartpos.protocol.codec import Fields, MessageError
from smartpos.protocol.messages import (
    F60,
    F61,
    NET_BATCH_UPLOAD,
    NET_BATCH_UPLOAD_END,
    NET_ECHO,
    NET_SETTLE,
    NET_TC_ADVICE,
    TYPE_BALANCE,
    TYPE_NETWORK,
    TYPE_PURCHASE,
    TYPE_REFUND,
    TYPE_VOID,
    SettlementTotals,
    TotalsGroup,
)
from smartpos.protocol.profiles import AcquirerProfile
from smartpos.protocol.spec import SPEC, SUPPORTED_FIELDS

FORCED_AMOUNTS = range(900_000, 900_100)  # the sandbox's forced response codes (test aid)
TXNS = ("purchase", "balance", "void", "refund", "reversal", "settlement", "upload", "tc", "echo")
_TXN_WEIGHTS = (30, 6, 10, 10, 10, 4, 4, 3, 3)
OPS = ("none", "drop-field", "set-field", "add-field", "mti", "byte-flip")
_OP_WEIGHTS = (15, 15, 45, 10, 5, 10)
_REQUEST_MTIS = ("0200", "0220", "0221", "0320", "0400", "0401", "0500", "0820", "0100")
_DIGITS = "0123456789"


@dataclass
class Sale:
    """A purchase the host approved: what follow-ups quote."""

    stan: str
    mmdd: str
    rrn: str
    amount: str
    batch: str


@dataclass
class Keys:
    tid: str
    mid: str
    pan: str
    pin: str
    tpk: bytes
    tak: bytes


@dataclass
class FieldFuzzer:
    rng: random.Random
    profile: AcquirerProfile
    keys: Keys
    other_pans: tuple[str, ...]
    stan: int = 100_000
    batch: int = 1
    sales: deque[Sale] = field(default_factory=lambda: deque(maxlen=64))

    # -- requests ---------------------------------------------------------------------------

    def next(self) -> tuple[str, str, Fields, bytes]:
        """A request: (transaction, mutation, the fields sent as far as they encode, the
        MACed message)."""
        txn = self.rng.choices(TXNS, _TXN_WEIGHTS)[0]
        fields = self.request(txn)
        for _ in range(5):
            op = self.rng.choices(OPS, _OP_WEIGHTS)[0]
            mutated = self._mutate(op, dict(fields))
            if op == "byte-flip":
                return txn, op, mutated, self._flipped(mutated)
            try:
                return txn, op, mutated, self.encode(mutated)
            except MessageError:
                continue  # a value the codec cannot even put on the wire: mutate again
        return txn, "none", fields, self.encode(fields)

    def encode(self, fields: Fields) -> bytes:
        tak, alg = self.keys.tak, self.profile.mac_algorithm
        return codec.encode(fields, mac=lambda d: compute_mac(alg, tak, d))

    def _next_stan(self) -> str:
        self.stan = self.stan % 999_999 + 1
        return f"{self.stan:06d}"

    def _base(self, mti: str, stan: str | None = None, mmdd: str = "1123") -> Fields:
        return {
            "t": mti,
            "11": stan or self._next_stan(),
            "12": "101010",
            "13": mmdd,
            "41": self.keys.tid,
            "42": self.keys.mid,
        }

    def _batch(self) -> str:
        return f"{self.batch:06d}"

    def _amount(self) -> str:
        amount = self.rng.choice((1, 100, self.rng.randint(1, 500_000)))
        return f"{amount:012d}"

    def _card(self, pin: bool) -> Fields:
        f: Fields = {"2": self.keys.pan, "14": "3012", "22": "012" if not pin else "011"}
        if pin:
            block = encrypt_pin_block(self.keys.tpk, self.keys.pin, self.keys.pan)
            f.update({"26": "12", "52": block.hex().upper(), "53": "2600000000000000"})
        return f

    def request(self, txn: str) -> Fields:
        sale = self.rng.choice(self.sales) if self.sales else None
        if txn == "purchase" or (sale is None and txn in ("void", "refund", "tc")):
            return {
                **self._base("0200"),
                **self._card(True),
                "3": "000000",
                "4": self._amount(),
                "25": "00",
                "49": "156",
                "60": F60(TYPE_PURCHASE, self._batch()).encode(),
            }
        if txn == "balance":
            return {
                **self._base("0200"),
                **self._card(True),
                "3": "310000",
                "25": "00",
                "49": "156",
                "60": F60(TYPE_BALANCE, self._batch()).encode(),
            }
        if txn == "void" and sale is not None:
            return {
                **self._base("0200"),
                "3": "200000",
                "4": sale.amount,
                "25": "00",
                "37": sale.rrn,
                "49": "156",
                "60": F60(TYPE_VOID, self._batch()).encode(),
                "61": F61(sale.batch, sale.stan, sale.mmdd).encode(),
            }
        if txn == "refund" and sale is not None:
            return {
                **self._base("0220"),
                **self._card(False),
                "3": "200000",
                "4": f"{self.rng.randint(1, int(sale.amount)):012d}",
                "25": "00",
                "37": sale.rrn,
                "49": "156",
                "60": F60(TYPE_REFUND, self._batch()).encode(),
                "61": F61(sale.batch, sale.stan, sale.mmdd).encode(),
            }
        if txn == "reversal":
            stan, mmdd, amount = (
                (sale.stan, sale.mmdd, sale.amount)
                if sale is not None and self.rng.random() < 0.7
                else (self._next_stan(), "1123", self._amount())
            )
            return {
                **self._base(self.rng.choice(("0400", "0401")), stan, mmdd),
                "2": self.keys.pan,
                "3": "000000",
                "4": amount,
                "25": "00",
                "39": "98",
                "49": "156",
                "60": F60(TYPE_PURCHASE, self._batch()).encode(),
            }
        if txn == "settlement":
            group = TotalsGroup(self.rng.randint(0, 10**6), self.rng.randint(0, 50))
            return {
                **self._base("0500"),
                "48": SettlementTotals(group, TotalsGroup()).encode(),
                "49": "156",
                "60": F60(TYPE_NETWORK, self._batch(), NET_SETTLE).encode(),
                "63": "01 ",
            }
        if txn == "upload":
            end = self.rng.random() < 0.5
            fields = {
                **self._base("0320"),
                "60": F60(
                    TYPE_PURCHASE, self._batch(), NET_BATCH_UPLOAD_END if end else NET_BATCH_UPLOAD
                ).encode(),
            }
            if end:
                fields["48"] = f"{self.rng.randint(0, 20):04d}"
            elif sale is not None:
                fields.update({"2": self.keys.pan, "4": sale.amount, "37": sale.rrn})
            return fields
        if txn == "tc" and sale is not None:
            icc = {"9F27": b"\x40", "9F36": b"\x00\x01", "9F26": self.rng.randbytes(8)}
            return {
                **self._base("0320"),
                "2": self.keys.pan,
                "4": sale.amount,
                "23": "001",
                "37": sale.rrn,
                "55": encode_tlv(icc).hex().upper(),
                "60": F60(TYPE_PURCHASE, self._batch(), NET_TC_ADVICE).encode(),
            }
        return {**self._base("0820"), "60": F60(TYPE_NETWORK, self._batch(), NET_ECHO).encode()}

    def learn(self, txn: str, sent: Fields, answer: Fields) -> None:
        """Remember what the host approved: sales to follow up, settled batches."""
        if answer.get("39") != "00":
            return
        if txn == "purchase" and answer.get("t") == "0210" and sent.get("3") == "000000":
            rrn, amount = answer.get("37"), answer.get("4", "")
            f60 = answer.get("60", "")
            if rrn and amount.isdigit() and len(f60) >= 8:
                self.sales.append(Sale(answer["11"], answer["13"], rrn, amount, f60[2:8]))
        if answer.get("t") in ("0510", "0330") and "48" in answer:
            self.batch = self.batch % 999_999 + 1  # settled or uploading: a new batch
            self.sales.clear()

    # -- mutations --------------------------------------------------------------------------

    def _mutate(self, op: str, fields: Fields) -> Fields:
        keys = [k for k in fields if k != "t"]
        if op == "drop-field" and keys:
            del fields[self.rng.choice(keys)]
        elif op == "set-field" and keys:
            key = self.rng.choice(keys)
            fields[key] = self._hostile(key, fields[key])
        elif op == "add-field":
            key = self.rng.choice(sorted(SUPPORTED_FIELDS - set(fields) - {"64"}))
            fields[key] = self._hostile(key, "")
        elif op == "mti":
            fields["t"] = self.rng.choice(_REQUEST_MTIS)
        return fields

    def _flipped(self, fields: Fields) -> bytes:
        """The encoded request with 1–3 bytes changed (MTI and bitmap included), then MACed
        afresh over what it became."""
        try:
            message = bytearray(self.encode(fields))
        except MessageError:
            message = bytearray(self.encode(self.request("purchase")))
        for _ in range(self.rng.randint(1, 3)):
            at = self.rng.randrange(len(message) - 8)
            message[at] = self.rng.randrange(256)
        data = bytes(message[:-8])
        return data + compute_mac(self.profile.mac_algorithm, self.keys.tak, data)

    def _digits(self, count: int) -> str:
        return "".join(self.rng.choices(_DIGITS, k=count))

    def _hostile(self, key: str, value: str) -> str:
        rng = self.rng
        special: dict[str, Callable[[], str]] = {
            "2": lambda: rng.choice(
                (*self.other_pans, self._digits(rng.randint(12, 19)), "0" * 16, self.keys.pan)
            ),
            "3": lambda: rng.choice(("000000", "200000", "310000", "999999", self._digits(6))),
            "4": self._hostile_amount,
            "11": lambda: rng.choice((f"{rng.randint(100_000, self.stan):06d}", "000000")),
            "13": lambda: rng.choice(("1123", "1399", "0000", "0229", self._digits(4))),
            "14": lambda: rng.choice(("3013", "3000", "0099", "2001", "9912", self._digits(4))),
            "22": lambda: rng.choice(("011", "012", "021", "051", "071", "801", "991", "000")),
            "23": lambda: self._digits(3),
            "35": self._hostile_track2,
            "37": lambda: rng.choice((*(s.rrn for s in self.sales), "000000000000", "ZZZZ")),
            "39": lambda: rng.choice(("98", "00", "A0", "")),
            "41": lambda: rng.choice(("B0000000", "B0000001", "ZZZZZZZZ", "")),
            "42": lambda: rng.choice(("898310048169999", "0" * 15)),
            "48": lambda: self._digits(rng.choice((0, 4, 6, 61, 62, 63, 100))),
            "49": lambda: rng.choice(("156", "840", "000", "ABC")),
            "52": lambda: rng.randbytes(8).hex().upper(),
            "54": lambda: "".join(map(chr, rng.choices(range(32, 127), k=rng.randint(0, 20)))),
            "55": self._hostile_icc,
            "60": lambda: rng.choice(
                (self._digits(rng.randint(0, 17)), "22" + self._batch(), "2" + "A" * 7)
            ),
            "61": lambda: self._digits(rng.choice((0, 6, 11, 12, 16, 29))),
        }
        if key in special:
            return special[key]()
        spec = SPEC[key]
        size = spec["max_len"] if not spec["len_type"] else rng.randint(0, spec["max_len"])
        if spec.get("len_count") == "nibbles":
            return self._digits(size) if rng.random() < 0.8 else "AB" * (size // 2)
        if spec["data_enc"] == "b":
            return rng.randbytes(size).hex().upper()
        return "".join(map(chr, rng.choices(range(32, 127), k=size)))

    def _hostile_amount(self) -> str:
        amount = self.rng.choice((0, 1, 10**12 - 1, 5_000_001, self.rng.randint(1, 10**9)))
        if amount in FORCED_AMOUNTS:
            amount = 1
        return f"{amount:012d}"

    def _hostile_track2(self) -> str:
        pan = self.rng.choice((self.keys.pan, *self.other_pans))
        return self.rng.choice(
            (
                f"{pan}D3012101{self._digits(10)}",
                f"{pan}D3013101",
                f"{pan}D3012201",  # chip card swiped
                f"{pan}D2001101",  # expired
                f"{pan[:12]}D3012101",
                f"{pan}D301",
                f"{pan}{self._digits(8)}",
            )
        )

    def _hostile_icc(self) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return rng.randbytes(rng.randint(0, 120)).hex().upper()
        tags = {"9F26": rng.randbytes(8), "9F36": rng.randbytes(2), "9F27": rng.randbytes(1)}
        if rng.random() < 0.5:
            tags["9F02"] = rng.randbytes(6)
        return encode_tlv(tags).hex().upper()
