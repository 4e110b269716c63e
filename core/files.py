"""Files the service keeps (profile images, the files sent in conversations), behind one small
interface: `FileStore`.

Each file is bytes under an opaque key the caller chose (random: a key says nothing of who
stored it). `FolderStore` keeps them under the data directory (`DATA_DIR`, `data/files/`): one
host. `S3Store` keeps them in a bucket of S3-compatible object storage (Amazon S3, MinIO...):
every API process on every host sees the same files. `FILE_STORAGE` picks one (`file_store`).

The bucket is private: nothing is ever published by a link to the storage; the API reads a file
and serves its bytes itself, after checking who asks. The calls block (disk, network): callers
on the event loop run them on a worker thread (run_in_threadpool).
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

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


# One boto3 session for every S3Store: it loads S3's API description once (a new session takes
# about 60 ms per client). Making clients from one session is not thread-safe: hence the lock.
_session: Any = None
_session_lock = threading.Lock()


class S3Store:
    """One object per key in a bucket of S3-compatible storage, through the AWS SDK (boto3).
    An object is written whole or not at all: a reader never sees half a file. The client is
    thread-safe and keeps a pool of connections, so one store serves every request thread."""

    # Codes S3 (and MinIO, moto) answer for a key or a bucket that isn't there.
    MISSING_KEY = frozenset({"NoSuchKey", "404", "NotFound"})
    MISSING_BUCKET = frozenset({"NoSuchBucket", "404", "NotFound"})

    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        # Imported here: boto3 takes a tenth of a second to import, for folder storage nothing.
        import boto3
        from botocore.config import Config

        config = Config(
            # A custom endpoint (MinIO) is addressed by path: bucket.minio would need DNS.
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
            # Checksums only where an operation requires them: botocore's default CRC32 trailer
            # is refused by some S3-compatible stores; TLS (or the compose network) carries
            # the bytes.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
            # As many connections as request threads may use at once (anyio's pool: 40).
            max_pool_connections=40,
        )
        global _session
        with _session_lock:
            _session = _session or boto3.session.Session()
            client = _session.client(
                "s3",
                endpoint_url=settings.s3_endpoint_url,
                region_name=settings.s3_region,
                aws_access_key_id=settings.s3_access_key_id,
                aws_secret_access_key=settings.s3_secret_access_key,
                config=config,
            )
        return cls(client, settings.s3_bucket)

    def _key(self, key: str) -> str:
        if not valid_key(key):
            raise BadKey(key)
        return key

    def put(self, key: str, data: bytes) -> None:
        # The bytes as they are: the SDK sends them without another copy.
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes | None:
        if not valid_key(key):
            return None
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _code(err) in self.MISSING_KEY:
                return None
            raise
        body = answer["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def delete(self, key: str) -> None:
        # S3 answers a delete of an unknown key with success, as FolderStore does.
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def ensure_bucket(self) -> bool:
        """Create the bucket if there is none by that name; True if it did. Run by the setup
        job (`python -m worker.setup`), not by the API: a deployment on Amazon S3 may give the
        service's key no right to create buckets."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as err:
            if _code(err) not in self.MISSING_BUCKET:
                raise
        region = self.client.meta.region_name
        options: dict[str, Any] = {}
        if region and region != "us-east-1":  # S3 refuses the constraint for its first region
            options["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(Bucket=self.bucket, **options)
        except ClientError as err:
            # Another setup job went first; BucketAlreadyExists (someone else's name on Amazon
            # S3, where names are global) is raised: choose another S3_BUCKET.
            if _code(err) != "BucketAlreadyOwnedByYou":
                raise
            return False
        return True


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def file_store(settings: Settings) -> FileStore:
    """The store FILE_STORAGE names: a folder under the data directory, or the S3 bucket."""
    if settings.file_storage == "s3":
        return S3Store.from_settings(settings)
    return FolderStore(Path(settings.data_dir) / "files")
