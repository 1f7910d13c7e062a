"""P2P for images behind registry credentials. The rule: a node asks its peers for a blob only
after the registry said yes to the node's own authenticated HEAD of that blob, so a node gets
from the swarm only what it could have pulled itself."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from sigma.agent.images import ImageStore
from sigma.agent.oci_registry import ImagePullError, RegistryPuller, ensure_image
from sigma.agent.pull_credentials import Keyring
from sigma.p2p.download import Downloader, TrackerClient
from sigma.p2p.peer import PeerServer
from sigma.p2p.tracker import TrackerState
from tests.agent.imagebuild import tar_bytes
from tests.agent.registry_servers import Front, Signer, TokenServer, front, token_registry, token_server

from .conftest import LocalRegistry, needs_registry, push_image, sha

pytestmark = needs_registry
PIECE = 256 * 1024


def _keys(host: str) -> Keyring:
    return Keyring().add_config({"auths": {host: {"auth": base64.b64encode(b"alice:s3cret").decode()}}})


@pytest.mark.e2e
def test_peers_serve_a_private_image_only_to_nodes_the_registry_lets_pull_it(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    layer = tar_bytes({"payload": os.urandom(3 * PIECE)})
    digest = push_image(registry, "private/app", "1", [layer], {})
    a_peer, b_peer = PeerServer().start(), PeerServer().start()
    a = Downloader(TrackerClient(tracker[0]), a_peer, piece_size=PIECE, poll=0.05)
    b = Downloader(TrackerClient(tracker[0]), b_peer, piece_size=PIECE, poll=0.05)
    try:
        with token_server(TokenServer(Signer(str(tmp_path)), users={"alice": "s3cret"})) as ts, \
                token_registry(str(tmp_path), registry.storage, ts) as secured:
            image = f"{secured.host}/private/app:1"
            keys = _keys(secured.host)
            assert RegistryPuller(blob_fetcher=a.fetch)(ImageStore(str(tmp_path / "a")), image, keys) == digest
            assert secured.blob_gets(sha(layer)) == 4  # node a's pieces, each with its token

            store_b = ImageStore(str(tmp_path / "b"))
            with pytest.raises(ImagePullError, match="401 Unauthorized"):
                ensure_image(store_b, image, "Always", RegistryPuller(blob_fetcher=b.fetch))
            assert a_peer.bytes_served == 0 and not store_b.has_blob(sha(layer))

            assert RegistryPuller(blob_fetcher=b.fetch)(store_b, image, keys) == digest
            assert a_peer.bytes_served >= len(layer)  # with credentials, from the peer
            assert secured.blob_gets(sha(layer)) == 4  # and not from the registry again
    finally:
        a_peer.stop()
        b_peer.stop()


@pytest.mark.e2e
def test_a_node_that_may_read_the_manifest_but_not_the_blob_gets_no_piece_from_peers(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    layer = tar_bytes({"payload": os.urandom(2 * PIECE)})
    push_image(registry, "team/app", "1", [layer], {})
    good = "Basic " + base64.b64encode(b"alice:s3cret").decode()

    def blobs_need_credentials(method: str, path: str, headers: dict[str, str]) -> Any:
        if "/blobs/" in path and headers.get("authorization") != good:
            return 401, {"WWW-Authenticate": 'Basic realm="blobs"'}, b'{"errors":[{"code":"UNAUTHORIZED"}]}'
        return None

    a_peer, b_peer = PeerServer().start(), PeerServer().start()
    a = Downloader(TrackerClient(tracker[0]), a_peer, piece_size=PIECE, poll=0.05)
    b = Downloader(TrackerClient(tracker[0]), b_peer, piece_size=PIECE, poll=0.05)
    fetched: list[str] = []

    def b_fetch(digest: str, size: int, url: str, dest: str, headers: dict[str, str]) -> Any:
        fetched.append(digest)
        return b.fetch(digest, size, url, dest, headers)

    try:
        with front(Front(registry.base, blobs_need_credentials)) as f:
            image = f"{f.url[7:]}/team/app:1"
            RegistryPuller(blob_fetcher=a.fetch)(ImageStore(str(tmp_path / "a")), image, _keys(f.url[7:]))
            with pytest.raises(ImagePullError, match="401 Unauthorized"):
                ensure_image(ImageStore(str(tmp_path / "b")), image, "Always", RegistryPuller(blob_fetcher=b_fetch))
    finally:
        a_peer.stop()
        b_peer.stop()
    assert fetched == [] and a_peer.bytes_served == 0  # the swarm was never asked
