"""Whom the master's P2P tracker believes, against a real `sigma master` with authentication
on: a viewer and a bootstrap token cannot touch it, a node speaks only for its own peer,
malformed bodies are 400s, and a node that poisons the swarm (a wrong size, a piece table
of garbage it serves) costs a pull the swarm, never the image: the pull falls back to the
registry and stores the blob with its true sha256. Peers serve pieces only to holders of
the blob's piece token, which only node identities get from the tracker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sigma.agent.images import ImageStore, sha256_file
from sigma.agent.pulls import ImageOptions, ImagePulls, start_pulls
from sigma.p2p.download import TrackerClient, seed_blob
from sigma.p2p.peer import PeerServer
from tests.api.auth_fixtures import AuthMaster, start_auth_master

from .conftest import LocalRegistry, needs_registry, push_image, sha

pytestmark = [needs_registry, pytest.mark.e2e]
MIB = 1 << 20
D = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    # Pulls talk to the tracker many times a second: the default per-client rate, not the
    # fixture's 20/s (429s would only make the pulls fall back, hiding what is tested).
    yield from start_auth_master(Path(tmp_path_factory.mktemp("tracker-trust")), "--no-controllers",
                                 "--rate-limit", "200:400")


def join(master: AuthMaster, node: str) -> httpx.Client:
    bootstrap = master.token_create()
    with httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {bootstrap}"}) as joiner:
        r = joiner.post("/sigma/v1/join", json={"nodeName": node})
        assert r.status_code == 200, r.text
    return httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {r.json()['token']}"}, timeout=10)


@pytest.fixture(scope="module")
def nodes(master: AuthMaster) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    n1, n2 = join(master, "trust-n1"), join(master, "trust-n2")
    try:
        yield n1, n2
    finally:
        n1.close()
        n2.close()


def announce(client: httpx.Client, digest: str, peer: str, pieces: list[int], hashes: dict[str, str]) -> httpx.Response:
    return client.post(f"/p2p/blobs/{digest}/announce", json={"peer": peer, "pieces": pieces, "hashes": hashes})


def test_a_viewer_a_bootstrap_token_and_anonymous_cannot_touch_the_tracker(
    master: AuthMaster, nodes: tuple[httpx.Client, httpx.Client]
) -> None:
    n1, _ = nodes
    assert n1.post(f"/p2p/blobs/{D}", json={"size": 100, "piece_size": 10}).status_code == 200
    assert announce(n1, D, "http://127.0.0.1:1", [0], {}).status_code == 200
    bootstrap = master.token_create()
    with master.client("viewer") as viewer, httpx.Client(
        base_url=master.url, headers={"Authorization": f"Bearer {bootstrap}"}
    ) as joiner:
        for who in (viewer, joiner):
            calls = [
                who.post(f"/p2p/blobs/{D}", json={"size": 7, "piece_size": 1}),
                announce(who, D, "http://evil:1", [0, 1], {"0": "0" * 64}),
                announce(who, D, "http://127.0.0.1:1", [], {}),
                who.post(f"/p2p/blobs/{D}/claim", json={"peer": "http://evil:1", "pieces": [2]}),
                who.post("/p2p/peers/heartbeat", json={"peer": "http://127.0.0.1:1"}),
                who.delete("/p2p/peers", params={"peer": "http://127.0.0.1:1"}),
                who.get(f"/p2p/blobs/{D}", params={"peer": "http://evil:1"}),  # would hand out the piece token
                who.get("/p2p/blobs"),
            ]
            for r in calls:
                assert r.status_code == 403, (r.request.method, r.request.url, r.text)
                assert r.json()["reason"] == "Forbidden" and "system:nodes" in r.json()["message"]
    with master.client(None) as anonymous:
        assert anonymous.post(f"/p2p/blobs/{D}/announce", json={"peer": "http://evil:1"}).status_code == 401
    view = n1.get(f"/p2p/blobs/{D}", params={"peer": "http://127.0.0.1:2"}).json()
    assert view["holders"] == {"http://127.0.0.1:1": [0]} and view["hashes"] == {} and view["claims"] == {}
    assert view["size"] == 100


def test_a_node_speaks_only_for_its_own_peer(nodes: tuple[httpx.Client, httpx.Client]) -> None:
    n1, n2 = nodes
    digest, mine = "sha256:" + "cd" * 32, "http://127.0.0.1:3"
    assert n1.post(f"/p2p/blobs/{digest}", json={"size": 100, "piece_size": 10}).status_code == 200
    assert announce(n1, digest, mine, [0, 1], {}).status_code == 200
    refused = [
        announce(n2, digest, mine, [], {}),
        n2.post(f"/p2p/blobs/{digest}/claim", json={"peer": mine, "pieces": [5]}),
        n2.post("/p2p/peers/heartbeat", json={"peer": mine, "ttl": 600}),
        n2.get(f"/p2p/blobs/{digest}", params={"peer": mine}),
        n2.delete("/p2p/peers", params={"peer": mine}),
    ]
    for r in refused:
        assert r.status_code == 403 and 'belongs to node "trust-n1"' in r.json()["message"].replace("'", '"'), r.text
    view = n2.get(f"/p2p/blobs/{digest}", params={"peer": "http://127.0.0.1:4"}).json()
    assert view["holders"] == {mine: [0, 1]} and view["claims"] == {}
    assert n1.delete("/p2p/peers", params={"peer": mine}).status_code == 200  # its own: withdrawn
    assert n2.get(f"/p2p/blobs/{digest}", params={"peer": "http://127.0.0.1:4"}).json()["holders"] == {}


def test_a_node_names_only_a_peer_at_its_own_address(nodes: tuple[httpx.Client, httpx.Client]) -> None:
    n1, n2 = nodes
    digest = "sha256:" + "ef" * 32
    assert n1.post(f"/p2p/blobs/{digest}", json={"size": 100, "piece_size": 10}).status_code == 200
    r = announce(n2, digest, "http://10.9.9.9:10270", [0], {})  # another machine's peer
    assert r.status_code == 403 and "10.9.9.9 is not an address of node 'trust-n2'" in r.json()["message"]
    # The addresses its Node reports (an agent behind NAT calls from elsewhere) are its own.
    node = {"metadata": {"name": "trust-n1"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.1.2.3"}]}}
    assert n1.post("/api/v1/nodes", json=node).status_code == 201
    assert n1.patch("/api/v1/nodes/trust-n1/status", json={"status": node["status"]},
                    headers={"Content-Type": "application/merge-patch+json"}).status_code == 200
    assert announce(n1, digest, "http://10.1.2.3:10270", [0], {}).status_code == 200
    assert announce(n2, digest, "http://10.1.2.3:10270", [0], {}).status_code == 403
    assert n1.delete("/p2p/peers", params={"peer": "http://10.1.2.3:10270"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (f"/p2p/blobs/{D}", b"{not json", "JSON"),
        (f"/p2p/blobs/{D}", b"[1, 2]", "object"),
        (f"/p2p/blobs/{D}", b'{"size": "big"}', "size"),
        (f"/p2p/blobs/{D}", b'{"size": -1}', "size"),
        ("/p2p/blobs/sha256:nothex", b'{"size": 1}', "digest"),
        (f"/p2p/blobs/{D}/announce", b'{"pieces": [0]}', "peer"),
        (f"/p2p/blobs/{D}/announce", b'{"peer": "http://127.0.0.1:1", "pieces": "0"}', "pieces"),
        (f"/p2p/blobs/{D}/announce", b'{"peer": "http://127.0.0.1:1", "pieces": [0], "hashes": {"0": "zz"}}',
         "hashes"),
        (f"/p2p/blobs/{D}/announce", b'{"peer": "http://127.0.0.1:1", "ttl": "forever"}', "ttl"),
        (f"/p2p/blobs/{D}/announce", b'{"peer": "file:///etc/passwd"}', "peer"),
        (f"/p2p/blobs/{D}/claim", b'{"peer": "http://127.0.0.1:1", "pieces": [1.5]}', "pieces"),
        ("/p2p/peers/heartbeat", b"null", "object"),
    ],
)
def test_a_malformed_body_is_a_400_naming_what_is_wrong(
    nodes: tuple[httpx.Client, httpx.Client], path: str, body: bytes, field: str
) -> None:
    n1, _ = nodes
    assert n1.post(f"/p2p/blobs/{D}", json={"size": 100, "piece_size": 10}).status_code == 200
    r = n1.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == "BadRequest" and field in r.json()["message"]


class Agent:
    """One node's image pulls as the agent runs them (sigma.agent.pulls), with its credential."""

    def __init__(self, master: AuthMaster, client: httpx.Client, root: Path) -> None:
        self.http = httpx.Client(headers=dict(client.headers), timeout=10)
        self.store = ImageStore(str(root / "images"))
        self.pulls: ImagePulls = start_pulls(self.store, ImageOptions(p2p_port=0), master.url, "127.0.0.1",
                                             "127.0.0.1", master_http=self.http)

    def pull(self, image: str) -> str:
        return self.pulls.puller(self.store, image)

    def close(self) -> None:
        self.pulls.close()
        self.http.close()


