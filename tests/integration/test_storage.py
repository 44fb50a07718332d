"""FilesystemStorage on a real folder: streamed, hashed, atomic, and confined to its root."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from adapters.storage.filesystem import CHUNK, FilesystemStorage, UnsafeKey
from application.ports import InputTooBig
from application.storage_keys import input_key, user_folder, video_key


async def stream(chunks: Iterable[bytes], *, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for index, chunk in enumerate(chunks):
        if fail_after is not None and index == fail_after:
            raise ConnectionError("the source went away mid-stream")
        await asyncio.sleep(0)
        yield chunk


async def read_all(storage: FilesystemStorage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key)])


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file() or path.is_symlink())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    root.mkdir()
    return root


@pytest.fixture
def storage(root: Path) -> FilesystemStorage:
    return FilesystemStorage(root)


def test_put_streams_the_chunks_and_returns_their_hash_size_and_an_absolute_location_in_the_root(
    storage: FilesystemStorage, root: Path
) -> None:
    chunks = [os.urandom(CHUNK), b"", os.urandom(1234), b"tail"]
    data = b"".join(chunks)

    stored = asyncio.run(storage.put("videos/u-1/clip.mp4", stream(chunks)))

    assert stored.key == "videos/u-1/clip.mp4"
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.bytes == len(data)
    location = Path(stored.location)
    assert location.is_absolute()
    assert location == root.resolve() / "videos" / "u-1" / "clip.mp4"
    assert location.read_bytes() == data
    assert files_under(root) == [location]


def test_a_put_that_fails_mid_stream_leaves_no_file_and_no_part_file(storage: FilesystemStorage, root: Path) -> None:
    with pytest.raises(ConnectionError):
        asyncio.run(storage.put("videos/u-1/clip.mp4", stream([b"a" * 1000, b"b" * 1000, b"c"], fail_after=2)))

    assert files_under(root) == []
    assert storage.stat("videos/u-1/clip.mp4") is None


def test_a_put_cancelled_while_writing_leaves_no_file_and_no_part_file(storage: FilesystemStorage, root: Path) -> None:
    written = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        yield os.urandom(CHUNK)
        yield os.urandom(CHUNK)
        written.set()
        await asyncio.sleep(3600)
        yield b"never"

    async def cancel_mid_put() -> None:
        put = asyncio.create_task(storage.put("videos/u-1/clip.mp4", source()))
        await written.wait()
        put.cancel()
        with pytest.raises(asyncio.CancelledError):
            await put

    asyncio.run(cancel_mid_put())

    assert files_under(root) == []


def test_an_empty_source_stores_an_empty_object(storage: FilesystemStorage) -> None:
    stored = asyncio.run(storage.put("videos/u-1/empty.mp4", stream([])))

    assert (stored.bytes, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert Path(stored.location).read_bytes() == b""


def test_a_put_opens_writes_syncs_and_renames_off_the_event_loop_thread(
    storage: FilesystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: dict[str, str] = {}
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        threads["fsync"] = threading.current_thread().name
        real_fsync(fd)

    def replace(source: Path, target: Path) -> None:
        threads["replace"] = threading.current_thread().name
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)

    async def put_and_name_the_loop_thread() -> str:
        await storage.put("videos/u-1/clip.mp4", stream([b"a" * 1000, b"b"]))
        return threading.current_thread().name

    loop_thread = asyncio.run(put_and_name_the_loop_thread())

    assert set(threads) == {"fsync", "replace"}
    assert loop_thread not in threads.values()


def test_a_whole_put_removes_no_part_file_after_its_rename(storage: FilesystemStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    removed: list[str] = []
    real_unlink = Path.unlink

    def unlink(path: Path, missing_ok: bool = False) -> None:
        removed.append(path.name)
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)

    asyncio.run(storage.put("videos/u-1/clip.mp4", stream([b"a" * 1000, b"b"])))

    assert removed == []


def test_a_failed_put_over_an_existing_object_keeps_the_old_object_whole(
    storage: FilesystemStorage, root: Path
) -> None:
    asyncio.run(storage.put("videos/u-1/clip.mp4", stream([b"old video"])))

    with pytest.raises(ConnectionError):
        asyncio.run(storage.put("videos/u-1/clip.mp4", stream([b"new", b"video"], fail_after=1)))

    assert asyncio.run(read_all(storage, "videos/u-1/clip.mp4")) == b"old video"
    assert [path.name for path in files_under(root)] == ["clip.mp4"]


def test_a_second_put_replaces_the_object(storage: FilesystemStorage) -> None:
    asyncio.run(storage.put("a/b", stream([b"first"])))
    stored = asyncio.run(storage.put("a/b", stream([b"second", b"!"])))
    assert stored.bytes == 7
    assert asyncio.run(read_all(storage, "a/b")) == b"second!"


def test_passing_max_bytes_raises_input_too_big_and_stores_nothing(storage: FilesystemStorage, root: Path) -> None:
    with pytest.raises(InputTooBig) as raised:
        asyncio.run(storage.put("inputs/g/image", stream([b"x" * 600, b"x" * 600]), max_bytes=1000))

    assert raised.value.limit == 1000
    assert files_under(root) == []


def test_exactly_max_bytes_is_allowed(storage: FilesystemStorage) -> None:
    stored = asyncio.run(storage.put("inputs/g/image", stream([b"x" * 600, b"x" * 400]), max_bytes=1000))
    assert stored.bytes == 1000


@pytest.mark.parametrize(
    "key",
    [
        "",
        "..",
        "../outside",
        "a/../../outside",
        "a/..",
        "./a",
        "a/./b",
        "/etc/passwd",
        "//etc/passwd",
        "a\\..\\..\\b",
        "a\\b",
        "a//b",
        "a/",
        "/",
        "a/b/",
        ".hidden",
        "a/.x.part",
        "a\x00b",
        "a\nb",
        "~/x",
        "C:/x",
    ],
)
def test_keys_that_could_leave_the_root_or_hide_a_file_are_refused(
    storage: FilesystemStorage, root: Path, key: str
) -> None:
    with pytest.raises(UnsafeKey):
        storage.path(key)
    with pytest.raises(UnsafeKey):
        asyncio.run(storage.put(key, stream([b"x"])))
    with pytest.raises(UnsafeKey):
        storage.stat(key)
    with pytest.raises(UnsafeKey):
        storage.locate(key)
    assert files_under(root.parent) == []


def test_a_symlink_inside_the_root_cannot_lead_a_key_outside(storage: FilesystemStorage, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(UnsafeKey):
        asyncio.run(storage.put("link/x", stream([b"x"])))
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "user_id",
    [
        "../../etc",
        "/etc/passwd",
        "..",
        ".",
        "a/../../b",
        "a\\..\\..\\b",
        "",
        " ",
        "José 🎬 ünïcödé",
        "用户",
        "x" * 300,
        "../" * 100,
        "a\x00b",
        "\n",
    ],
)
def test_storage_keys_from_any_user_id_resolve_inside_the_root(
    storage: FilesystemStorage, root: Path, user_id: str
) -> None:
    generation_id = uuid4()
    # Operations and input roles are checked against fixed lists before they reach a key; user ids are free.
    for key in (
        video_key(user_id, "text-to-video", generation_id),
        video_key(user_id, "../../etc", generation_id),
        input_key(generation_id, "mask_image"),
    ):
        stored = asyncio.run(storage.put(key, stream([b"video"])))
        location = Path(stored.location).resolve()
        assert location.is_relative_to(root.resolve()), key
        assert location.is_file()
        assert len(location.name) <= 255
    assert files_under(root.parent) == files_under(root)


def test_different_user_ids_get_different_folders() -> None:
    ids = ["a/b", "a_b", "a b", "a..b", "A_B", "../a_b", "", "user", "x" * 300, "x" * 301]
    folders = {user_folder(user_id) for user_id in ids}
    assert len(folders) == len(ids)
    generation_id = UUID(int=7)
    assert len({video_key(user_id, "text-to-video", generation_id) for user_id in ids}) == len(ids)


def test_open_streams_back_the_same_bytes_in_chunks(storage: FilesystemStorage) -> None:
    data = os.urandom(2 * CHUNK + 17)
    asyncio.run(storage.put("videos/u/big.mp4", stream([data[: CHUNK // 3], data[CHUNK // 3 :]])))

    async def chunks() -> list[bytes]:
        return [chunk async for chunk in storage.open("videos/u/big.mp4")]

    received = asyncio.run(chunks())
    assert b"".join(received) == data
    assert len(received) == 3
    assert all(len(chunk) <= CHUNK for chunk in received)


def test_opening_a_missing_key_raises_file_not_found(storage: FilesystemStorage) -> None:
    with pytest.raises(FileNotFoundError):
        asyncio.run(read_all(storage, "videos/u/missing.mp4"))


def test_stat_gives_the_hash_and_size_or_none(storage: FilesystemStorage, root: Path) -> None:
    data = os.urandom(CHUNK + 5)
    stored = asyncio.run(storage.put("videos/u/v.mp4", stream([data])))

    found = storage.stat("videos/u/v.mp4")
    assert found == stored
    assert found is not None and found.sha256 == hashlib.sha256(data).hexdigest() and found.bytes == len(data)
    assert storage.stat("videos/u/other.mp4") is None
    assert storage.stat("videos/u") is None  # a folder is not an object
    assert storage.locate("videos/u/v.mp4") == stored.location


def test_a_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = FilesystemStorage(Path("relative-store"))
    stored = asyncio.run(storage.put("k", stream([b"x"])))
    assert Path(stored.location) == tmp_path.resolve() / "relative-store" / "k"
