"""nft in-process: libnftables (the library the ``nft`` program is built on) through ctypes,
one context kept for the proxy's life.

Why: a partial sync of a large table is a few lines, and running ``nft -f`` for them costs a
process start and the load of the whole table's cache before the lines are even read.
In-process, the start is gone and the library keeps its context (its netlink socket and
parser state) between syncs. libnftables is part of Debian's ``nftables`` package (its
``libnftables1`` dependency): nothing else to install. Where it cannot be loaded, the proxy
runs the ``nft`` program (``Nft``).

Every call runs on one worker thread: the context is not thread-safe, and a network
namespace (``netns``, for the tests and the benchmark) is entered by that thread alone
(``setns`` changes the calling thread's namespace, the netlink socket is made in it).
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from sigma.agent.svcproxy.nft import Nft, NftError

CLONE_NEWNET = 0x40000000
_LIBRARY = "libnftables.so.1"


def _load() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(_LIBRARY)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.c_char_p
    return lib


def available() -> bool:
    return _load() is not None


class LibNft:
    """``apply`` and ``run`` as ``Nft`` has them, in-process. ``netns``: a path such as
    /var/run/netns/NAME whose network namespace the calls act in (default: the agent's)."""

    def __init__(self, netns: str | None = None) -> None:
        lib = _load()
        if lib is None:
            raise NftError(f"{_LIBRARY} cannot be loaded")
        self._lib = lib
        self._calls: queue.Queue[tuple[Callable[[], Any], queue.Queue[tuple[bool, Any]]] | None] = queue.Queue()
        started: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, args=(netns, started), name="svcproxy-nft", daemon=True)
        self._thread.start()
        ok, err = started.get()
        if not ok:
            raise NftError(str(err))

    def _serve(self, netns: str | None, started: queue.Queue[tuple[bool, Any]]) -> None:
        try:
            if netns is not None:
                libc = ctypes.CDLL(None, use_errno=True)  # the process's own libc
                fd = os.open(netns, os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {netns}: {os.strerror(ctypes.get_errno())}")
                finally:
                    os.close(fd)
            ctx = self._lib.nft_ctx_new(0)
            if not ctx:
                raise OSError("nft_ctx_new failed")
            self._lib.nft_ctx_buffer_output(ctx)
            self._lib.nft_ctx_buffer_error(ctx)
        except OSError as err:
            started.put((False, err))
            return
        self._ctx = ctx
        started.put((True, None))
        while (item := self._calls.get()) is not None:
            call, reply = item
            try:
                reply.put((True, call()))
            except Exception as err:  # handed to the caller, raised there
                reply.put((False, err))
        self._lib.nft_ctx_free(ctx)

    def _put(self, call: Callable[[], Any]) -> queue.Queue[tuple[bool, Any]]:
        reply: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._calls.put((call, reply))
        return reply

    @staticmethod
    def _result(reply: queue.Queue[tuple[bool, Any]]) -> Any:
        ok, value = reply.get()
        if not ok:
            raise value
        return value

    def _call(self, call: Callable[[], Any]) -> Any:
        return self._result(self._put(call))

    def _run_buffer(self, text: str) -> str:
        rc = self._lib.nft_run_cmd_from_buffer(self._ctx, text.encode())
        out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode(errors="replace")
        err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise NftError(err.strip()[-2000:] or f"nft returned {rc}")
        return out

    def apply(self, script: str) -> None:
        """One transaction, as ``nft -f -`` makes it of the script."""
        self._call(lambda: self._run_buffer(script))

    def submit(self, script: str) -> Callable[[], None]:
        """``apply`` started on the worker thread, which runs it outside the GIL (ctypes lets
        go of it in the library call): the caller works meanwhile, then calls what this
        returns to wait for the transaction (it raises NftError as ``apply`` would)."""
        reply = self._put(lambda: self._run_buffer(script))
        return lambda: self._result(reply)

    def run(self, *args: str) -> str:
        """``nft ARGS`` (``list table ip sigma``...): its output."""
        return str(self._call(lambda: self._run_buffer(" ".join(args))))

    def close(self) -> None:
        self._calls.put(None)
        self._thread.join(timeout=5)


def default_nft() -> LibNft | Nft:
    """In-process where libnftables loads, else the ``nft`` program."""
    try:
        return LibNft()
    except NftError:
        return Nft()
