"""The DNS server: dnslib's UDP and TCP servers with a resolver over the shared cache.

Names inside the cluster domain are answered from the zone (authoritative; NXDOMAIN for a
name that does not exist, never a wait). Other names go to the host's resolvers from
/etc/resolv.conf, one after the other, each with a timeout: SERVFAIL when none answers.
An upstream that is this server itself is skipped (a node whose resolv.conf points at the
cluster DNS would otherwise send a query round in circles).

Hostile input: a packet that does not parse gets FORMERR (or nothing, when not even the
header does); a TCP client has TCP_TIMEOUT_S to send its one query and its length prefix
bounds the read; ANY is answered NOTIMP (RFC 8482 lets a server decline it); UDP answers
are cut to 512 bytes, or to the EDNS size the client announced (at most 4096), with the TC
flag, so the client retries over TCP.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from dnslib import CNAME, OPCODE, QTYPE, RCODE, RR, SRV, A, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

from sigma.agent.clusterdns.records import Record, Zone, in_domain, lookup

log = logging.getLogger("sigma.agent.clusterdns")

TTL = 5  # seconds: Services change; CoreDNS' kubernetes plugin answers with 5 too
FORWARD_TIMEOUT_S = 2.0
TCP_TIMEOUT_S = 5.0
UDP_LIMIT, EDNS_MAX = 512, 4096
MAX_ANSWERS = 256  # a headless service with thousands of endpoints answers with some of them


def upstreams_from_resolv_conf(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append((parts[1], 53))
    return out


def _rr(name: str, record: Record) -> RR:
    if record.rtype == "A":
        return RR(name, QTYPE.A, rdata=A(record.value), ttl=TTL)
    if record.rtype == "CNAME":
        return RR(name, QTYPE.CNAME, rdata=CNAME(record.value + "."), ttl=TTL)
    priority, weight, port, target = record.value.split()
    return RR(name, QTYPE.SRV, rdata=SRV(int(priority), int(weight), int(port), target + "."), ttl=TTL)


class ClusterResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: Callable[[], Zone], upstreams: list[tuple[str, int]],
                 forward_timeout: float = FORWARD_TIMEOUT_S) -> None:
        self.zone, self.upstreams, self.forward_timeout = zone, upstreams, forward_timeout
        self.own: set[tuple[str, int]] = set()  # this server's addresses: never forwarded to

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        if request.header.opcode != OPCODE.QUERY or len(request.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP if request.header.opcode != OPCODE.QUERY else RCODE.FORMERR
            return reply
        q = request.q
        if q.qtype == QTYPE.ANY:
            reply.header.rcode = RCODE.NOTIMP
            return reply
        zone = self.zone()
        name = str(q.qname)
        if not in_domain(zone, name):
            return self.forward(request)
        reply.header.aa = 1
        records = lookup(zone, name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        wanted = QTYPE[q.qtype]
        for record in records[:MAX_ANSWERS]:
            if record.rtype == wanted or (record.rtype == "CNAME" and wanted == "A"):
                reply.add_answer(_rr(name, record))
                if record.rtype == "SRV":  # the targets' addresses, saving a round trip
                    target = record.value.split()[3]
                    for extra in (lookup(zone, target) or [])[:1]:
                        reply.add_ar(_rr(target + ".", extra))
        return reply

    def forward(self, request: DNSRecord) -> DNSRecord:
        for host, port in self.upstreams:
            if (host, port) in self.own:
                continue
            try:
                answer = request.send(host, port, timeout=self.forward_timeout)
                return DNSRecord.parse(answer)
            except (OSError, DNSError, struct.error) as err:
                log.debug("upstream %s:%d: %s", host, port, err)
        reply = request.reply()
        reply.header.rcode = RCODE.SERVFAIL
        return reply


class Handler(DNSHandler):  # type: ignore[misc]
    """dnslib's handler with bounded reads and per-query UDP size limits."""

    def handle(self) -> None:
        tcp = self.server.socket_type == socket.SOCK_STREAM
        try:
            if tcp:
                self.request.settimeout(TCP_TIMEOUT_S)
                data = self._read_tcp_query()
            else:
                data, connection = self.request
            if not data:
                return
            answer = self._answer(data, limit=None if tcp else UDP_LIMIT)
            if answer is None:
                return
            if tcp:
                self.request.sendall(struct.pack("!H", len(answer)) + answer)
            else:
                connection.sendto(answer, self.client_address)
        except OSError as err:  # a client gone or too slow: its problem, not the server's
            log.debug("dns client %s: %s", self.client_address, err)

    def _read_tcp_query(self) -> bytes:
        data = b""
        while len(data) < 2:
            chunk = self.request.recv(2 - len(data))
            if not chunk:
                return b""
            data += chunk
        length = struct.unpack("!H", data)[0]  # at most 65535: the prefix bounds the read
        body = b""
        while len(body) < length:
            chunk = self.request.recv(length - len(body))
            if not chunk:
                return b""
            body += chunk
        return body

    def _answer(self, data: bytes, limit: int | None) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except Exception:
            if len(data) < 12:
                return None  # not even a header to answer to
            header = bytearray(data[:12])
            header[2] = 0x80 | (header[2] & 0x78)  # QR, the request's opcode
            header[3] = RCODE.FORMERR
            header[4:12] = b"\x00" * 8  # no sections
            return bytes(header)
        try:
            reply = self.server.resolver.resolve(request, self)
        except Exception:
            log.exception("dns query %s failed", request.q.qname if request.questions else "?")
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
        packed = reply.pack()
        if limit is not None:
            edns = next((r for r in request.ar if r.rtype == QTYPE.OPT), None)
            if edns is not None:
                limit = max(UDP_LIMIT, min(EDNS_MAX, int(edns.rclass)))
            if len(packed) > limit:
                packed = reply.truncate().pack()
        return bytes(packed)


class ClusterDNS:
    """Serves on ADDRESS:PORT over UDP and TCP until stop()."""

    def __init__(self, zone: Callable[[], Zone], address: str, port: int,
                 upstreams: list[tuple[str, int]] | None = None) -> None:
        self.resolver = ClusterResolver(zone, upstreams_from_resolv_conf() if upstreams is None else upstreams)
        self.resolver.own = {(address, port), ("127.0.0.1", port)} if port == 53 else {(address, port)}
        quiet = _QuietLogger()
        self.servers = [DNSServer(self.resolver, address=address, port=port, tcp=tcp, handler=Handler, logger=quiet)
                        for tcp in (False, True)]
        self.address, self.port = address, port

    def start(self) -> None:
        for server in self.servers:
            server.start_thread()
        log.info("cluster DNS serving on %s:%d (udp, tcp)", self.address, self.port)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            server.server.server_close()


class _QuietLogger:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None

