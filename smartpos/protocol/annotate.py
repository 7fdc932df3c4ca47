"""Annotated hex dumps of frames: every byte of a frame, the part it belongs to and its meaning.

One line per part (at most 12 bytes of it; longer parts wrap): offset in the frame (hex),
the bytes, the part (``length``, ``TPDU``, ``header``, ``MTI``, ``bitmap``, ``F<n> len``,
``F<n>``) and what it says. docs/protocol.md §11 prints the examples this way; the layout is
regular so that a reader — or a test — can take the bytes back out of the text.
"""

from __future__ import annotations

from collections.abc import Callable

import iso8583

from smartpos.cards.tlv import decode_tlv
from smartpos.protocol.codec import Fields
from smartpos.protocol.codes import describe
from smartpos.protocol.framing import TPDU_LEN, Tpdu
from smartpos.protocol.messages import ENTRY_NAMES, F60, F61, SettlementTotals, parse_f54
from smartpos.protocol.spec import SPEC

BYTES_PER_LINE = 12
_HEX_WIDTH = BYTES_PER_LINE * 3
LABEL_WIDTH = 8

MTI_NAMES = {
    "0200": "financial transaction request",
    "0210": "financial transaction response",
    "0220": "financial advice (refund)",
    "0230": "financial advice response",
    "0320": "batch upload or TC advice",
    "0330": "batch upload or TC advice response",
    "0400": "reversal request (0401 = repeat)",
    "0401": "reversal request, repeat",
    "0410": "reversal response",
    "0500": "settlement request",
    "0510": "settlement response",
    "0800": "network management request (sign-on)",
    "0810": "network management response (sign-on)",
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
CSU_NAMES = {"00820000": "approved", "00020000": "declined"}
EMV_TAGS = {
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
    "84": "AID (dedicated file name)",
}
_CID_NAMES = {"80": "ARQC", "40": "TC", "00": "AAC"}


def is_response(mti: str) -> bool:
    """Responses have an odd third MTI digit (0210, 0810, ...)."""
    return int(mti[2]) % 2 == 1


def _amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d} (minor units: {minor})"


def _entry(value: str) -> str:
    pan_entry = ENTRY_NAMES.get(value[:2], "unknown")
    pin = {"1": "PIN entered", "2": "no PIN entered"}.get(value[2], "?")
    return f"{value}: {pan_entry}, {pin}"


def _f60(value: str, fields: Fields) -> list[str]:
    f60 = F60.decode(value)
    batch = f"60.2 batch {f60.batch_no}"
    if fields["t"] == "0810":
        batch += " (the batch the host expects)"
    return [
        f"60.1 type {f60.type_code} ({TYPE_NAMES.get(f60.type_code, '?')})",
        batch,
        f"60.3 network code {f60.net_code} ({NET_NAMES.get(f60.net_code, '?')})",
    ]


def _f61(value: str, fields: Fields) -> list[str]:
    f61 = F61.decode(value)
    if fields["t"] == "0810":  # the host's view of the terminal (protocol.md §8.2.1)
        return [
            f"61.1 batch {f61.batch_no}",
            f"61.2 latest trace the host holds from the terminal {f61.stan}",
            f"61.3 its date {f61.date_mmdd}" + (" (none)" if f61.date_mmdd == "0000" else ""),
        ]
    return [
        f"61.1 original batch {f61.batch_no}",
        f"61.2 original trace {f61.stan}",
        f"61.3 original date {f61.date_mmdd}",
    ]


def _f48(value: str, fields: Fields) -> list[str]:
    if len(value) != 62:
        return [f"{int(value)} batch upload advices sent"]
    totals, result = SettlementTotals.decode(value)
    lines = []
    for name, group in (("domestic (UnionPay)", totals.domestic), ("foreign", totals.foreign)):
        lines.append(
            f"{name}: sales {group.debit_count} = {_amount(group.debit_amount_minor)},"
            f" refunds {group.credit_count} = {_amount(group.credit_amount_minor)}"
        )
    names = {"0": "0 (request)", "1": "1 balanced", "2": "2 not balanced", "3": "3 error"}
    lines.append(f"result digit (positions 31 and 62): {names[result.value]}")
    return lines


def _f54(value: str, fields: Fields) -> list[str]:
    return [
        f"account type {value[0:2]}, amount type {value[2:4]} (available), "
        f"currency {value[4:7]}, sign {value[7]}, amount {_amount(abs(parse_f54(value)))}"
    ]


def _f55(value: str, fields: Fields) -> list[str]:
    lines = ["EMV TLV data:"]
    for tag, data in decode_tlv(bytes.fromhex(value)).items():
        text = data.hex().upper()
        if tag == "91":
            csu = text[8:]
            lines.append(
                f"  91 issuer authentication data: ARPC {text[:8]},"
                f" CSU {csu} ({CSU_NAMES.get(csu, '?')})"
            )
            continue
        if tag == "9F27":
            text += f" ({_CID_NAMES.get(text, '?')})"
        lines.append(f"  {tag} {EMV_TAGS.get(tag, '?')}: {text}")
    return lines


def _f62(value: str, fields: Fields) -> list[str]:
    return [
        f"TPK under TMK {value[0:32]}",
        f"TPK KCV {value[32:40]}",
        f"TAK under TMK {value[40:72]}",
        f"TAK KCV {value[72:80]}",
    ]


def _f39(value: str, fields: Fields) -> list[str]:
    if fields["t"] in ("0400", "0401"):
        return [f"{value!r}: {REVERSAL_REASONS.get(value, '?')} (reversal reason)"]
    return [f"{value!r}: {describe(value).en}"]


