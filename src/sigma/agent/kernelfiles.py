"""Reading the kernel's files (cgroupfs, procfs, resctrl): a file that is missing or
unreadable is an answer ("not here"), not an error, since controllers, PSI and resctrl come
and go with the kernel and the machine."""

from __future__ import annotations


def read_text(path: str) -> str | None:
    """The file's text, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def read_stripped(path: str) -> str | None:
    """The file's one value (a cgroup knob, a pid, an id) without its newline, or None."""
    text = read_text(path)
    return None if text is None else text.strip()
