"""Print annotated hex dumps of one example of each terminal⇄host message, as Markdown.

Usage (from the repository root)::

    .venv/bin/python scripts/protocol_dumps.py > /tmp/dumps.md

The output is pasted into docs/protocol.md ("Annotated examples"). Every value is fixed (test
keys, test card, clock), so running the script again gives the same bytes. Messages are built
with :func:`smartpos.protocol.codec.encode` and framed with :mod:`smartpos.protocol.framing`,
the same code the terminal and the sandbox host use; MACs, PIN blocks and field 62 are computed
with psec directly from the published algorithms, so the dumps double as test vectors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import iso8583
from cryptography.utils import CryptographyDeprecationWarning
from psec.des import apply_key_variant, encrypt_tdes_ecb, generate_kcv
from psec.mac import generate_retail_mac
from psec.pinblock import encode_pinblock_iso_0

from smartpos.cards.emv import SimulatedChip, TerminalData, arpc_tag91, read_icc_data
from smartpos.cards.tlv import decode_tlv, encode_tlv
from smartpos.protocol.codec import MAC_LEN, Fields, encode
from smartpos.protocol.codes import describe
from smartpos.protocol.framing import Frame, Tpdu, encode_frame
from smartpos.protocol.messages import (
    ENTRY_NAMES,
    F60,
    F61,
    SettlementTotals,
    SettleResult,
    TotalsGroup,
    parse_f54,
)
from smartpos.protocol.spec import SPEC

# psec warns on every two-key TDES use; the standards shown here mandate it.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)

# -- fixed example values (test material only; none of it protects anything) ---------------

TID = "12345678"
MID = "898310048160001"
HEADER = bytes.fromhex("603100000000")
TERMINAL_NII, HOST_NII = 0x0000, 0x0001
TMK = bytes.fromhex("89ABCDEF01234567FEDCBA9876543210")
TPK = bytes.fromhex("1C587F1C13924FEF0123ABCD4567EF89")
TAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIN = "123456"
PAN_BODY = "621234000000000"  # UnionPay debit test card, without its check digit
EXPIRY = "3012"  # YYMM
SERVICE_CODE = "101"
BATCH = "000001"
DATE = "0315"  # MMDD of the examples
CURRENCY = "156"  # CNY
ACQUIRER_ID = "00049999"
OPERATOR = "01 "

MTI_NAMES = {
    "0200": "financial transaction request",
    "0210": "financial transaction response",
    "0220": "financial advice (refund)",
    "0230": "financial advice response",
    "0320": "batch upload or TC advice",
    "0330": "batch upload advice response",
    "0400": "reversal request (0401 = repeat)",
    "0410": "reversal response",
    "0500": "settlement request",
    "0510": "settlement response",
    "0800": "network management request",
    "0810": "network management response",
    "0820": "network management request (echo test)",
    "0830": "network management response (echo test)",
}
PROC_NAMES = {
    "000000": "purchase (goods and services)",
    "200000": "void / refund (return)",
    "310000": "balance inquiry",
}
TYPE_NAMES = {
    "00": "network management",
    "01": "balance inquiry",
    "22": "purchase",
    "23": "void",
    "25": "refund",
}
NET_NAMES = {
    "000": "none",
    "003": "sign-on, double-length TDES keys",
    "301": "echo test",
    "201": "settlement / batch upload",
    "202": "batch upload end",
    "203": "TC advice",
}
CONDITION_NAMES = {"00": "normal presentment"}
REVERSAL_REASONS = {"98": "no response", "A0": "MAC failure", "06": "other"}


def luhn_check_digit(body: str) -> str:
    """The Luhn digit that makes ``body + digit`` valid (double every second digit from the
    right, starting with the rightmost digit of ``body``)."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


PAN = PAN_BODY + luhn_check_digit(PAN_BODY)
TRACK2 = f"{PAN}D{EXPIRY}{SERVICE_CODE}0000000000"


