"""Ports: one the user asked for is refused when taken, with the flag to change it; a
default that is taken gives way to a free one."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sigma.api.auth import serving_names
from sigma.ports import PortInUse, bind_tcp, default_or_free, local_addresses, port_free, require_free


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_taken_port_is_refused_naming_port_and_flag(taken: int) -> None:
    with pytest.raises(PortInUse) as err:
        bind_tcp("127.0.0.1", taken, "--port", "(or leave it out)")
    assert f"port {taken} is already in use" in str(err.value)
    assert "--port (or leave it out)" in str(err.value)
    with pytest.raises(PortInUse, match="--listen"):
        require_free("0.0.0.0", taken, "--listen")  # the wildcard overlaps 127.0.0.1
    assert not port_free("127.0.0.1", taken)


def test_a_taken_default_gives_way_to_a_free_port(taken: int) -> None:
    other = default_or_free("127.0.0.1", taken)
    assert other != taken and port_free("127.0.0.1", other)
    free = default_or_free("127.0.0.1", other)
    assert free == other


def test_port_zero_is_any_free_port() -> None:
    with bind_tcp("127.0.0.1", 0, "--port") as sock:
        assert sock.getsockname()[1] > 0
    require_free("127.0.0.1", 0, "--port")  # never refused


def test_a_wildcard_listener_certificate_names_every_address() -> None:
    assert serving_names("127.0.0.2") == ["127.0.0.2"]
    assert serving_names("[::1]") == ["::1"]
    names = serving_names("0.0.0.0")
    assert set(local_addresses()) <= set(names) and socket.getfqdn() in names