def layer_image(registry: LocalRegistry, repo: str, size: int) -> tuple[str, bytes]:
    data = os.urandom(size)
    push_image(registry, repo, "v1", [data], {})
    return f"{registry.host}/{repo}:v1", data


def test_a_wrong_size_registered_first_costs_the_swarm_not_the_pull(
    master: AuthMaster, nodes: tuple[httpx.Client, httpx.Client], registry: LocalRegistry, tmp_path: Path
) -> None:
    n1, n2 = nodes
    image, data = layer_image(registry, "sized", 9 * MIB)
    r = n2.post(f"/p2p/blobs/{sha(data)}", json={"size": 1234, "piece_size": 10})  # the liar is first
    assert r.status_code == 200
    agent = Agent(master, n1, tmp_path / "n1")
    try:
        agent.pull(image)
        assert sha256_file(agent.store.blob_path(sha(data))) == sha(data)
    finally:
        agent.close()
    r = n1.post(f"/p2p/blobs/{sha(data)}", json={"size": len(data), "piece_size": 4 * MIB})
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"


def test_a_node_serving_garbage_with_a_matching_piece_table_cannot_poison_a_pull(
    master: AuthMaster, nodes: tuple[httpx.Client, httpx.Client], registry: LocalRegistry, tmp_path: Path
) -> None:
    n1, n2 = nodes
    image, data = layer_image(registry, "poisoned", 9 * MIB)
    digest = sha(data)
    # trust-n2 is a compromised node: it announces the whole blob, with the piece table of
    # garbage of the right size, and serves that garbage (every piece matches its table).
    garbage = tmp_path / "garbage"
    garbage.write_bytes(os.urandom(len(data)))
    liar = PeerServer("127.0.0.1", 0).start()
    liar_tracker = TrackerClient(f"{master.url}/p2p", httpx.Client(headers=dict(n2.headers), timeout=10))
    agent = Agent(master, n1, tmp_path / "n1")
    try:
        assert seed_blob(liar_tracker, liar, digest, str(garbage), 4 * MIB) == 3
        poisoned = n1.get(f"/p2p/blobs/{digest}", params={"peer": "http://127.0.0.1:9"}).json()
        assert poisoned["holders"] == {liar.url: [0, 1, 2]}
        agent.pull(image)
        assert sha256_file(agent.store.blob_path(digest)) == digest
        assert liar.bytes_served > 0  # the swarm was tried, and its garbage refused
        # The honest node then announced the true table: every piece the liar lied about is
        # disputed, no longer vouched for, and comes from the registry for whoever pulls next.
        after = n1.get(f"/p2p/blobs/{digest}", params={"peer": "http://127.0.0.1:9"}).json()
        assert after["hashes"] == {} and len(after["holders"]) == 2 and liar.url in after["holders"]
    finally:
        agent.close()
        liar.stop()
        liar_tracker.http.close()