def x919_mac(data: bytes) -> bytes:
    """ANSI X9.19 retail MAC (ISO 9797-1 algorithm 3, zero padding) under the TAK."""
    return generate_retail_mac(TAK[:8], TAK[8:], data, 1, MAC_LEN)


SIGNON_KEY = apply_key_variant(TMK, 8)  # the TMK with key variant 8 (protocol.md §7.2)


def signon_mac(data: bytes) -> bytes:
    """X9.19 under the TMK's sign-on variant: the MAC of a sign-on request."""
    return generate_retail_mac(SIGNON_KEY[:8], SIGNON_KEY[8:], data, 1, MAC_LEN)


def pin_block() -> str:
    return encrypt_tdes_ecb(TPK, encode_pinblock_iso_0(PIN, PAN)).hex().upper()


def field62() -> str:
    kcv_len = 4
    data = (
        encrypt_tdes_ecb(TMK, TPK)
        + generate_kcv(TPK, kcv_len)
        + encrypt_tdes_ecb(TMK, TAK)
        + generate_kcv(TAK, kcv_len)
    )
    return data.hex().upper()


# -- the example messages ------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    title: str
    note: str
    fields: Fields
    maced: bool
    response: bool = False
    signon_mac: bool = False  # MACed under the TMK's sign-on variant, not the TAK


def _base(mti: str, stan: str, time: str = "143015") -> Fields:
    return {"t": mti, "11": stan, "12": time, "13": DATE, "41": TID, "42": MID}


def _answer(request: Fields, rc: str, drop: tuple[str, ...] = (), **extra: str) -> Fields:
    """A response: the echoed request fields (never 2, 14, 22, 26, 35, 52, 53, 55, 61, 63,
    64), 39 and what the host adds."""
    never = {"2", "14", "22", "26", "35", "52", "53", "55", "61", "63", "64", *drop}
    mti = request["t"]
    resp = {k: v for k, v in request.items() if k not in never}
    resp["t"] = mti[:2] + str(int(mti[2]) + 1) + "0"
    resp["39"] = rc
    resp.update(extra)
    return resp


