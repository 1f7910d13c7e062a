"""P2P distribution of image blobs between agents: the piece picker (pure), the tracker the
master hosts under /p2p, and each agent's peer (serving pieces) and downloader (fetching
them from peers, back to the registry only for pieces no peer holds)."""
