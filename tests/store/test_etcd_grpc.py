"""The HTTP/2 gRPC client under etcd's store (etcd_grpc.py).

Protocol corners etcd rarely shows (GOAWAY, refused streams, CONTINUATION, padding, PING,
silence) are played by a scripted peer on a loopback socket: the network is the seam, the
client is the real one. What etcd itself does (large values, refusals, many threads at once,
a stopped process) is tested against a real etcd."""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import hpack
import pytest

import sigma.store.etcd_rpc as etcd_rpc
from sigma.store.contract import KeyValue, StoreUnavailable
from sigma.store.etcd import EtcdStore
from sigma.store.etcd_grpc import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PREFACE,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    Broken,
    Connection,
    NotSent,
    Status,
    grpc_message,
)
from sigma.store.etcd_rpc import EtcdError
from sigma.store.etcd_server import EtcdServer

Frame = tuple[int, int, int, bytes]  # type, flags, stream, payload


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BHBBI", len(payload) >> 16, len(payload) & 0xFFFF, kind, flags, stream) + payload


class Peer:
    """One scripted HTTP/2 server connection: ``script(peer)`` runs in a thread once the
    client's preface arrived; it reads the client's frames and writes its own."""

    def __init__(self, script: Callable[[Peer], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.script = script
        self.encoder = hpack.Encoder()
        self.received: list[Frame] = []
        self.error: BaseException | None = None
        self.sock: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.sock, _ = self.listener.accept()
            self.sock.settimeout(5)
            assert self._exactly(len(PREFACE)) == PREFACE
            self.script(self)
        except BaseException as err:  # reported by the test through close()
            self.error = err

    def _exactly(self, size: int) -> bytes:
        assert self.sock is not None
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client closed")
            data += chunk
        return data

    def read(self) -> Frame:
        head = self._exactly(9)
        length = int.from_bytes(head[:3], "big")
        got = (head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF, self._exactly(length))
        self.received.append(got)
        return got

    def read_until(self, kind: int, flags: int | None = None) -> Frame:
        while True:
            got = self.read()
            if got[0] == kind and (flags is None or got[1] & flags == flags):
                return got

    def send(self, *frames: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(b"".join(frames))

    def headers(self, fields: list[tuple[str, str]]) -> bytes:
        return self.encoder.encode(fields)

    def answer(self, stream: int, message: bytes) -> None:
        """A whole successful unary answer: headers, one message, OK trailers."""
        self.send(frame(HEADERS, END_HEADERS, stream, self.headers([(":status", "200"),
                                                                    ("content-type", "application/grpc")])),
                  frame(DATA, 0, stream, grpc_message(message)),
                  frame(HEADERS, END_HEADERS | END_STREAM, stream, self.headers([("grpc-status", "0")])))

    def close(self) -> None:
        self.thread.join(timeout=10)
        for sock in (self.sock, self.listener):
            if sock is not None:
                sock.close()
        if self.error is not None:
            raise self.error


MakePeer = Callable[[Callable[[Peer], None]], tuple[Peer, Connection]]


@pytest.fixture
def peer_of() -> Iterator[MakePeer]:
    made: list[tuple[Peer, Connection]] = []

    def make(script: Callable[[Peer], None]) -> tuple[Peer, Connection]:
        peer = Peer(script)
        conn = Connection("127.0.0.1", peer.port)
        made.append((peer, conn))
        return peer, conn

    yield make
    for peer, conn in made:
        conn.close()
        peer.close()


def test_a_ping_is_answered_and_settings_are_acknowledged(peer_of: MakePeer) -> None:
    acks: dict[str, Frame] = {}

    def script(peer: Peer) -> None:
        peer.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 5, 32768)), frame(PING, 0, 0, b"12345678"))
        while len(acks) < 2:
            kind, flags, _, payload = peer.read()
            if flags & ACK and kind in (PING, SETTINGS):
                acks["ping" if kind == PING else "settings"] = (kind, flags, 0, payload)

    peer, _ = peer_of(script)
    peer.close()
    assert acks["ping"][3] == b"12345678"
    assert acks["settings"][3] == b""
    client_settings = next(f for f in peer.received if f[0] == SETTINGS and not f[1] & ACK)
    assert struct.pack(">HI", 1, 0) in client_settings[3]  # no dynamic HPACK table, please


def test_calls_beyond_goaway_were_not_sent_and_the_connection_takes_no_more(peer_of: MakePeer) -> None:
    def script(peer: Peer) -> None:
        first = peer.read_until(DATA, END_STREAM)[2]
        second = peer.read_until(DATA, END_STREAM)[2]
        assert second > first
        peer.send(frame(GOAWAY, 0, 0, struct.pack(">II", first, 0)))
        peer.answer(first, b"one")

    _, conn = peer_of(script)
    calls = [conn.start("/x.Y/Z", b"a", 5), conn.start("/x.Y/Z", b"b", 5)]
    for call in calls:
        assert call.done.wait(5)
    assert calls[0].outcome() == [b"one"]
    with pytest.raises(NotSent, match="going away"):
        calls[1].outcome()
    assert not conn.usable
    with pytest.raises(NotSent):
        conn.unary("/x.Y/Z", b"c", 5)


