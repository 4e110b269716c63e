"""Files the service keeps (profile images), behind one small interface: `FileStore`.

Each file is bytes under an opaque key the caller chose (random: a key says nothing of who
stored it). `FolderStore` keeps them under the data directory (`DATA_DIR`, `data/files/`);
another store (object storage) only needs the same three methods.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Protocol

from core.settings import Settings

# Letters, digits, '-' and '_', then an optional extension: no path can be made of a key.
KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}(\.[a-z0-9]{1,8})?$")


class BadKey(ValueError):
    """A key that could not have been made by `new_key` (a path, a dot file, too long)."""


def new_key(extension: str = "") -> str:
    """A random key (192 bits) with an optional extension ("png")."""
    key = secrets.token_urlsafe(24)
    return f"{key}.{extension}" if extension else key


def valid_key(key: str) -> bool:
    return bool(KEY.fullmatch(key))


class FileStore(Protocol):
    """Bytes by opaque key. `put` replaces a key's bytes, `get` answers None for an unknown
    key, `delete` forgets a key (an unknown one is no error)."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...


class FolderStore:
    """One file per key in a folder; written to a temporary file first, so a reader never
    sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not valid_key(key):
            raise BadKey(key)
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=self.root, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (BadKey, FileNotFoundError):
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def file_store(settings: Settings) -> FileStore:
    """The store the settings name: a folder under the data directory."""
    return FolderStore(Path(settings.data_dir) / "files")
