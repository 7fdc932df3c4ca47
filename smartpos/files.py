"""Files on disk are private: directories 0700, files 0600, owned by the user running smartpos.

The data directory holds the ledger or the terminal's journal, sealed keys, the key-encrypting
key, the TLS key and the printed receipts; nobody else on the machine may read them, and
nobody else may own them (docs/architecture.md, "Files on disk"):

* everything smartpos creates is created private (:func:`private_dir`, :func:`open_private`),
  so a fresh installation never needs correcting, whatever the umask;
* at start each command checks the data directory (:func:`secure_tree`): what others could
  read or write is tightened (group and other permission bits removed) and reported in one
  warning line; what belongs to another user is refused with :class:`UnsafeFileError` — we
  could not tighten it, and data another account controls cannot be trusted.

Symbolic links are not followed (a printer device may be linked on purpose); device nodes are
left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "UnsafeFileError",
    "check_private",
    "make_private_dirs",
    "open_private",
    "private_dir",
    "secure_tree",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_OTHERS = 0o077  # group and other permission bits
log = logging.getLogger(__name__)


class UnsafeFileError(Exception):
    """A data file or directory belongs to another user: smartpos will not use it."""


def _entry(path: Path) -> os.stat_result | None:
    """``path``'s status if it is ours to keep private (directory, regular file, socket),
    None if it is not (a link, a device, gone); ``UnsafeFileError`` if another user owns it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:  # gone meanwhile (SQLite removes -shm with its last user)
        return None
    if stat.S_ISLNK(st.st_mode) or not (
        stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISSOCK(st.st_mode)
    ):
        return None
    if st.st_uid != os.geteuid():
        raise UnsafeFileError(
            f"{path} belongs to user id {st.st_uid}, not to you ({os.geteuid()}): smartpos does"
            " not use data another account controls; give it to this user (chown) or set"
            " SMARTPOS_HOME to a directory of your own"
        )
    return st


def _tighten(path: Path, st: os.stat_result | None) -> bool:
    if st is None or not st.st_mode & _OTHERS:
        return False
    os.chmod(path, stat.S_IMODE(st.st_mode) & ~_OTHERS, follow_symlinks=False)
    return True


def check_private(path: Path) -> bool:
    """Make sure ``path`` (not followed if a link) is ours and closed to others.

    Removes group/other permissions from a directory, regular file or socket we own and
    returns True if it had any; raises ``UnsafeFileError`` if another user owns it."""
    return _tighten(path, _entry(path))


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each with mode 0700 (``mkdir -p`` would give
    the parents the umask's mode, usually 0755)."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process was quicker
            directory.mkdir(mode=PRIVATE_DIR_MODE)
            os.chmod(directory, PRIVATE_DIR_MODE)  # exactly, whatever the umask


def private_dir(path: Path) -> Path:
    """``path`` as a private directory of ours: created 0700 if missing, else checked
    (tightened with a warning, or ``UnsafeFileError``). Returns ``path``."""
    make_private_dirs(path)
    if check_private(path):
        log.warning("%s was open to other users: now 0700", path)
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_APPEND) -> int:
    """Open ``path`` (``os.open`` flags), creating it with mode 0600 if missing; an existing
    file is checked first (tightened with a warning, or ``UnsafeFileError``). Returns the
    descriptor."""
    if path.exists() and check_private(path):
        log.warning("%s was open to other users: now 0600", path)
    return os.open(path, flags | os.O_CREAT, PRIVATE_FILE_MODE)


def secure_tree(root: Path) -> list[Path]:
    """Check ``root`` and everything under it like :func:`check_private`; return what had to
    be tightened. Raises ``UnsafeFileError`` if another user owns any of it — before
    changing anything."""
    if not root.exists():
        return []
    paths = [root]
    for directory, dirs, files in os.walk(root):  # does not descend into linked directories
        paths += [Path(directory, name) for name in (*dirs, *files)]
    entries = [(path, _entry(path)) for path in paths]
    return [path for path, st in entries if _tighten(path, st)]
