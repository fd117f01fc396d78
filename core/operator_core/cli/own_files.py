"""The CLI's caches (``subject_facts``, ``help_cache``): files only this user can have
written, read whole, and written whole or not at all; and how a cache knows the files its
contents were computed from."""

from __future__ import annotations

import os

SLACK_NS = 2_000_000_000
"""A file's change time may lag the clock (the kernel's coarse clock): this much margin."""


def stamp(path: str) -> list[int] | None:
    """The file as a cache knows it (change time, size, inode, as Python's bytecode cache
    knows a source), or None if it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ctime_ns, st.st_size, st.st_ino]


def settled(known: list[int], started_ns: int) -> bool:
    """Whether a file with this stamp was changed early enough before a process started at
    ``started_ns`` for that process to have read it as it is now."""
    return known[0] <= started_ns - SLACK_NS


def read_own(path: str, max_bytes: int) -> bytes | None:
    """The file's bytes, if it is ours to trust: this user's, writable by no other, at
    most ``max_bytes``; None otherwise (or if it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022 or st.st_size > max_bytes:
            return None
        data = b""
        while chunk := os.read(fd, 1 << 20):
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    return data


def write_whole(path: str, data: bytes) -> bool:
    """Whole or not at all (a reader never sees half a file), readable by this user only;
    no fsync: a cache lost in a crash is taken again. False if it could not be written."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    return True