def examples() -> list[Example]:
    card_present = {
        "35": TRACK2,
        "22": "021",
        "25": "00",
        "26": "12",
        "52": pin_block(),
        "53": "2600000000000000",
    }
    sign_on = {
        **_base("0800", "000001", "080000"),
        "60": F60("00", BATCH, "003").encode(),
        "63": OPERATOR,
    }
    echo = {**_base("0820", "000002", "080500"), "60": F60("00", BATCH, "301").encode()}
    balance = {
        **_base("0200", "000003", "090000"),
        "3": "310000",
        **card_present,
        "49": CURRENCY,
        "60": F60("01", BATCH).encode(),
    }
    purchase = {
        **_base("0200", "000004"),
        "3": "000000",
        "4": "000000012345",
        **card_present,
        "49": CURRENCY,
        "60": F60("22", BATCH).encode(),
    }
    void = {
        **_base("0200", "000005", "143500"),
        "3": "200000",
        "4": "000000012345",
        "25": "00",
        "37": "250300000004",
        "38": "483920",
        "49": CURRENCY,
        "60": F60("23", BATCH).encode(),
        "61": F61(BATCH, "000004", DATE).encode(),
    }
    refund = {
        **_base("0220", "000006", "160000"),
        "3": "200000",
        "4": "000000005000",
        "35": TRACK2,
        "22": "022",
        "25": "00",
        "37": "250300000002",
        "49": CURRENCY,
        "60": F60("25", BATCH).encode(),
        "61": F61(BATCH, "000002", "0314").encode(),
    }
    reversal = {
        "t": "0400",
        "3": "000000",
        "4": "000000008800",
        "11": "000007",
        "13": DATE,
        "22": "021",
        "25": "00",
        "39": "98",
        "41": TID,
        "42": MID,
        "49": CURRENCY,
        "60": F60("22", BATCH).encode(),
    }
    totals = SettlementTotals(TotalsGroup(20000, 1, 5000, 1), TotalsGroup())
    settle = {
        **_base("0500", "000008", "220000"),
        "48": totals.encode(),
        "49": CURRENCY,
        "60": F60("00", BATCH, "201").encode(),
        "63": OPERATOR,
    }
    upload = {
        "t": "0320",
        "4": "000000020000",
        "11": "000002",
        "13": "0314",
        "37": "250300000002",
        "41": TID,
        "42": MID,
        "60": F60("22", BATCH, "201").encode(),
    }
    # The card's TC for the 200.00 purchase (ATC 1), as the simulated chip makes it from the
    # sandbox's public test issuer keys: ARQC, the host's approving tag 91, second GEN AC.
    terminal_data = TerminalData(20000, date="26" + DATE, unpredictable=bytes.fromhex("1A2B3C4D"))
    arqc = SimulatedChip(PAN, "01").generate_arqc(terminal_data, atc=1)
    tag91 = decode_tlv(arpc_tag91(read_icc_data(encode_tlv(arqc).hex()), PAN, "01", True))["91"]
    tc = SimulatedChip(PAN, "01").complete(arqc, tag91, approved=True)
    tc_advice = {
        **_base("0320", "000010", "215900"),
        "2": PAN,
        "4": "000000020000",
        "23": "001",
        "37": "250300000002",
        "55": encode_tlv(tc).hex().upper(),
        "60": F60("22", BATCH, "203").encode(),
    }
    upload_end = {
        **_base("0320", "000009", "220100"),
        "48": "0002",
        "60": F60("00", BATCH, "202").encode(),
    }
    return [
        Example(
            "0800 sign-on request",
            "Operator 01 signs on; asks for new working keys. MACed under the TMK's "
            "sign-on variant, which proves the terminal holds the TMK.",
            sign_on,
            maced=False,
            signon_mac=True,
        ),
        Example(
            "0810 sign-on response",
            "Working keys in field 62 (TPK and TAK under the TMK, each with its KCV).",
            _answer(sign_on, "00", **{"32": ACQUIRER_ID, "37": "250300000001", "62": field62()}),
            maced=False,
            response=True,
        ),
        Example("0820 echo test request", "Link check; no MAC.", echo, maced=False),
        Example("0830 echo test response", "", _answer(echo, "00"), maced=False, response=True),
        Example("0200 balance inquiry request", "Swiped card, PIN entered.", balance, maced=True),
        Example(
            "0210 balance inquiry response",
            "Available balance in field 54.",
            _answer(
                balance,
                "00",
                **{
                    "15": DATE,
                    "32": ACQUIRER_ID,
                    "37": "250300000003",
                    "54": "1001156C000010000000",
                },
            ),
            maced=True,
            response=True,
        ),
        Example(
            "0200 purchase request", "123.45 CNY, swiped card, PIN entered.", purchase, maced=True
        ),
        Example(
            "0210 purchase response",
            "Approved: RRN in 37, authorization code in 38.",
            _answer(
                purchase,
                "00",
                **{"15": DATE, "32": ACQUIRER_ID, "37": "250300000004", "38": "483920"},
            ),
            maced=True,
            response=True,
        ),
        Example(
            "0200 void request",
            "Voids the purchase above (trace 000004, RRN 250300000004, auth code "
            "483920) in the same batch; the void has its own trace 000005.",
            void,
            maced=True,
        ),
        Example(
            "0220 refund request",
            "Partial refund of 50.00 of an earlier 200.00 purchase (trace 000002 of 03-14, "
            "RRN 250300000002); the card is presented again, no PIN.",
            refund,
            maced=True,
        ),
        Example(
            "0400 reversal request",
            "Reverses a purchase of 88.00 (trace 000007) that got no answer in time "
            "(39 = 98). Field 11 is the original trace. A repeat goes out as 0401 with "
            "otherwise identical content.",
            reversal,
            maced=True,
        ),
        Example(
            "0500 settlement request",
            "Terminal totals of batch 000001: 1 sale of 200.00 and 1 refund of 50.00 "
            "(the voided and the reversed purchases do not count), no foreign cards.",
            settle,
            maced=True,
        ),
        Example(
            "0510 settlement response",
            "Host totals agree: result 1 (balanced).",
            _answer(settle, "00", **{"15": DATE, "48": totals.encode(SettleResult.BALANCED)}),
            maced=True,
            response=True,
        ),
        Example(
            "0320 batch upload advice",
            "Sent after a 0510 with result 2: one advice per transaction the terminal holds as "
            "approved (here the 200.00 purchase; 11, 13, 37 are the original's).",
            upload,
            maced=True,
        ),
        Example(
            "0320 TC advice",
            "Before settling: the TC the inserted chip card gave for the 200.00 purchase "
            "(second GENERATE AC after the host's tag 91), with the PAN, the sale's RRN, a "
            "new STAN; 60.3 = 203.",
            tc_advice,
            maced=True,
        ),
        Example(
            "0330 TC advice response",
            "The TC verifies for that card, amount and counter: kept on the sale.",
            _answer(tc_advice, "00"),
            maced=True,
            response=True,
        ),
        Example(
            "0320 batch upload end",
            "Closes the upload: 48 = 0002 advices were sent.",
            upload_end,
            maced=True,
        ),
        Example(
            "0330 batch upload end response",
            "Final totals, result 1.",
            _answer(upload_end, "00", **{"48": totals.encode(SettleResult.BALANCED)}),
            maced=True,
            response=True,
        ),
    ]


