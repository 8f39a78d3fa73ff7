"""Where the gateway may connect on a user's behalf: camera, ONVIF and snapshot URLs (SSRF).

Anyone who may add a camera names a URL the gateway then opens from inside the video
network. Unchecked, that reaches the gateway's own API on loopback, a cloud metadata
service, or any host the gateway can route to. So:

* the scheme must fit the purpose (``rtsp``/``rtsps`` for streams, ``http``/``https`` for
  ONVIF and snapshots; ``demo://`` is the in-process synthetic camera, no network);
* the host is checked **after** DNS resolution, every address it resolves to: spellings
  such as ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` or ``[::ffff:127.0.0.1]`` end up as
  the address they mean, which is what is judged;
* each address must lie in ``security.camera_networks`` (private ranges by default) and
  not in ``security.blocked_networks`` (metadata services); loopback, link-local and
  unspecified addresses, and this host's own service port, are refused unless the matching
  ``allow_*`` setting says otherwise;
* the check runs when a camera is created or changed (:meth:`NetPolicy.check`) and again
  at every connect (:meth:`NetPolicy.pin`, in the source's thread): DNS may change in
  between, so the stream is then opened at the checked address itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Collection, Iterable
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from gateway import errors
from gateway.redact import mask_url

if TYPE_CHECKING:  # settings import the hub, which imports the adapters, which import this
    from gateway.settings import SecuritySettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]

# The demo adapter's scheme (adapters/demo.py): synthesised in-process, never a socket.
DEMO_SCHEME = "demo"
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Purpose(StrEnum):
    STREAM = "stream"  # RTSP through FFmpeg
    HTTP = "http"  # ONVIF SOAP, snapshot JPEGs


_SCHEMES = {Purpose.STREAM: ("rtsp", "rtsps"), Purpose.HTTP: ("http", "https")}


class DestinationRefused(errors.InvalidInput):
    """A URL the network policy does not let the gateway open."""

    code = "destination_not_allowed"


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (blocking: call it off the event loop).

    ``getaddrinfo`` is also what FFmpeg uses, so numeric oddities (``2130706433``,
    ``0x7f.1``) come out as the same address FFmpeg would connect to.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise errors.CameraUnreachable(f"host name {host!r} does not resolve") from exc
    # sockaddr[0] is the address text; an IPv6 one may carry a %zone suffix.
    hosts = (str(info[4][0]).split("%")[0] for info in infos)
    return list(dict.fromkeys(ipaddress.ip_address(h) for h in hosts))


def _embedded_v4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is what it reaches."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_local(address: IPAddress) -> bool:
    """True if ``address`` belongs to this host: binding to it succeeds only then."""
    if address.is_loopback or address.is_unspecified:
        return True
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


class NetPolicy:
    def __init__(
        self,
        settings: SecuritySettings,
        own_ports: Collection[int] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        self.own_ports = frozenset(own_ports)
        self._resolve = resolver

    # --- the checks ----------------------------------------------------------------------

    def _split(self, url: str, purpose: Purpose, field: str) -> tuple[str, str, int] | None:
        """(scheme, host, port), or None for ``demo://``; refuses other schemes."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise DestinationRefused(f"{field} is not a valid URL", field=field) from None
        scheme = parts.scheme.lower()
        if purpose is Purpose.STREAM and scheme == DEMO_SCHEME:
            return None
        allowed = _SCHEMES[purpose]
        if scheme not in allowed:
            # The scheme is not echoed: in "user:pw@host" urlsplit takes "user" for it.
            names = " or ".join(f"{s}://" for s in allowed)
            raise DestinationRefused(f"{field} must be a {names} URL", field=field)
        if not parts.hostname:
            raise DestinationRefused(f"{field} has no host", field=field)
        return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]

    def judge(self, address: IPAddress, port: int) -> str | None:
        """Why ``address:port`` is refused, or None if the gateway may connect to it."""
        s = self.settings
        reached = _embedded_v4(address) or address
        if any(reached in net or address in net for net in s.blocked_networks):
            return "a blocked network (cloud metadata service)"
        if reached.is_loopback or reached.is_unspecified:
            if not s.allow_loopback_cameras:
                return "loopback (this host itself)"
        elif reached.is_link_local:
            if not s.allow_link_local_cameras:
                return "link-local"
        elif not any(reached in net or address in net for net in s.camera_networks):
            return "outside the configured camera networks"
        if port in self.own_ports and not s.allow_own_ports and _is_local(reached):
            return "this gateway's own service port"
        return None

    def _check_addresses(
        self, addresses: Iterable[IPAddress], host: str, port: int, what: str, field: str
    ) -> IPAddress:
        chosen: IPAddress | None = None
        for address in addresses:
            why = self.judge(address, port)
            if why is not None:
                # One bad address refuses the name: a resolver that mixes a camera address
                # with 127.0.0.1 is an attack, and FFmpeg might pick either.
                shown = host if host == str(address) else f"{host} ({address})"
                raise DestinationRefused(f"{what} {shown} is not allowed: {why}", field=field)
            chosen = chosen or address
        if chosen is None:
            raise errors.CameraUnreachable(f"host name {host!r} does not resolve")
        return chosen

    def check_sync(self, url: str, purpose: Purpose, *, field: str = "url") -> IPAddress | None:
        """Resolve and judge ``url`` (blocking); the first allowed address, None for demo."""
        split = self._split(url, purpose, field)
        if split is None:
            return None
        _, host, port = split
        return self._check_addresses(self._resolve(host, port), host, port, field, field)

    async def check(
        self, url: str, purpose: Purpose, *, field: str = "url", unresolved_ok: bool = True
    ) -> None:
        """Judge ``url`` before it is stored: :class:`DestinationRefused` (422) if refused.

        A name that does not resolve yet passes when ``unresolved_ok`` (a camera may be
        catalogued before its DNS entry exists); it is judged again at every connect.
        """
        try:
            await asyncio.to_thread(self.check_sync, url, purpose, field=field)
        except errors.CameraUnreachable:
            if not unresolved_ok:
                message = f"{field}: the host name does not resolve"
                raise DestinationRefused(message, field=field) from None

    async def check_host(self, host: str, port: int, *, field: str = "host") -> None:
        """Judge an ONVIF device address given as host and port (HTTP)."""
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # a bare IPv6 literal
        await self.check(f"http://{host}:{port}/", Purpose.HTTP, field=field)

    def pin(self, url: str, purpose: Purpose) -> str:
        """``url`` with its host replaced by the checked address (blocking; at connect time).

        Connecting to the address that was judged closes the window in which a second DNS
        answer (rebinding) could send FFmpeg somewhere else. Raises
        :class:`gateway.errors.SourceError` subclasses, as any failed connect does.
        """
        split = self._split(url, purpose, "url")
        if split is None:
            return url
        _, host, port = split
        try:
            address = self._check_addresses(self._resolve(host, port), host, port, "host", "url")
        except DestinationRefused as exc:
            raise NotAllowed(f"{mask_url(url)}: {exc.message}") from None
        parts = urlsplit(url)
        userinfo, _, _ = parts.netloc.rpartition("@")
        literal = str(address) if address.version == 4 else f"[{address}]"
        netloc = f"{userinfo}@" if userinfo else ""
        netloc += f"{literal}:{parts.port}" if parts.port else literal
        return urlunsplit(parts._replace(netloc=netloc))


class NotAllowed(errors.SourceError, PermissionError):
    """At connect time: the camera's address is refused by the network policy."""

    code = "camera_destination_not_allowed"
    reason = "refused"
