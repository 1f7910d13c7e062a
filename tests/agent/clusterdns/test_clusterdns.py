"""Cluster DNS with a real dnslib client over real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

from sigma.agent.clusterdns.records import build_zone
from sigma.agent.clusterdns.server import ClusterDNS

from ..svcproxy.objects import endpoint, endpoint_slice, service

pytestmark = pytest.mark.e2e
DOMAIN = "cluster.local"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream(BaseResolver):  # type: ignore[misc]
    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.7"), ttl=60))
        return reply


@pytest.fixture
def upstream() -> Iterator[int]:
    port = free_port()
    server = DNSServer(Upstream(), address="127.0.0.1", port=port, logger=type("Q", (), {
        "__getattr__": lambda self, n: (lambda *a: None)})())
    server.start_thread()
    yield port
    server.stop()
    server.server.server_close()


@pytest.fixture
def dns(upstream: int) -> Iterator[int]:
    services = [service("web", "10.96.0.10", [{"name": "http", "port": 80}]),
                service("db", "None", [{"name": "pg", "port": 5432}]),
                service("ext", "", [], type="ExternalName", externalName="example.org")]
    slices = [endpoint_slice("db-a", "db", [{"name": "pg", "port": 5432}],
                             [endpoint("10.244.1.5", hostname="db-0"), endpoint("10.244.2.6"),
                              endpoint("10.244.3.7", ready=False)])]
    zone = build_zone(services, slices, DOMAIN)
    port = free_port()
    server = ClusterDNS(lambda: zone, "127.0.0.1", port, upstreams=[("127.0.0.1", port), ("127.0.0.1", upstream)])
    server.start()
    yield port
    server.stop()


def ask(port: int, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", port, tcp=tcp, timeout=5))


def answers(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr)


def test_service_names(dns: int) -> None:
    reply = ask(dns, "web.default.svc.cluster.local")
    assert reply.header.rcode == RCODE.NOERROR and answers(reply) == ["10.96.0.10"]
    assert ask(dns, "WEB.default.svc.cluster.local", tcp=True).rr[0].rdata == A("10.96.0.10")
    srv = ask(dns, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert answers(srv) == ["0 100 80 web.default.svc.cluster.local."]
    aaaa = ask(dns, "web.default.svc.cluster.local", "AAAA")
    assert aaaa.header.rcode == RCODE.NOERROR and aaaa.rr == []
    assert str(ask(dns, "ext.default.svc.cluster.local").rr[0].rdata) == "example.org."


def test_headless_service_names(dns: int) -> None:
    assert answers(ask(dns, "db.default.svc.cluster.local")) == ["10.244.1.5", "10.244.2.6"]
    assert answers(ask(dns, "db-0.db.default.svc.cluster.local")) == ["10.244.1.5"]
    srv = ask(dns, "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert answers(srv) == ["0 100 5432 10-244-2-6.db.default.svc.cluster.local.",
                            "0 100 5432 db-0.db.default.svc.cluster.local."]


def test_pod_names_and_nxdomain(dns: int) -> None:
    assert answers(ask(dns, "10-244-1-9.default.pod.cluster.local")) == ["10.244.1.9"]
    for name in ("nope.default.svc.cluster.local", "10-244-1.default.pod.cluster.local", "x.cluster.local"):
        assert ask(dns, name).header.rcode == RCODE.NXDOMAIN, name
    assert ask(dns, "default.svc.cluster.local").header.rcode == RCODE.NOERROR  # exists, no data


def test_other_names_are_forwarded_and_never_to_itself(dns: int) -> None:
    reply = ask(dns, "example.com")
    assert answers(reply) == ["192.0.2.7"]


def test_forwarding_without_an_answer_is_servfail(upstream: int) -> None:
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    dead.bind(("127.0.0.1", 0))
    port = free_port()
    server = ClusterDNS(lambda: build_zone([], [], DOMAIN), "127.0.0.1", port, upstreams=[dead.getsockname()])
    server.resolver.forward_timeout = 0.3
    server.start()
    try:
        assert ask(port, "example.com").header.rcode == RCODE.SERVFAIL
    finally:
        server.stop()
        dead.close()


def test_bad_queries_are_survived(dns: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff", ("127.0.0.1", dns))  # broken qname
        data, _ = s.recvfrom(512)
        assert data[:2] == b"\x12\x34" and data[3] & 0x0F == RCODE.FORMERR
        s.sendto(b"\x01", ("127.0.0.1", dns))  # not even a header: no answer, no crash
    with socket.create_connection(("127.0.0.1", dns), timeout=5) as c:  # announces 65535 bytes, sends 3
        c.sendall(struct.pack("!H", 65535) + b"abc")
    assert ask(dns, "any.default.svc.cluster.local", "ANY").header.rcode == RCODE.NOTIMP
    assert answers(ask(dns, "web.default.svc.cluster.local")) == ["10.96.0.10"]  # still serving


def test_big_udp_answers_are_truncated() -> None:
    eps = [endpoint(f"10.244.{i // 200}.{i % 200 + 1}") for i in range(100)]
    zone = build_zone([service("big", "None", [])], [endpoint_slice("big-a", "big", [], eps)], DOMAIN)
    port = free_port()
    server = ClusterDNS(lambda: zone, "127.0.0.1", port, upstreams=[])
    server.start()
    try:
        udp = ask(port, "big.default.svc.cluster.local")
        assert udp.header.tc == 1 and udp.rr == []
        assert len(ask(port, "big.default.svc.cluster.local", tcp=True).rr) == 100
    finally:
        server.stop()
