"""CoalescingTransport: a response head goes out with the body written after it, or alone on
the event loop's next turn."""

from __future__ import annotations

import asyncio

from sigma.api.coalesce import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def test_a_head_and_the_body_after_it_are_one_write() -> None:
    async def run() -> list[bytes]:
        inner = Recorder()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.write(HEAD)
        transport.write(b"{}")
        await asyncio.sleep(0)
        return inner.writes

    assert asyncio.run(run()) == [HEAD + b"{}"]


def test_a_head_with_nothing_after_it_goes_out_on_the_next_turn() -> None:
    async def run() -> tuple[list[bytes], list[bytes]]:
        inner = Recorder()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.write(HEAD)  # a watch: its first event may come much later
        before = list(inner.writes)
        await asyncio.sleep(0)
        transport.write(b"chunk")
        return before, inner.writes

    before, after = asyncio.run(run())
    assert before == [] and after == [HEAD, b"chunk"]


def test_closing_sends_a_held_head_first_and_other_calls_reach_the_transport() -> None:
    async def run() -> tuple[list[bytes], bool, object]:
        inner = Recorder()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.write(b"not a head")
        transport.write(HEAD)
        transport.close()
        await asyncio.sleep(0)
        return inner.writes, inner.closed, transport.get_extra_info("peername")

    writes, closed, peer = asyncio.run(run())
    assert writes == [b"not a head", HEAD] and closed and peer == ("127.0.0.1", 1)
