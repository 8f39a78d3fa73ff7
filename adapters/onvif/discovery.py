"""WS-Discovery (ONVIF Core §7, WS-Discovery 2005/04): find ONVIF devices on a network.

A small implementation of the client side — one Probe, collect the ProbeMatches — rather
than a library, because none fits:

* ``wsdiscovery`` (PyPI) picks its interfaces itself and skips loopback addresses, so it
  cannot probe a chosen interface such as the test network namespace's; it is also
  thread-based, where the gateway is asyncio.
* ``onveef`` probes loopback fine, but it is a whole second ONVIF client stack beside
  onvif-zeep-async, for the forty lines that a probe is.

Two ways to probe: multicast to 239.255.255.250:3702 out of one chosen interface (its IPv4
address or its name), which finds every device on that link; and unicast to one host's
port 3702, for devices on other subnets, which multicast does not reach (TTL 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import socket
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from lxml import etree

from gateway.catalog.models import Camera
from gateway.errors import InvalidInput
from gateway.settings import OnvifSettings

MULTICAST_GROUP = "239.255.255.250"
PORT = 3702
MAX_REPLY = 65_507

_SOAP = "http://www.w3.org/2003/05/soap-envelope"
_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
_WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
_NS = {"s": _SOAP, "a": _WSA, "d": _WSD}
_PROBE = """<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{soap}" xmlns:a="{wsa}" xmlns:d="{wsd}"
            xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
  <s:Header>
    <a:Action s:mustUnderstand="1">{wsd}/Probe</a:Action>
    <a:MessageID>{message_id}</a:MessageID>
    <a:ReplyTo><a:Address>{wsa}/role/anonymous</a:Address></a:ReplyTo>
    <a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>
  </s:Header>
  <s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>
</s:Envelope>"""
# Replies come from the network: no entity expansion, no DTD or network fetches.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_SIOCGIFADDR = 0x8915


@dataclass(frozen=True, slots=True)
class Discovered:
    endpoint: str  # the device's stable WS-Addressing endpoint, usually urn:uuid:...
    xaddrs: tuple[str, ...]  # device service URLs
    scopes: tuple[str, ...]
    types: tuple[str, ...]
    sender: str  # the address the reply came from

    @property
    def name(self) -> str | None:
        return self._scope("name")

    @property
    def hardware(self) -> str | None:
        return self._scope("hardware")

    def _scope(self, key: str) -> str | None:
        prefix = f"onvif://www.onvif.org/{key}/"
        return next((unquote(s[len(prefix) :]) for s in self.scopes if s.startswith(prefix)), None)

    @property
    def hosts(self) -> set[tuple[str, int]]:
        """``(host, port)`` of each XAddr, to match against the catalog."""
        found = set()
        for xaddr in self.xaddrs:
            with contextlib.suppress(ValueError):
                parts = urlsplit(xaddr)
                if parts.hostname:
                    default = 443 if parts.scheme == "https" else 80
                    found.add((parts.hostname, parts.port or default))
        return found


def interface_address(interface: str) -> str:
    """The IPv4 address of ``interface``, given as an address or as a name (``eth0``)."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.IPv4Address(interface))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            request = struct.pack("256s", interface.encode()[:15])
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
        except OSError:
            raise InvalidInput(
                f"no IPv4 interface named {interface!r} on this host", field="interface"
            ) from None
    return socket.inet_ntoa(reply[20:24])


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.found: dict[str, Discovered] = {}
        self.arrived = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        device = parse_probe_matches(data, self.message_id, str(addr[0]))
        for match in device:
            self.found.setdefault(match.endpoint, match)
            self.arrived.set()


def parse_probe_matches(data: bytes, message_id: str, sender: str) -> list[Discovered]:
    """The devices in a ProbeMatches reply to our Probe ``message_id``; [] for anything else."""
    try:
        envelope = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return []
    if envelope.findtext("s:Header/a:RelatesTo", namespaces=_NS) != message_id:
        return []  # another client's probe, or a Hello/Bye announcement
    found = []
    # ".//" also accepts a ProbeMatch without its ProbeMatches wrapper (seen in the wild).
    for match in envelope.iterfind("s:Body//d:ProbeMatch", namespaces=_NS):
        # wsa:EndpointReference by the spec; some firmwares (and ipycam) put it in d:.
        address = match.findtext("{*}EndpointReference/a:Address", namespaces=_NS)
        endpoint = (address or "").strip()
        xaddrs = tuple((match.findtext("d:XAddrs", namespaces=_NS) or "").split())
        if not endpoint or not xaddrs:
            continue
        found.append(
            Discovered(
                endpoint=endpoint,
                xaddrs=xaddrs,
                scopes=tuple((match.findtext("d:Scopes", namespaces=_NS) or "").split()),
                types=tuple((match.findtext("d:Types", namespaces=_NS) or "").split()),
                sender=sender,
            )
        )
    return found


async def probe(
    *,
    interface: str | None = None,
    host: str | None = None,
    timeout: float = 3.0,
) -> list[Discovered]:
    """Probe for devices until ``timeout`` has passed; sorted by sender address.

    ``host`` probes that one device by unicast (and returns once it answered); otherwise
    the probe is multicast out of ``interface`` (default: the system's multicast route).
    """
    message_id = f"urn:uuid:{uuid.uuid4()}"
    payload = _PROBE.format(soap=_SOAP, wsa=_WSA, wsd=_WSD, message_id=message_id).encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setblocking(False)
        if host is None:
            local = interface_address(interface) if interface else "0.0.0.0"
            sock.bind((local, 0))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)  # this link only
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)  # devices on us
            if interface:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
            target = (MULTICAST_GROUP, PORT)
        else:
            target = (await _resolve(host), PORT)
    except BaseException:
        sock.close()
        raise
    loop = asyncio.get_running_loop()
    transport, collector = await loop.create_datagram_endpoint(
        lambda: _Collector(message_id), sock=sock
    )
    try:
        transport.sendto(payload, target)
        if host is None:
            await asyncio.sleep(timeout)  # multicast: every device answers within the window
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await collector.arrived.wait()
    finally:
        transport.close()
    return sorted(collector.found.values(), key=lambda d: (d.sender, d.endpoint))


async def _resolve(host: str) -> str:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, PORT, family=socket.AF_INET, type=socket.SOCK_DGRAM
        )
    except socket.gaierror:
        raise InvalidInput(f"host name {host!r} not found", field="host") from None
    return str(infos[0][4][0])


def annotate(
    devices: Iterable[Discovered], cameras: Iterable[Camera]
) -> list[tuple[Discovered, str | None]]:
    """Each discovered device with the id of the catalog camera at its address, if any."""
    known = {(c.onvif.host, c.onvif.port): c.id for c in cameras if c.onvif is not None}
    return [
        (device, next((known[h] for h in sorted(device.hosts) if h in known), None))
        for device in devices
    ]


async def discover(
    settings: OnvifSettings,
    cameras: Iterable[Camera],
    *,
    interface: str | None = None,
    host: str | None = None,
    timeout: float | None = None,
) -> list[tuple[Discovered, str | None]]:
    """Probe (unicast to ``host``, else multicast out of ``interface`` or the configured
    one) and mark the devices already in the catalog."""
    found = await probe(
        interface=interface or (None if host else settings.discovery_interface),
        host=host,
        timeout=timeout or settings.discovery_timeout,
    )
    return annotate(found, cameras)
