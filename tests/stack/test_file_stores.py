"""The file stores keep the same promises, in a folder and in S3-compatible object storage (a
real server over HTTP: moto's, tests/conftest.py): what is put is got back byte for byte, a
replaced file is the new one, a deleted or unknown key is nothing, a key that could name a
path is refused, and a file of the largest size people may send (MAX_FILE_BYTES) goes and
comes back whole."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core.files import BadKey, FileStore, FolderStore, S3Store, file_store, new_key
from core.settings import Settings
from worker import setup

BAD_KEYS = ["../app.db", "a/b", ".hidden-file-name-x", "short", "x" * 80, "key with spaces!!"]


def test_what_is_put_is_got_back_and_deleted(any_file_store: FileStore) -> None:
    key = new_key("pdf")
    assert any_file_store.get(key) is None
    any_file_store.put(key, b"%PDF-1.4 first")
    assert any_file_store.get(key) == b"%PDF-1.4 first"
    any_file_store.delete(key)
    assert any_file_store.get(key) is None
    any_file_store.delete(key)  # an unknown key is no error


def test_a_key_holds_one_file_and_put_replaces_it(any_file_store: FileStore) -> None:
    one, two = new_key("txt"), new_key("txt")
    any_file_store.put(one, b"first")
    any_file_store.put(two, b"")  # an empty file is a file
    any_file_store.put(one, b"second, longer than the first")
    assert any_file_store.get(one) == b"second, longer than the first"
    assert any_file_store.get(two) == b""
    any_file_store.delete(one)
    assert any_file_store.get(two) == b"" and any_file_store.get(one) is None


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_key_that_could_name_a_path_is_refused(any_file_store: FileStore, key: str) -> None:
    assert any_file_store.get(key) is None
    with pytest.raises(BadKey):
        any_file_store.put(key, b"x")
    with pytest.raises(BadKey):
        any_file_store.delete(key)


def test_the_largest_file_goes_and_comes_back_whole(any_file_store: FileStore) -> None:
    size = Settings.model_fields["max_file_bytes"].default
    assert size == 25 * 1024 * 1024
    data = os.urandom(size)
    key = new_key("zip")
    any_file_store.put(key, data)
    back = any_file_store.get(key)
    assert back is not None and len(back) == size
    assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
    any_file_store.delete(key)


def test_the_settings_pick_the_store(any_storage_settings: dict[str, Any]) -> None:
    store = file_store(Settings(_env_file=None, **any_storage_settings))  # type: ignore[call-arg]
    expected = FolderStore if any_storage_settings["file_storage"] == "folder" else S3Store
    assert type(store) is expected


def test_a_store_on_a_bucket_nobody_made_fails_loudly(s3_settings: dict[str, Any]) -> None:
    """A wrong S3_BUCKET is an error on every call, never taken for an unknown key."""
    settings = Settings(_env_file=None, **s3_settings | {"s3_bucket": "nobody-made-this-one"})  # type: ignore[call-arg]
    store = S3Store.from_settings(settings)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        store.get(new_key())
    with pytest.raises(ClientError, match="NoSuchBucket"):
        store.put(new_key(), b"x")


def test_the_setup_job_makes_the_bucket_once(s3_settings: dict[str, Any]) -> None:
    fresh = s3_settings | {"s3_bucket": s3_settings["s3_bucket"] + "-setup"}
    settings = Settings(_env_file=None, **fresh)  # type: ignore[call-arg]
    assert setup.prepare_storage(settings, wait=5) is True
    assert setup.prepare_storage(settings, wait=5) is False  # there already: nothing to do
    store = S3Store.from_settings(settings)
    key = new_key()
    store.put(key, b"kept")
    assert store.get(key) == b"kept"
    folder = Settings(_env_file=None)  # type: ignore[call-arg]
    assert setup.prepare_storage(folder, wait=5) is None


def test_the_setup_job_waits_for_the_storage_a_bounded_time(
    s3_settings: dict[str, Any],
) -> None:
    from dev.harness import free_port

    nowhere = s3_settings | {"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"}
    settings = Settings(_env_file=None, **nowhere)  # type: ignore[call-arg]
    with pytest.raises(setup.SetupError, match="did not answer within 1s"):
        setup.prepare_storage(settings, wait=1)


def test_the_object_storage_settings_read_as_an_env_file_writes_them() -> None:
    """Empty lines of an env file are unset (boto3's own chain, Amazon S3 itself), and with
    FILE_STORAGE=s3 the key's two halves go together."""
    empty = Settings(  # type: ignore[call-arg]
        _env_file=None,
        file_storage="s3",
        s3_endpoint_url="",
        s3_access_key_id=" ",
        s3_secret_access_key="",
    )
    assert (empty.s3_endpoint_url, empty.s3_access_key_id, empty.s3_secret_access_key) == (
        None,
        None,
        None,
    )
    with pytest.raises(ValueError, match="S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together"):
        Settings(_env_file=None, file_storage="s3", s3_access_key_id="id-only")  # type: ignore[call-arg]
    # Kept in a folder, a half key is nobody's business (compose.env sets both anyway).
    assert Settings(_env_file=None, s3_access_key_id="id-only").file_storage == "folder"  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="file_storage"):
        Settings(_env_file=None, file_storage="ftp")  # type: ignore[call-arg, arg-type]
