"""Listening ports, taken or refused at start and never clashing silently.

Every port Sigma listens on is one of two kinds:

- asked for by the user (a flag on the command line): if it is taken the command stops at
  once with a message naming the address, the port and the flag to change (``PortInUse``);
- a default nobody asked for: if it is taken another free one is used and said so (the
  Node, the kubeconfig or the banner publishes the port actually used).

``bind_tcp`` binds the listening socket itself, so the check and the use are one step: a
server handed that socket (uvicorn's ``sockets=``) cannot lose the port to a race.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

WILDCARDS = ("", "0.0.0.0", "::")


class PortInUse(Exception):
    """A port the user asked for is taken: ``str()`` is the message to print."""

    def __init__(self, host: str, port: int, flag: str, hint: str = "") -> None:
        self.host, self.port, self.flag = host, port, flag
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(f"port {port} is already in use on {where or port} (another program, or another "
                         f"Sigma on this machine, listens there): choose another with {flag}"
                         + (f" {hint}" if hint else ""))


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host.strip("[]")).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET6 if host == "::" else socket.AF_INET


def bind_tcp(host: str, port: int, flag: str, hint: str = "") -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: any free one), not yet listening.
    Raises PortInUse when the port is taken, OSError for anything else (e.g. an address this
    machine does not have)."""
    host = host.strip("[]")
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        # As uvicorn does: a port still in TIME_WAIT from our last run may be reused, one a
        # live program listens on may not (Linux refuses it without SO_REUSEPORT).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sock.family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise PortInUse(host, port, flag, hint) from None
        if err.errno == errno.EADDRNOTAVAIL:
            raise OSError(err.errno, f"cannot listen on {host}: this machine has no such address ({flag})") from None
        raise
    return sock


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` can be bound on ``host`` now (without SO_REUSEPORT: a port others
    share with SO_REUSEPORT counts as taken)."""
    try:
        bind_tcp(host, port, "").close()
        return True
    except PortInUse:
        return False


def default_or_free(host: str, port: int) -> int:
    """``port`` if it is free on ``host``, else a free one the kernel picks."""
    if port and port_free(host, port):
        return port
    with bind_tcp(host, 0, "") as sock:
        return int(sock.getsockname()[1])


def require_free(host: str, port: int, flag: str, hint: str = "") -> None:
    """Raise PortInUse unless ``port`` (not 0) is free on ``host``."""
    if port:
        bind_tcp(host, port, flag, hint).close()


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in WILDCARDS


def local_addresses() -> list[str]:
    """This machine's IPv4 interface addresses other than loopback (one per interface, the
    primary: what a certificate for a listener on 0.0.0.0 must name)."""
    import fcntl
    import struct

    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
            except OSError:
                continue  # no IPv4 address on it
            address = socket.inet_ntoa(packed[20:24])
            if not ipaddress.ip_address(address).is_loopback:
                found.append(address)
    return list(dict.fromkeys(found))


def primary_address() -> str:
    """The address other machines most likely reach this one on: the source address of
    the default route (a UDP connect sends nothing), else the first interface's, else
    loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere for real
            address = str(sock.getsockname()[0])
            if not ipaddress.ip_address(address).is_loopback:
                return address
    except OSError:
        pass
    return next(iter(local_addresses()), "127.0.0.1")


def url_host(host: str) -> str:
    """``host`` as it appears in a URL (IPv6 in brackets)."""
    host = host.strip("[]")
    return f"[{host}]" if ":" in host else host