def test_a_viewers_poisoned_announce_is_refused_and_the_pull_goes_through_the_swarm(
    master: AuthMaster, nodes: tuple[httpx.Client, httpx.Client], registry: LocalRegistry, tmp_path: Path
) -> None:
    n1, n2 = nodes
    image, data = layer_image(registry, "shared", 9 * MIB)
    digest = sha(data)
    seeder, puller = Agent(master, n2, tmp_path / "n2"), Agent(master, n1, tmp_path / "n1")
    try:
        seeder.pull(image)
        gets = registry.blob_gets(digest)
        with master.client("viewer") as viewer:
            r = viewer.post(f"/p2p/blobs/{digest}/announce",
                            json={"peer": "http://127.0.0.1:1", "pieces": [0, 1, 2],
                                  "hashes": {str(i): "0" * 64 for i in range(3)}})
            assert r.status_code == 403
        puller.pull(image)
        assert sha256_file(puller.store.blob_path(digest)) == digest
        assert registry.blob_gets(digest) == gets  # every piece came from the seeding node
    finally:
        puller.close()
        seeder.close()


def test_a_peer_serves_pieces_only_with_the_blobs_token(
    master: AuthMaster, nodes: tuple[httpx.Client, httpx.Client], tmp_path: Path
) -> None:
    n1, _ = nodes
    data = os.urandom(3 * MIB)
    (tmp_path / "blob").write_bytes(data)
    peer = PeerServer("127.0.0.1", 0).start()
    tracker = TrackerClient(f"{master.url}/p2p", httpx.Client(headers=dict(n1.headers), timeout=10))
    try:
        seed_blob(tracker, peer, sha(data), str(tmp_path / "blob"), MIB)
        url = f"{peer.url}/pieces/{sha(data)}/1"
        token = n1.get(f"/p2p/blobs/{sha(data)}", params={"peer": peer.url}).json()["token"]
        assert httpx.get(url).status_code == 403
        assert httpx.get(url, headers={"Authorization": "Bearer not-the-token"}).status_code == 403
        assert httpx.get(f"{peer.url}/pieces/{D}/0", headers={"Authorization": f"Bearer {token}"}).status_code == 403
        ok = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.content == data[MIB : 2 * MIB]
    finally:
        peer.stop()
        tracker.http.close()



def test_a_tracker_that_refuses_or_is_down_costs_the_swarm_not_the_pull(
    master: AuthMaster, registry: LocalRegistry, tmp_path: Path
) -> None:
    image, data = layer_image(registry, "untracked", 5 * MIB)
    with master.client("viewer") as viewer:  # a credential the tracker refuses (403)
        refused = Agent(master, viewer, tmp_path / "refused")
        try:
            refused.pull(image)
            assert sha256_file(refused.store.blob_path(sha(data))) == sha(data)
        finally:
            refused.close()
    down = ImageStore(str(tmp_path / "down"))
    pulls = start_pulls(down, ImageOptions(p2p_port=0), "http://127.0.0.1:9", "127.0.0.1", "127.0.0.1")
    try:
        pulls.puller(down, image)
        assert sha256_file(down.blob_path(sha(data))) == sha(data)
    finally:
        pulls.close()
