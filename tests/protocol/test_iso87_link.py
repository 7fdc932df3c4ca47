"""smartpos's side of the plain 1987 link, against a host that shares none of its code
(tests/plainhost: pyiso8583 with a spec written from the standard): what the iso87-plain
codec and framing put on the wire is what an independent 1987 implementation reads, and
its answers decode. The terminal's transactions over this link are the integration test's."""

from __future__ import annotations

import asyncio

from smartpos.protocol.profiles import get_profile
from smartpos.terminal.link import HostLink, InProcessLink
from tests.plainhost.host import PlainHost

PROFILE = get_profile("iso87-plain")
PAN = "6212340000000001"
SALE = {
    "t": "0200",
    "3": "000000",
    "4": "000000002500",
    "11": "000007",
    "12": "101010",
    "13": "0315",
    "22": "021",
    "25": "00",
    "35": f"{PAN}D30121010000000000",
    "41": "12345678",
    "42": "898310048160001",
    "49": "156",
    "52": "0123456789ABCDEF",
    "60": "22000001",
}


def test_a_sale_and_its_void_over_tcp() -> None:
    async def go() -> None:
        async with PlainHost({PAN: 10_000}) as host:
            link = HostLink("127.0.0.1", host.port, PROFILE, None)
            try:
                answer = PROFILE.codec.decode(await link.exchange(PROFILE.codec.encode(SALE)))
                assert (answer["t"], answer["39"], answer["11"]) == ("0210", "00", "000007")
                assert host.ledger.held(PAN) == 2_500
                request, _ = host.exchanges[-1]
                assert request is not None and request["35"] == f"{PAN}=30121010000000000"
                void = {**SALE, "3": "200000", "11": "000008", "37": answer["37"]}
                for key in ("22", "35", "52"):
                    del void[key]
                answer = PROFILE.codec.decode(await link.exchange(PROFILE.codec.encode(void)))
                assert answer["39"] == "00"
                assert host.ledger.moves == [("hold", PAN, 2_500), ("release", PAN, 2_500)]
            finally:
                await link.close()

    asyncio.run(go())


class _InProcess:
    """The plain host behind an in-process link: frame bodies in and out, as on the wire."""

    def __init__(self, host: PlainHost) -> None:
        self.host = host

    async def handle(self, body: bytes) -> bytes | None:
        answer = self.host.answer(PROFILE.framing.split(body).message)
        return None if answer is None else PROFILE.framing.request(answer)


def test_a_reversal_and_a_duplicate_in_process() -> None:
    async def go() -> None:
        host = PlainHost({PAN: 10_000})
        link = InProcessLink(_InProcess(host), PROFILE)
        first = PROFILE.codec.decode(await link.exchange(PROFILE.codec.encode(SALE)))
        again = PROFILE.codec.decode(await link.exchange(PROFILE.codec.encode(SALE)))
        assert first == again and first["39"] == "00"
        reversal = {k: SALE[k] for k in ("3", "4", "11", "12", "13", "22", "25", "41", "42")}
        answer = await link.exchange(PROFILE.codec.encode({"t": "0400", **reversal, "39": "98"}))
        assert PROFILE.codec.decode(answer)["t"] == "0410"
        assert host.ledger.moves == [("hold", PAN, 2_500), ("release", PAN, 2_500)]

    asyncio.run(go())