# -- annotation ----------------------------------------------------------------------------


def _amount(value: str) -> str:
    minor = int(value)
    return f"{minor // 100}.{minor % 100:02d} (minor units: {minor})"


def _entry(value: str) -> str:
    pan_entry = ENTRY_NAMES.get(value[:2], "unknown")
    pin = {"1": "PIN entered", "2": "no PIN entered"}.get(value[2], "?")
    return f"{pan_entry}, {pin}"


def _f60(value: str) -> list[str]:
    f60 = F60.decode(value)
    return [
        f"60.1 type {f60.type_code} ({TYPE_NAMES.get(f60.type_code, '?')})",
        f"60.2 batch {f60.batch_no}",
        f"60.3 network code {f60.net_code} ({NET_NAMES.get(f60.net_code, '?')})",
    ]


_EMV_TAGS = {
    "9F26": "application cryptogram",
    "9F27": "cryptogram information data",
    "9F10": "issuer application data",
    "9F37": "unpredictable number",
    "9F36": "ATC",
    "95": "TVR",
    "9A": "transaction date",
    "9C": "transaction type",
    "9F02": "amount, authorised",
    "9F03": "amount, other",
    "5F2A": "currency",
    "82": "AIP",
    "9F1A": "terminal country",
    "91": "issuer authentication data",
    "84": "AID (dedicated file name)",
}


def _f55(value: str) -> list[str]:
    lines = ["EMV TLV data:"]
    for tag, data in decode_tlv(bytes.fromhex(value)).items():
        lines.append(f"  {tag} {_EMV_TAGS.get(tag, '?')}: {data.hex().upper()}")
    return lines


def _f61(value: str) -> list[str]:
    f61 = F61.decode(value)
    return [
        f"61.1 original batch {f61.batch_no}",
        f"61.2 original trace {f61.stan}",
        f"61.3 original date {f61.date_mmdd}",
    ]