def _f35(value: str, fields: Fields) -> list[str]:
    pan, rest = value.split("D", 1)
    return [
        f"PAN {pan}, separator D, expiry {rest[:4]}, service code {rest[4:7]}, discretionary data"
    ]


def _plain(value: str, fields: Fields) -> list[str]:
    return [value]


Annotator = Callable[[str, Fields], list[str]]
ANNOTATE: dict[str, Annotator] = {
    "3": lambda v, f: [f"{v}: {PROC_NAMES.get(v, '?')}"],
    "4": lambda v, f: [_amount(int(v))],
    "12": lambda v, f: [f"{v[0:2]}:{v[2:4]}:{v[4:6]}"],
    "13": lambda v, f: [f"{v[0:2]}-{v[2:4]}"],
    "14": lambda v, f: [f"20{v[0:2]}-{v[2:4]}"],
    "15": lambda v, f: [f"{v[0:2]}-{v[2:4]}"],
    "22": lambda v, f: [_entry(v)],
    "23": lambda v, f: [f"{v}: PAN sequence number {v[-2:]}"],
    "25": lambda v, f: [f"{v}: {CONDITION_NAMES.get(v, '?')}"],
    "26": lambda v, f: [f"{v}: PIN pad accepts up to {int(v)} digits"],
    "35": _f35,
    "37": lambda v, f: [repr(v)],
    "38": lambda v, f: [repr(v)],
    "39": _f39,
    "41": lambda v, f: [repr(v)],
    "42": lambda v, f: [repr(v)],
    "44": lambda v, f: [repr(v)],
    "48": _f48,
    "49": lambda v, f: [f"{v} (ISO 4217 numeric: {'CNY' if v == '156' else '?'})"],
    "52": lambda v, f: ["ISO 9564 format 0 block, TDES-ECB under the TPK"],
    "53": lambda v, f: [f"{v}: 2 = format 0 PIN block, 6 = double-length TDES, rest 0"],
    "54": _f54,
    "55": _f55,
    "60": _f60,
    "61": _f61,
    "62": _f62,
    "63": lambda v, f: [f"{v!r}: operator number"],
}


class _Dump:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.offset = 0

    def part(self, data: bytes, label: str, meaning: list[str]) -> None:
        rows = [data[i : i + BYTES_PER_LINE] for i in range(0, len(data), BYTES_PER_LINE)]
        texts = [f"{label:<{LABEL_WIDTH}} {meaning[0]}" if meaning else label]
        texts += [f"{'':<{LABEL_WIDTH}} {m}" for m in meaning[1:]]
        for i in range(max(len(rows), len(texts))):
            hex_part = rows[i].hex(" ").upper() if i < len(rows) else ""
            offset = f"{self.offset + i * BYTES_PER_LINE:04X}" if i < len(rows) else "    "
            text = texts[i] if i < len(texts) else ""
            self.lines.append(f"{offset}  {hex_part:<{_HEX_WIDTH}} {text}".rstrip())
        self.offset += len(data)


def annotate(frame: bytes, header_len: int, header_name: str = "application header") -> list[str]:
    """The annotated dump of ``frame`` (length prefix included), whose application header
    (after the TPDU) is ``header_len`` bytes. The MAC (field 64) is described as X9.19 under
    the TAK, or under the TMK's sign-on variant in a sign-on request (protocol.md §7.2,
    §7.3)."""
    message = frame[2 + TPDU_LEN + header_len :]
    decoded, encoded = iso8583.decode(bytearray(message), SPEC)
    tpdu = Tpdu.decode(frame[2 : 2 + TPDU_LEN])

    out = _Dump()
    out.part(frame[:2], "length", [f"{len(frame) - 2} bytes follow (TPDU + header + message)"])
    out.part(
        frame[2 : 2 + TPDU_LEN],
        "TPDU",
        [f"id 60, destination NII {tpdu.dest_nii:04X}, source NII {tpdu.src_nii:04X}"],
    )
    if header_len:
        out.part(frame[2 + TPDU_LEN : 2 + TPDU_LEN + header_len], "header", [header_name])
    message_start = out.offset
    mti = decoded["t"]
    out.part(bytes(encoded["t"]["data"]), "MTI", [f"{mti}: {MTI_NAMES.get(mti, '?')}"])
    bits = sorted(int(k) for k in decoded if k.isdigit())
    out.part(bytes(encoded["p"]["data"]), "bitmap", ["fields " + " ".join(map(str, bits))])
    for bit in bits:
        key = str(bit)
        prefix = bytes(encoded[key]["len"])
        name = SPEC[key]["desc"]
        if prefix:
            unit = "digits" if SPEC[key].get("len_count") == "nibbles" else "bytes"
            out.part(prefix, f"F{bit} len", [f"length {prefix.hex()} = {int(prefix.hex())} {unit}"])
        if key == "64":
            key_name = "the TMK's sign-on variant" if mti == "0800" else "the TAK"
            start, end = message_start, out.offset
            meaning = [
                f"{name}: X9.19 retail MAC under {key_name} over offsets "
                f"{start:04X}..{end - 1:04X} ({end - start} bytes, MTI to end of "
                f"field {bits[-2]})"
            ]
        else:
            meaning = [name, *ANNOTATE.get(key, _plain)(decoded[key], decoded)]
            if len(meaning) == 2:
                meaning = [f"{meaning[0]}: {meaning[1]}"]
        out.part(bytes(encoded[key]["data"]), f"F{bit}", meaning)
    if out.offset != len(frame):
        raise ValueError(f"dump covers {out.offset} of {len(frame)} bytes")
    return out.lines
