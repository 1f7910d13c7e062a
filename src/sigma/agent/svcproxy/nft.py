"""Running ``nft -f -``: the one I/O of the rule side.

``prefix`` puts the command inside another network namespace (``["nsenter",
"--net=/var/run/netns/NAME", "--"]``): the tests and the benchmark program namespaces they
create, never the machine's own ruleset.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence


class NftError(RuntimeError):
    """nft refused the script (nothing of it was applied: a script is one transaction)."""


def nft_missing() -> str | None:
    """Why the proxy cannot run here, in plain words, or None."""
    if shutil.which("nft") is None:
        return ("nft is not installed: the service proxy is off, ClusterIPs and NodePorts do not work "
                "(apt package nftables)")
    return None


class Nft:
    def __init__(self, prefix: Sequence[str] = (), timeout_s: float = 60.0) -> None:
        self.prefix, self.timeout_s = list(prefix), timeout_s

    def apply(self, script: str) -> None:
        try:
            out = subprocess.run([*self.prefix, "nft", "-f", "-"], input=script, capture_output=True, text=True,
                                 timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise NftError(f"nft could not run: {err}") from err
        if out.returncode != 0:
            raise NftError(out.stderr.strip()[-2000:] or f"nft exited with {out.returncode}")

    def run(self, *args: str) -> str:
        """``nft ARGS`` (``list table ip sigma``...): its output."""
        out = subprocess.run([*self.prefix, "nft", *args], capture_output=True, text=True, timeout=self.timeout_s,
                             check=False)
        if out.returncode != 0:
            raise NftError(out.stderr.strip()[-2000:])
        return out.stdout