def _f48(value: str, fields: Fields) -> list[str]:
    if len(value) == 4:
        return [f"{int(value)} batch upload advices sent"]
    totals, result = SettlementTotals.decode(value)
    lines = []
    for name, group in (
        ("domestic (UnionPay)", totals.domestic),
        ("foreign cards", totals.foreign),
    ):
        lines.append(
            f"{name}: sales {group.debit_count} = {_amount(f'{group.debit_amount_minor}')}"
            f", refunds {group.credit_count} = "
            f"{_amount(f'{group.credit_amount_minor}')}"
        )
    names = {"0": "0 (request)", "1": "1 balanced", "2": "2 not balanced", "3": "3 error"}
    lines.append(f"result digit (position 31 and 62): {names[result.value]}")
    return lines


def _f62(value: str, fields: Fields) -> list[str]:
    return [
        f"TPK under TMK {value[0:32]}",
        f"TPK KCV {value[32:40]}",
        f"TAK under TMK {value[40:72]}",
        f"TAK KCV {value[72:80]}",
    ]


def _f54(value: str, fields: Fields) -> list[str]:
    return [
        f"account type {value[0:2]}, amount type {value[2:4]} (available), "
        f"currency {value[4:7]}, sign {value[7]}, amount {_amount(str(parse_f54(value)))}"
    ]


Annotator = Callable[[str, Fields], list[str]]
ANNOTATE: dict[str, Annotator] = {
    "2": lambda v, f: [v],
    "3": lambda v, f: [f"{v}: {PROC_NAMES.get(v, '?')}"],
    "4": lambda v, f: [_amount(v)],
    "11": lambda v, f: [v],
    "12": lambda v, f: [f"{v[0:2]}:{v[2:4]}:{v[4:6]}"],
    "13": lambda v, f: [f"{v[0:2]}-{v[2:4]}"],
    "14": lambda v, f: [f"20{v[0:2]}-{v[2:4]}"],
    "15": lambda v, f: [f"{v[0:2]}-{v[2:4]}"],
    "22": lambda v, f: [f"{v}: {_entry(v)}"],
    "25": lambda v, f: [f"{v}: {CONDITION_NAMES.get(v, '?')}"],
    "26": lambda v, f: [f"{v}: PIN pad accepts up to {int(v)} digits"],
    "32": lambda v, f: [v],
    "35": lambda v, f: [
        f"PAN {v.split('D')[0]}, separator D, expiry {v.split('D')[1][:4]}, "
        f"service code {v.split('D')[1][4:7]}, discretionary data"
    ],
    "37": lambda v, f: [repr(v)],
    "38": lambda v, f: [repr(v)],
    "39": lambda v, f: [
        f"{v!r}: "
        + (
            REVERSAL_REASONS.get(v, "?") + " (reversal reason)"
            if f["t"] in ("0400", "0401")
            else describe(v).en
        )
    ],
    "41": lambda v, f: [repr(v)],
    "42": lambda v, f: [repr(v)],
    "44": lambda v, f: [repr(v)],
    "48": _f48,
    "49": lambda v, f: [f"{v} (ISO 4217 numeric: {'CNY' if v == '156' else '?'})"],
    "52": lambda v, f: ["ISO 9564 format 0 block, TDES-ECB under the TPK"],
    "53": lambda v, f: [f"{v}: 2 = format 0 PIN block, 6 = double-length TDES, rest 0"],
    "54": _f54,
    "55": lambda v, f: _f55(v),
    "60": lambda v, f: _f60(v),
    "61": lambda v, f: _f61(v),
    "62": _f62,
    "63": lambda v, f: [f"{v!r}: operator number"],
}


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


BYTES_PER_LINE = 12
_HEX_WIDTH = BYTES_PER_LINE * 3


