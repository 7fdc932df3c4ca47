"""Admission of terminal links: how many the host keeps, from where, and whom it drops.

A link is *untrusted* from the moment it is accepted (TCP only, then the TLS handshake, then
requests) until a request on it proves it comes from a registered terminal: its MAC
verified under that terminal's keys (a sign-on's under its TMK). Anyone can open untrusted
links; only terminals can hold trusted ones. So (docs/architecture.md, "Link limits"):

* all links together: at most ``max_links``;
* untrusted links: at most ``max_untrusted`` (a share of the whole, so the rest stays free
  for terminals), and at most ``max_untrusted_per_source`` from one address;
* when a new link would pass one of those, the **oldest untrusted link** goes: from the same
  address if that address is at its limit, else from the address that holds the most
  untrusted links. Only when every link is trusted is the newcomer refused;
* trusted links of one terminal ID: at most ``max_links_per_tid`` (its oldest idle one goes),
  so one terminal's stolen keys cannot fill the table either.

Pure bookkeeping, no I/O: the server closes what this says to close.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LinkLimits:
    max_links: int = 2048
    max_untrusted: int = 512
    max_untrusted_per_source: int = 256  # half the share: terminals behind one NAT connect at once
    max_links_per_tid: int = 4
    handshake_timeout_s: float = 5.0  # accept to end of the TLS handshake
    untrusted_idle_timeout_s: float = 10.0  # waiting for a frame on an untrusted link
    idle_timeout_s: float = 300.0  # waiting for a frame on a trusted link
    write_timeout_s: float = 10.0  # an answer not taken by the peer in this time: closed
    tls_shutdown_timeout_s: float = 2.0  # a polite close waits this long for the peer's

    def __post_init__(self) -> None:
        counts = (self.max_untrusted_per_source, self.max_links_per_tid)
        if min(counts) < 1 or not 1 <= self.max_untrusted <= self.max_links:
            raise ValueError("link limits must be ≥ 1 and max_untrusted ≤ max_links")

    def share(self, parts: int) -> LinkLimits:
        """The limits of one of ``parts`` front-end processes on one listening socket: the
        counts divided, so the host as a whole keeps the same limits. (Per terminal ID the
        limit stays per process: a terminal's links may land on any front-end.)"""
        if parts < 1:
            raise ValueError("parts must be ≥ 1")
        return replace(
            self,
            max_links=max(1, self.max_links // parts),
            max_untrusted=max(1, self.max_untrusted // parts),
            max_untrusted_per_source=max(1, self.max_untrusted_per_source // parts),
        )


def source_of(peer: object) -> str:
    """The address a link is counted under: the IPv4 address, or the /64 of an IPv6 one
    (one host usually holds a whole /64)."""
    host = peer[0] if isinstance(peer, tuple) and peer else str(peer)
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return str(host)
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class Link:
    """One connection as the host keeps it (the :class:`smartpos.host.pipeline.Peer` the
    pipeline tells when the link proves to be a terminal's)."""

    __slots__ = ("busy", "name", "on_trust", "source", "stop", "tid", "trusted")

    def __init__(self, source: str, name: str) -> None:
        self.source = source
        self.name = name
        self.trusted = False
        self.tid: str | None = None
        self.busy = False  # a request of this link is being handled (never dropped then)
        self.stop: Callable[[], None] = _nothing  # set by the server: end this link
        self.on_trust: Callable[[Link, str], None] = _ignore

    def trust(self, tid: str) -> None:
        if not self.trusted:
            self.on_trust(self, tid)

    def __repr__(self) -> str:
        state = f"trusted {self.tid}" if self.trusted else "untrusted"
        return f"Link({self.name}, {state})"


def _nothing() -> None:
    pass


def _ignore(link: Link, tid: str) -> None:
    pass


class Refused(Exception):
    """No room for a new link: every link is trusted."""


class LinkTable:
    """The links of one server, by trust, address and terminal."""

    def __init__(self, limits: LinkLimits) -> None:
        self.limits = limits
        # Insertion order is accept order (trust order for terminals): first = oldest.
        self._untrusted: dict[str, dict[Link, None]] = {}
        self._by_tid: dict[str, dict[Link, None]] = {}
        self.untrusted_count = 0
        self.trusted_count = 0

    def __len__(self) -> int:
        return self.untrusted_count + self.trusted_count

    def __iter__(self) -> Iterator[Link]:
        for group in (*self._untrusted.values(), *self._by_tid.values()):
            yield from list(group)

    def admit(self, link: Link) -> list[Link]:
        """Take a new (untrusted) link. Returns the links to drop to make room for it;
        raises :class:`Refused` when there is none to drop."""
        limits, evicted = self.limits, []
        same = self._untrusted.get(link.source, {})
        if len(same) >= limits.max_untrusted_per_source:
            evicted.append(next(iter(same)))
        elif self.untrusted_count >= limits.max_untrusted or len(self) >= limits.max_links:
            if not self.untrusted_count:
                raise Refused(f"{len(self)} links, all trusted")
            heaviest = max(self._untrusted.values(), key=len)
            evicted.append(next(iter(heaviest)))
        for old in evicted:
            self.remove(old)
        self._untrusted.setdefault(link.source, {})[link] = None
        self.untrusted_count += 1
        return evicted

    def trust(self, link: Link, tid: str) -> list[Link]:
        """``link`` proved to be terminal ``tid``'s. Returns that terminal's oldest idle
        links beyond ``max_links_per_tid`` (to drop)."""
        if link.trusted or not self._discard_untrusted(link):
            return []
        link.trusted, link.tid = True, tid
        group = self._by_tid.setdefault(tid, {})
        group[link] = None
        self.trusted_count += 1
        evicted = []
        excess = len(group) - self.limits.max_links_per_tid
        for old in list(group):
            if excess <= 0:
                break
            if old is not link and not old.busy:
                evicted.append(old)
                excess -= 1
        for old in evicted:
            self.remove(old)
        return evicted

    def remove(self, link: Link) -> None:
        """Forget ``link`` (closed, or dropped); a second call does nothing."""
        if link.trusted:
            group = self._by_tid.get(link.tid or "")
            if group is not None and link in group:
                del group[link]
                self.trusted_count -= 1
                if not group:
                    del self._by_tid[link.tid or ""]
        else:
            self._discard_untrusted(link)

    def _discard_untrusted(self, link: Link) -> bool:
        group = self._untrusted.get(link.source)
        if group is None or link not in group:
            return False
        del group[link]
        self.untrusted_count -= 1
        if not group:
            del self._untrusted[link.source]
        return True

    def untrusted_from(self, source: str) -> int:
        return len(self._untrusted.get(source, {}))
