"""Link admission: untrusted links are capped in all and per address, the oldest untrusted
link makes room for a newcomer, trusted links are kept, and one terminal cannot hold many."""

from __future__ import annotations

import pytest

from smartpos.host.links import Link, LinkLimits, LinkTable, Refused, source_of

LIMITS = LinkLimits(max_links=10, max_untrusted=6, max_untrusted_per_source=3, max_links_per_tid=2)


def link(source: str, n: int = 0) -> Link:
    return Link(source, f"{source}:{n}")


def test_per_source_limit_drops_that_sources_oldest() -> None:
    table = LinkTable(LIMITS)
    first = [link("10.0.0.1", i) for i in range(3)]
    for lk in first:
        assert table.admit(lk) == []
    other = link("10.0.0.2")
    assert table.admit(other) == []
    newcomer = link("10.0.0.1", 3)
    assert table.admit(newcomer) == [first[0]]
    assert table.untrusted_from("10.0.0.1") == 3 and table.untrusted_from("10.0.0.2") == 1
    assert len(table) == 4


def test_untrusted_share_full_drops_the_oldest_of_the_heaviest_source() -> None:
    table = LinkTable(LIMITS)
    heavy = [link("10.0.0.1", i) for i in range(3)]
    light = [link(f"10.0.1.{i}") for i in range(3)]
    for lk in [light[0], *heavy, light[1], light[2]]:
        table.admit(lk)
    assert table.untrusted_count == 6
    # A terminal from a fresh address gets in; the heavy address pays for it.
    assert table.admit(link("10.0.2.1")) == [heavy[0]]
    assert table.untrusted_count == 6


def test_trusted_links_keep_their_room_and_only_untrusted_ones_are_dropped() -> None:
    table = LinkTable(LIMITS)
    terminals = [link(f"10.1.0.{i}") for i in range(8)]
    for i, lk in enumerate(terminals):
        table.admit(lk)
        assert table.trust(lk, f"T{i:07d}") == []
    assert (table.trusted_count, table.untrusted_count) == (8, 0)
    a, b = link("10.9.0.1"), link("10.9.0.2")
    table.admit(a)
    table.admit(b)
    # The table is full (10): a newcomer drops an untrusted link, never a trusted one...
    assert table.admit(link("10.9.0.3")) == [a]
    for lk in list(table):
        if not lk.trusted:
            table.remove(lk)
    for i in range(2):
        extra = link(f"10.1.1.{i}")
        table.admit(extra)
        table.trust(extra, f"U{i:07d}")
    # ...and when every link is trusted, the newcomer is refused.
    with pytest.raises(Refused):
        table.admit(link("10.9.0.4"))
    assert len(table) == 10


def test_one_terminal_holds_at_most_its_share_of_trusted_links() -> None:
    table = LinkTable(LIMITS)
    links = [link(f"10.0.0.{i}") for i in range(4)]
    for lk in links:
        table.admit(lk)
    assert table.trust(links[0], "T0000001") == []
    assert table.trust(links[1], "T0000001") == []
    links[1].busy = True  # a request in flight: never dropped
    assert table.trust(links[2], "T0000001") == [links[0]]
    links[2].busy = True
    assert table.trust(links[3], "T0000001") == []  # only busy links left to drop: none
    assert table.trusted_count == 3
    table.remove(links[1])
    table.remove(links[1])  # twice: nothing more happens
    assert table.trusted_count == 2 and len(table) == 2


def test_front_end_share_keeps_the_host_wide_totals() -> None:
    one = LinkLimits().share(2)
    assert (one.max_links, one.max_untrusted, one.max_untrusted_per_source) == (1024, 256, 128)
    assert one.max_links_per_tid == LinkLimits().max_links_per_tid
    assert one.untrusted_idle_timeout_s == LinkLimits().untrusted_idle_timeout_s
    with pytest.raises(ValueError):
        LinkLimits(max_untrusted=10, max_links=5)


def test_sources() -> None:
    assert source_of(("127.0.0.2", 5555)) == "127.0.0.2"
    assert source_of(("::ffff:10.0.0.1", 1, 0, 0)) == "10.0.0.1"
    assert source_of(("2001:db8::1:2:3:4", 1, 0, 0)) == "2001:db8::/64"
    assert source_of(("2001:db8::9", 1, 0, 0)) == "2001:db8::/64"