class Dump:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.offset = 0

    def part(self, data: bytes, label: str, meaning: list[str]) -> None:
        rows = _chunks(data, BYTES_PER_LINE)
        texts = [f"{label:<8} {meaning[0]}" if meaning else label]
        texts += [f"{'':<8} {m}" for m in meaning[1:]]
        for i in range(max(len(rows), len(texts))):
            hex_part = rows[i].hex(" ").upper() if i < len(rows) else ""
            offset = f"{self.offset + i * BYTES_PER_LINE:04X}" if i < len(rows) else "    "
            text = texts[i] if i < len(texts) else ""
            self.lines.append(f"{offset}  {hex_part:<{_HEX_WIDTH}} {text}".rstrip())
        self.offset += len(data)


def dump(example: Example) -> str:
    fields = example.fields
    mac = x919_mac if example.maced else signon_mac if example.signon_mac else None
    message = encode(fields, mac=mac)
    tpdu = Tpdu(TERMINAL_NII, HOST_NII) if example.response else Tpdu(HOST_NII, TERMINAL_NII)
    frame = encode_frame(Frame(tpdu, HEADER, message))
    decoded, encoded = iso8583.decode(bytearray(message), SPEC)

    out = Dump()
    out.part(frame[:2], "length", [f"{len(frame) - 2} bytes follow (TPDU + header + message)"])
    out.part(
        frame[2:7],
        "TPDU",
        [f"id 60, destination NII {tpdu.dest_nii:04X}, source NII {tpdu.src_nii:04X}"],
    )
    out.part(frame[7:13], "header", ["application header of the sandbox profile"])
    message_start = out.offset
    mti = decoded["t"]
    out.part(bytes(encoded["t"]["data"]), "MTI", [f"{mti}: {MTI_NAMES.get(mti, '?')}"])
    bits = sorted(int(k) for k in decoded if k.isdigit())
    out.part(bytes(encoded["p"]["data"]), "bitmap", ["fields " + " ".join(map(str, bits))])
    for bit in bits:
        key = str(bit)
        value = decoded[key]
        prefix = bytes(encoded[key]["len"])
        name = SPEC[key]["desc"]
        if prefix:
            unit = "digits" if SPEC[key].get("len_count") == "nibbles" else "bytes"
            out.part(prefix, f"F{bit} len", [f"length {prefix.hex()} = {int(prefix.hex())} {unit}"])
        if key == "64":
            start, end = message_start, out.offset
            key_name = "the TMK's sign-on variant" if example.signon_mac else "the TAK"
            meaning = [
                f"{name}: X9.19 retail MAC under {key_name} over offsets "
                f"{start:04X}..{end - 1:04X} ({end - start} bytes, MTI to end of "
                f"field {bits[-2]})"
            ]
        else:
            meaning = [name, *ANNOTATE.get(key, lambda v, f: [v])(value, fields)]
            if len(meaning) == 2:
                meaning = [f"{meaning[0]}: {meaning[1]}"]
        out.part(bytes(encoded[key]["data"]), f"F{bit}", meaning)
    assert out.offset == len(frame)

    body = [f"### {example.title}", ""]
    if example.note:
        body += [example.note, ""]
    body += ["```", *out.lines, "```", ""]
    return "\n".join(body)


def main() -> None:
    print(
        "<!-- Generated by `.venv/bin/python scripts/protocol_dumps.py`; do not edit by hand. -->"
    )
    print()
    print(
        f"Example values: TID `{TID}`, MID `{MID}`, test card PAN `{PAN}` (Luhn-valid), "
        f"expiry {EXPIRY}, PIN `{PIN}`, batch {BATCH}, date {DATE}. Test keys (hex): "
        f"TMK `{TMK.hex().upper()}`, TPK `{TPK.hex().upper()}`, "
        f"TAK `{TAK.hex().upper()}`. Requests go from NII 0000 to NII 0001; responses swap "
        "them. Field 64 is the X9.19 MAC under the TAK (sandbox profile); in the sign-on "
        "request, under the TMK's sign-on variant (TMK with key variant 8: "
        f"`{SIGNON_KEY.hex().upper()}`)."
    )
    print()
    for example in examples():
        print(dump(example))


if __name__ == "__main__":
    main()
