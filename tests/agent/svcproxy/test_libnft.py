"""The proxy through libnftables in-process (svcproxy.libnft), in network namespaces made
for the test: the same table and traffic as through the nft program, errors raised as
NftError, and nothing of it outside the namespace it was given."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator

import pytest

from sigma.agent.svcproxy.libnft import LibNft, available
from sigma.agent.svcproxy.nft import NftError
from sigma.agent.svcproxy.proxy import ServiceProxy
from sigma.agent.svcproxy.rules import NodeConfig

from .objects import endpoint, endpoint_slice, service
from .test_proxy_e2e import PORT, SLICE_PORT, StaticSource
from .topology import Node, netns_skip_reason

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(netns_skip_reason() is not None, reason=str(netns_skip_reason())),
              pytest.mark.skipif(not available(), reason="libnftables cannot be loaded")]


@pytest.fixture
def node() -> Iterator[Node]:
    with Node(endpoints=3) as n:
        yield n


def test_syncs_in_process_program_the_given_namespace_only(node: Node) -> None:
    nft = LibNft(f"/var/run/netns/{node.node}")
    try:
        source = StaticSource()
        source.services = [service("web", "10.96.0.10", PORT)]
        slice_ = endpoint_slice("web-a", "web", SLICE_PORT, [endpoint(node.ip_of(i)) for i in range(3)])
        slice_["metadata"]["resourceVersion"] = "1"
        source.services[0]["metadata"]["resourceVersion"] = "1"
        source.slices = [slice_]
        proxy = ServiceProxy(source, NodeConfig("10.244.0.0/16"), nft)
        assert proxy.sync().full
        assert set(node.connect_many(node.client, "10.96.0.10", 80, 60)) == {"ep0", "ep1", "ep2"}

        # A new version of the slice (a new object, as the cache hands it out): a partial sync.
        changed = copy.deepcopy(slice_)
        changed["metadata"]["resourceVersion"] = "2"
        changed["endpoints"] = changed["endpoints"][:2]
        source.slices = [changed]
        stats = proxy.sync()
        assert not stats.full and stats.script_bytes > 0
        assert set(node.connect_many(node.client, "10.96.0.10", 80, 40)) == {"ep0", "ep1"}
        assert proxy.sync().script_bytes == 0  # the same objects again: nothing to write

        # One endpoint replaced by another.
        swapped = copy.deepcopy(changed)
        swapped["metadata"]["resourceVersion"] = "3"
        swapped["endpoints"][1] = endpoint(node.ip_of(2))
        source.slices = [swapped]
        assert not proxy.sync().full
        assert set(node.connect_many(node.client, "10.96.0.10", 80, 40)) == {"ep0", "ep2"}

        assert "table ip sigma" in nft.run("list", "tables")
        with pytest.raises(NftError, match="No such file or directory"):
            nft.apply("add rule ip sigma no-such-chain accept\n")
        # The namespace's table, not the machine's: the client's namespace has none.
        client = subprocess.run([*node.enter(node.client), "nft", "list", "tables"], capture_output=True, text=True)
        assert "sigma" not in client.stdout
        proxy.remove()
        assert "sigma" not in nft.run("list", "tables")
    finally:
        nft.close()


def test_a_namespace_that_does_not_exist_is_an_nft_error() -> None:
    with pytest.raises(NftError, match="no-such-netns"):
        LibNft("/var/run/netns/no-such-netns-for-sigma")


def test_a_submitted_script_is_applied_when_waited_for_and_its_error_raised_then(node: Node) -> None:
    nft = LibNft(f"/var/run/netns/{node.node}")
    try:
        wait = nft.submit("table ip sigma-submit {}\nadd chain ip sigma-submit c\n")
        wait()
        assert "chain c" in nft.run("list", "table", "ip", "sigma-submit")
        refused = nft.submit("add rule ip sigma-submit no-such-chain accept\n")
        with pytest.raises(NftError, match="No such file or directory"):
            refused()
        nft.apply("delete table ip sigma-submit\n")  # the context still works after an error
        assert "sigma-submit" not in nft.run("list", "tables")
    finally:
        nft.close()