def test_a_refused_stream_was_not_sent_and_another_reset_may_have_been(peer_of: MakePeer) -> None:
    def script(peer: Peer) -> None:
        refused = peer.read_until(DATA, END_STREAM)[2]
        peer.send(frame(RST_STREAM, 0, refused, struct.pack(">I", REFUSED_STREAM)))
        failed = peer.read_until(DATA, END_STREAM)[2]
        peer.send(frame(RST_STREAM, 0, failed, struct.pack(">I", 2)))
        peer.answer(peer.read_until(DATA, END_STREAM)[2], b"fine")

    _, conn = peer_of(script)
    with pytest.raises(NotSent):
        conn.unary("/x.Y/Z", b"a", 5)
    with pytest.raises(Broken, match="error 2"):
        conn.unary("/x.Y/Z", b"b", 5)
    assert conn.unary("/x.Y/Z", b"c", 5) == [b"fine"]  # a reset ends one call, not the connection


def test_continued_headers_padded_data_and_split_messages_are_read(peer_of: MakePeer) -> None:
    def script(peer: Peer) -> None:
        stream = peer.read_until(DATA, END_STREAM)[2]
        block = peer.headers([(":status", "200"), ("content-type", "application/grpc"), ("x-long", "v" * 300)])
        message = grpc_message(b"hello world")
        pad = 7
        peer.send(frame(HEADERS, 0, stream, block[:10]), frame(CONTINUATION, 0, stream, block[10:20]),
                  frame(CONTINUATION, END_HEADERS, stream, block[20:]),
                  frame(DATA, PADDED, stream, bytes([pad]) + message[:8] + b"\0" * pad),
                  frame(DATA, 0, stream, message[8:]),
                  frame(HEADERS, END_HEADERS | END_STREAM, stream, peer.headers([("grpc-status", "0")])))

    _, conn = peer_of(script)
    assert conn.unary("/x.Y/Z", b"a", 5) == [b"hello world"]


def test_an_error_status_comes_with_its_percent_decoded_message(peer_of: MakePeer) -> None:
    def script(peer: Peer) -> None:
        stream = peer.read_until(DATA, END_STREAM)[2]
        peer.send(frame(HEADERS, END_HEADERS | END_STREAM, stream, peer.headers([
            (":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "3"),
            ("grpc-message", "bad%20key%3A %25")])))

    _, conn = peer_of(script)
    assert conn.unary("/x.Y/Z", b"a", 5) == Status(3, "bad key: %")


def test_a_silent_peer_fails_the_call_within_its_timeout_and_the_connection_with_it(peer_of: MakePeer) -> None:
    def script(peer: Peer) -> None:
        peer.read_until(DATA, END_STREAM)
        time.sleep(2)

    _, conn = peer_of(script)
    started = time.monotonic()
    with pytest.raises(Broken, match="did not answer"):
        conn.unary("/x.Y/Z", b"a", 0.5)
    assert time.monotonic() - started < 2
    assert not conn.usable


def test_no_peer_at_all_is_not_sent() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(NotSent, match=f"cannot connect to etcd at 127.0.0.1:{port}"):
        Connection("127.0.0.1", port)


# -- against a real etcd ---------------------------------------------------------------
@pytest.mark.e2e
def test_a_value_larger_than_every_window_and_frame_goes_both_ways(etcd_store: EtcdStore) -> None:
    value = os.urandom(600_000) * 2  # 1.2 MB: many frames, beyond etcd's initial 64 KiB windows
    written = etcd_store.create("/big/a", value)
    assert etcd_store.get("/big/a") == written
    assert written.value == value
    watch = etcd_store.watch("/big/", written.mod_revision - 1)
    assert [e.kv.value for e in watch.wait(5)] == [value]
    watch.close()


@pytest.mark.e2e
def test_a_request_etcd_refuses_says_why_and_the_connection_carries_on(etcd_store: EtcdStore) -> None:
    with pytest.raises(EtcdError, match=r"received message larger than max \(3000\d+ vs\. \d+\)"):
        etcd_store.create("/big/b", b"x" * 3_000_000)  # over etcd's request limit
    assert etcd_store.get("/big/b") is None
    assert etcd_store.create("/big/c", b"small").value == b"small"
    assert len([c for c in etcd_store.rpc.channel._connections if c is not None]) == 1


@pytest.mark.e2e
def test_many_threads_share_one_connection_and_every_write_gets_its_own_revision(etcd_store: EtcdStore) -> None:
    results: list[KeyValue] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(25):
            kv = etcd_store.create(f"/t/{n}/{i}", b"v")
            with lock:
                results.append(kv)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    revisions = sorted(kv.mod_revision for kv in results)
    assert revisions == list(range(revisions[0], revisions[0] + 800))
    assert len(etcd_store.list("/t/")[0]) == 800


@pytest.mark.e2e
def test_a_write_to_a_stopped_etcd_is_reported_as_maybe_applied_within_the_timeout(
        etcd: EtcdServer, etcd_store: EtcdStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(etcd_rpc, "CALL_TIMEOUT_S", 1.0)
    kv = etcd_store.create("/s/a", b"1")
    assert etcd.process is not None
    os.killpg(etcd.process.pid, signal.SIGSTOP)
    _wait_stopped(etcd.process.pid)  # a group stop reaches etcd's threads a moment later
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="may have been applied"):
        etcd_store.update("/s/a", b"2", kv.mod_revision)
    assert time.monotonic() - started < 5
    with pytest.raises(StoreUnavailable):  # a read is retried on every endpoint, then given up
        etcd_store.get("/s/a")
    os.killpg(etcd.process.pid, signal.SIGCONT)
    assert etcd_store.get("/s/a") is not None  # a fresh connection once etcd is back


def _wait_stopped(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                states.append(stat.read().rsplit(")", 1)[1].split()[0])
        if all(state == "T" for state in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"etcd (pid {pid}) did not stop")
