"""Downloading trace files resumably and checking them (`sigma data fetch`).

A download goes to `FILE.part`; a run that finds one asks the server for the rest (HTTP
Range) and appends, so a cut connection costs only what was in flight. The finished file is
checked against its sha256 before it takes its real name: the published one, or for a file
with none the sha256 its first complete download recorded in `FILE.sha256`. A file already
in place is verified the same way on every run, so a damaged copy is found, not reused.

Every failure is a FetchError whose text is one line naming the URL or the file.
"""

from __future__ import annotations

import hashlib
import http.client
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sigma.data_manifest import DataFile

CHUNK = 1 << 20
TIMEOUT_S = 30.0

# (bytes so far, total bytes or None) as the download goes
Progress = Callable[[int, int | None], None]


class FetchError(Exception):
    """One line: what failed, naming the URL or file."""


@dataclass(frozen=True)
class Fetched:
    path: Path
    status: str  # "downloaded", "resumed", "verified" (already there)
    sha256: str
    checksum: str  # "published" or "recorded" (first download) or "recorded earlier"


def fetch(entry: DataFile, root: Path, mirror: str | None = None, progress: Progress | None = None,
          timeout: float = TIMEOUT_S) -> Fetched:
    """Download `entry` to root/<entry.dest> (root: the data directory's alibaba/)."""
    dest = root / entry.dest
    record = dest.with_name(dest.name + ".sha256")
    expected = entry.sha256 or (_read_record(record) if record.exists() else None)
    if dest.exists():
        if expected is None:  # put there by hand: trust it once and record it, as a first download would
            digest = sha256_of(dest)
            record.write_text(f"{digest}  {dest.name}\n")
            return Fetched(dest, "verified", digest, "recorded")
        digest = sha256_of(dest)
        if digest != expected:
            raise FetchError(f"{dest}: sha256 {digest} does not match the expected {expected}; delete the file "
                             "and fetch again")
        return Fetched(dest, "verified", digest, "published" if entry.sha256 else "recorded earlier")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    resumed = part.exists() and part.stat().st_size > 0
    urls = [f"{mirror.rstrip('/')}/{entry.dest}"] if mirror else list(entry.urls)
    errors = []
    for url in urls:
        try:
            download(url, part, progress, timeout, limit=entry.max_bytes)
            break
        except FetchError as e:
            errors.append(str(e))
    else:
        raise FetchError(" | ".join(errors))
    digest = sha256_of(part)
    if expected is not None and digest != expected:
        part.unlink()
        raise FetchError(f"{urls[0]}: sha256 {digest} of the download does not match the expected {expected}; "
                         "the partial file was deleted, run again to download it afresh")
    if expected is None:
        record.write_text(f"{digest}  {dest.name}\n")
    part.replace(dest)
    return Fetched(dest, "resumed" if resumed else "downloaded", digest,
                   "published" if entry.sha256 else ("recorded earlier" if expected else "recorded"))


def download(url: str, part: Path, progress: Progress | None = None, timeout: float = TIMEOUT_S,
             limit: int | None = None) -> None:
    """Append the rest of `url` to `part` (from its current size). A server that announces
    or sends more than `limit` bytes in all is refused and the partial file deleted: a
    wrong or hostile server must not fill the disk."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing after what we have: the part is complete
            return
        raise FetchError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError(f"{url}: cannot connect ({reason})") from None
    with response:
        total = _total(response, have)
        if response.status == 200 and have:  # the server ignored the range: start again
            have = 0
        if limit is not None and total is not None and total > limit:
            part.unlink(missing_ok=True)
            raise FetchError(f"{url}: the server announces {total} bytes, more than the {limit} expected; "
                             "nothing was kept")
        mode = "ab" if have else "wb"
        done = have
        try:
            with part.open(mode) as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if limit is not None and done > limit:
                        break
                    if progress:
                        progress(done, total)
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            raise FetchError(f"{url}: download cut at {done} bytes ({type(e).__name__}); run again to resume "
                             f"from {part}") from None
    if limit is not None and done > limit:
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: the server sent more than the {limit} bytes expected; nothing was kept")
    if total is not None and done < total:
        raise FetchError(f"{url}: download cut at {done} of {total} bytes; run again to resume from {part}")


def _total(response: http.client.HTTPResponse, have: int) -> int | None:
    """The whole file's size: Content-Range's total on a 206, else Content-Length."""
    if response.status == 206:
        text = response.headers.get("Content-Range", "")
        start, _, total = text.removeprefix("bytes ").partition("/")
        if not start.startswith(f"{have}-"):
            raise FetchError(f"{response.url}: the server sent bytes {start} when asked for {have}-")
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _read_record(path: Path) -> str:
    return path.read_text().split()[0]


def extract(archive: Path) -> list[str]:
    """Unpack a fetched tar.gz beside itself; only plain files and directories inside it
    (tarfile's "data" filter: no links out, no absolute paths)."""
    try:
        with tarfile.open(archive) as tar:
            names = tar.getnames()
            tar.extractall(archive.parent, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise FetchError(f"{archive}: cannot unpack ({e})") from None
    return names
