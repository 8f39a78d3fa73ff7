"""ICE for WHEP sessions: which host addresses and UDP ports the gateway offers, STUN/TURN.

aioice (under aiortc) has no option for either: it offers every address of every interface
except 127.0.0.1, each on an ephemeral port. A gateway behind a firewall needs a fixed port
range, one behind a 1:1 NAT or with several interfaces needs to name its addresses, and a
loopback-only test set-up needs 127.0.0.1. So the relay gathers the host candidates itself,
on aioice's own connection object, before aiortc would: aioice gathers only once per
connection, so aiortc then uses these candidates as they are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Iterable

from aioice import Candidate, Connection
from aioice import ice as aioice_ice
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.turn import UDP_SOCKET_BUFFER_SIZE
from aiortc import RTCIceServer, RTCPeerConnection
from aiortc.rtcicetransport import parse_stun_turn_uri

from gateway.errors import InvalidInput
from gateway.settings import IceSettings

COMPONENT = 1  # aiortc multiplexes RTP and RTCP on one component (rtcp-mux)
STUN_TIMEOUT = 5.0  # aioice's own bound on gathering
# aioice's Connection internals used here and by gateway/relay/sender.py.
_INTERNALS = (
    "_local_candidates",
    "_local_candidates_start",
    "_local_candidates_end",
    "_protocols",
    "_nominated",
)


def check_aioice() -> None:
    """Fail at start-up, not per viewer, if aioice no longer has what this module uses."""
    names = Connection.__init__.__code__.co_names
    missing = [n for n in _INTERNALS if n not in names]
    if missing:
        raise RuntimeError(f"unsupported aioice version: Connection lacks {missing}")


def ice_servers(settings: IceSettings) -> list[RTCIceServer]:
    """The configured STUN/TURN servers; none means none (aiortc's default asks Google's)."""
    servers = []
    for index, server in enumerate(settings.servers):
        for url in server.urls:
            try:
                parse_stun_turn_uri(url)
            except ValueError:
                raise InvalidInput(
                    f"relay.ice.servers[{index}]: {url.split('?')[0]!r} is not a stun:/turn: URL",
                    field="relay.ice.servers",
                ) from None
        credential = server.credential.get_secret_value() if server.credential else None
        servers.append(RTCIceServer(server.urls, server.username, credential))
    return servers


def loopback_only(settings: IceSettings) -> bool:
    return bool(settings.host_addresses) and all(
        ipaddress.ip_address(a).is_loopback for a in settings.host_addresses
    )


def reachable_candidates(offer: str, settings: IceSettings) -> str:
    """The offer without remote candidates the gateway's own sockets cannot reach.

    A socket bound to 127.0.0.1 cannot send to a LAN address, and pairing with one only
    wastes checks until ICE gives up; the client's socket still answers the gateway's checks
    on loopback (a peer-reflexive candidate), which is how browsers connect in tests.
    """
    if not loopback_only(settings):
        return offer
    lines = offer.splitlines()
    kept = [line for line in lines if not _is_unreachable_candidate(line)]
    return "\r\n".join(kept) + "\r\n"


def _is_unreachable_candidate(line: str) -> bool:
    if not line.startswith("a=candidate:"):
        return False
    fields = line.split()
    if len(fields) < 6:
        return True  # malformed: aiortc would reject the whole offer for it
    try:
        return not ipaddress.ip_address(fields[4]).is_loopback
    except ValueError:
        return True  # an mDNS name (*.local): never a loopback address


async def gather(pc: RTCPeerConnection, settings: IceSettings) -> None:
    """Gather host (and STUN/TURN) candidates for ``pc``'s transports, per the settings.

    Call after ``setRemoteDescription`` (which decides the bundled transports) and before
    ``setLocalDescription`` (where aiortc would gather with its defaults).
    """
    if not settings.host_addresses and settings.port_min is None:
        return  # aioice's defaults are what the operator asked for
    connections = {
        id(c): c
        for c in (
            t.sender.transport.transport.iceGatherer._connection for t in pc.getTransceivers()
        )
    }
    await asyncio.gather(*(_gather(c, settings) for c in connections.values()))


async def _gather(connection: Connection, settings: IceSettings) -> None:
    if connection._local_candidates_start:
        return
    connection._local_candidates_start = True
    addresses = settings.host_addresses or aioice_ice.get_host_addresses(
        use_ipv4=True, use_ipv6=True
    )
    if settings.port_min is None or settings.port_max is None:
        candidates = await connection.get_component_candidates(COMPONENT, addresses)
    else:
        ports = range(settings.port_min, settings.port_max + 1)
        bound = [await _bind(connection, address, ports) for address in addresses]
        protocols = [p for p in bound if p is not None]
        if not protocols:
            raise OSError(
                f"no free UDP port in {settings.port_min}-{settings.port_max} on "
                f"{', '.join(addresses)}"
            )
        connection._protocols += protocols
        candidates = [p.local_candidate for p in protocols]
        candidates += await _server_candidates(connection, protocols)
    connection._local_candidates += candidates
    connection._local_candidates_end = True


async def _bind(
    connection: Connection, address: str, ports: range
) -> aioice_ice.StunProtocol | None:
    """A socket on ``address`` at a free port of ``ports`` (tried from a random start)."""
    loop = asyncio.get_running_loop()
    start = random.randrange(len(ports))
    for i in range(len(ports)):
        port = ports[(start + i) % len(ports)]
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: aioice_ice.StunProtocol(connection), local_addr=(address, port)
            )
        except OSError:
            continue
        sock = transport.get_extra_info("socket")
        if sock is not None:  # as aioice does: a burst (the cached GOP) must not overflow it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)
        host, bound_port = transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host),
            component=COMPONENT,
            transport="udp",
            priority=candidate_priority(COMPONENT, "host"),
            host=host,
            port=bound_port,
            type="host",
        )
        return protocol
    return None


async def _server_candidates(
    connection: Connection, protocols: Iterable[aioice_ice.StunProtocol]
) -> list[Candidate]:
    """Server-reflexive candidates of the bound sockets, and the TURN relay candidate."""
    found: list[Candidate] = []
    if connection.stun_server is not None:
        stun = connection.stun_server
        queries = [
            asyncio.wait_for(aioice_ice.server_reflexive_candidate(p, stun), STUN_TIMEOUT)
            for p in protocols
            if ipaddress.ip_address(p.local_candidate.host).version == 4
        ]
        results = await asyncio.gather(*queries, return_exceptions=True)
        found += [r[0] for r in results if not isinstance(r, BaseException)]
    if connection.turn_server is not None:
        # With no address of its own to bind, aioice gathers only the TURN relay candidate.
        found += await connection.get_component_candidates(COMPONENT, [])
    return found
