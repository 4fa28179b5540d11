"""The conformance suite every index kind passes (after Haystack's `haystack/testing/document_store.py`).

A kind's test module inherits `IndexContractTests` and supplies a `kit` fixture: an `IndexKit` that
opens that kind with a test model, makes items and reads back which are stored.

    class TestTextIndexContract(IndexContractTests):
        @pytest.fixture
        def kit(self, tmp_path):
            return TextIndexKit(tmp_path / "scratch")

`python -m indexes.testing KIT SCRATCH INDEX START` is the writer the kill -9 test kills: it writes
forever and reports each write as JSON lines, "begin" before it and "done" once it has committed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from indexes.base import BaseIndex, Index
from polymodal.errors import EmbedderMismatch, InputError, StoreError
from polymodal.lazy import resolve

__all__ = ["IndexKit", "TextIndexKit", "ImageIndexKit", "IndexContractTests", "assert_tables_match_sqlite"]


class IndexKit:
    """How the contract tests drive one index kind. It is built from a scratch folder alone: the
    writer process of the kill -9 test rebuilds it from its "module:Class" name and that folder."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = Path(scratch)

    def model(self) -> Any:
        """The model a new test index is made with."""
        raise NotImplementedError

    def other_model(self) -> Any:
        """A model with another name."""
        raise NotImplementedError

    def wider_model(self) -> Any:
        """A model with the test model's name but another dimension."""
        raise NotImplementedError

    def open(self, path: Path, model: Any = None, **kw: Any) -> BaseIndex:
        raise NotImplementedError

    def items(self, group: int, n: int = 3) -> list[Any]:
        """`n` new items, distinct from those of every other group."""
        raise NotImplementedError

    def key(self, item: Any) -> str:
        """What `delete` takes to remove the item."""
        raise NotImplementedError

    def keys(self, index: BaseIndex) -> set[str]:
        """The keys of every stored item."""
        raise NotImplementedError

    def nearest(self, index: BaseIndex, key: str, k: int = 3) -> list[str]:
        """Keys of the top-k dense hits for a query made from the stored item `key`."""
        raise NotImplementedError

    def add(self, index: BaseIndex, items: list[Any]) -> None:
        """Store `items` in one transaction."""
        index.add(items)  # type: ignore[attr-defined]


class TextIndexKit(IndexKit):
    """Documents of random words (several chunks each), embedded by the hashing fake."""

    def model(self) -> Any:
        from indexes.embedders import HashEmbedder

        return HashEmbedder(64)

    def other_model(self) -> Any:
        from indexes.embedders import HashEmbedder

        return HashEmbedder(32)

    def wider_model(self) -> Any:
        model = self.other_model()
        model.name = self.model().name
        return model

    def open(self, path: Path, model: Any = None, **kw: Any) -> BaseIndex:
        from indexes.text import TextIndex

        return TextIndex.open(path, model, chunk_tokens=20, **kw)

    def items(self, group: int, n: int = 3) -> list[Any]:
        from indexes.text import Document

        rng = np.random.default_rng(group)
        words = [[f"group{group}", f"item{j}"] + [f"w{w}" for w in rng.integers(0, 5000, 40)] for j in range(n)]
        return [Document(f"g{group}-{j}", " ".join(words[j]), source=f"/kit/g{group}/{j}.txt") for j in range(n)]

    def key(self, item: Any) -> str:
        return item.id

    def keys(self, index: Any) -> set[str]:
        return {d.doc_id for d in index.list_documents()}

    def nearest(self, index: Any, key: str, k: int = 3) -> list[str]:
        text = index.get_by_ids([key])[0].text
        return list(dict.fromkeys(h.doc_id for h in index.search(text, k=k * 4, mode="dense")))[:k]


class ImageIndexKit(IndexKit):
    """Small PNGs of random 4x4 colour blocks, encoded by the colour fake (its visual space is a
    4x4 miniature, so each image's nearest neighbour is itself)."""

    def model(self) -> Any:
        from indexes.image_encoders.fake import ColourEncoder

        return ColourEncoder()

    def other_model(self) -> Any:
        from indexes.image_encoders.fake import ColourEncoder

        return type("OtherColours", (ColourEncoder,), {"name": "fake-colour-other"})()

    def wider_model(self) -> Any:
        from indexes.image_encoders.fake import ColourEncoder

        return type("WiderColours", (ColourEncoder,), {"dim": 9})()

    def open(self, path: Path, model: Any = None, **kw: Any) -> BaseIndex:
        from indexes.images import ImageIndex

        return ImageIndex.open(path, model, **kw)

    def items(self, group: int, n: int = 3) -> list[Any]:
        from PIL import Image

        folder = (self.scratch / f"g{group}").resolve()
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(group)
        paths = []
        for j in range(n):
            blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            Image.fromarray(blocks).resize((32, 32), Image.NEAREST).save(folder / f"{j}.png")
            paths.append(folder / f"{j}.png")
        return paths

    def key(self, item: Any) -> str:
        return str(item)

    def keys(self, index: Any) -> set[str]:
        return {i.path for i in index.list_images()}

    def nearest(self, index: Any, key: str, k: int = 3) -> list[str]:
        return [h.path for h in index.search(image=key, k=k)]


def assert_tables_match_sqlite(index: BaseIndex) -> None:
    """Every vector table's FAISS side holds exactly the ids SQLite holds (deleted ones may linger
    as tombstones, which searches skip)."""
    for name, t in index.tables.items():
        assert set(t.ids().tolist()) <= set(t.faiss_ids().tolist()), f"{name}: vectors missing from FAISS"
        assert t.ntotal - t.tombstones() == t.count(), f"{name}: FAISS and SQLite disagree"


class IndexContractTests:
    """Tests every index kind passes; subclasses provide the `kit` fixture (see module doc)."""

    @pytest.fixture
    def kit(self) -> IndexKit:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("provide a `kit` fixture returning an IndexKit")

    def test_add_count_search_delete(self, kit: IndexKit, tmp_path: Path) -> None:
        items = kit.items(0)
        keys = [kit.key(i) for i in items]
        with kit.open(tmp_path / "index", kit.model()) as index:
            assert isinstance(index, Index)
            kit.add(index, items)
            assert index.count() == 3 and kit.keys(index) == set(keys)
            assert all(kit.nearest(index, key)[:1] == [key] for key in keys)
            assert index.delete([keys[0]]) == 1
            assert index.delete([keys[0]]) == 0  # unknown keys are a no-op
            assert index.count() == 2 and keys[0] not in kit.nearest(index, keys[1], k=5)
            assert_tables_match_sqlite(index)

    def test_reopen_after_save_with_the_recorded_model(self, kit: IndexKit, tmp_path: Path) -> None:
        path = tmp_path / "index"
        with kit.open(path, kit.model()) as index:
            kit.add(index, kit.items(0))
            before = {key: kit.nearest(index, key) for key in kit.keys(index)}
            manifest = index.manifest
        for read_only in (False, True):
            with kit.open(path, read_only=read_only) as index:  # no model: the manifest's
                assert index.manifest == manifest and manifest[index.model_role] == kit.model().name
                assert {key: kit.nearest(index, key) for key in kit.keys(index)} == before

    def test_a_read_only_index_refuses_writes(self, kit: IndexKit, tmp_path: Path) -> None:
        path = tmp_path / "index"
        with kit.open(path, kit.model()) as index:
            kit.add(index, kit.items(0))
            key = sorted(kit.keys(index))[0]
        with kit.open(path, read_only=True) as index:
            with pytest.raises(StoreError, match="read-only"):
                kit.add(index, kit.items(1))
            with pytest.raises(StoreError, match="read-only"):
                index.delete([key])
            with pytest.raises(StoreError, match="read-only"):
                index.save()
            assert index.count() == 3

    def test_opening_what_is_not_an_index_of_this_kind(self, kit: IndexKit, tmp_path: Path) -> None:
        with pytest.raises(InputError):
            kit.open(tmp_path / "absent", read_only=True)
        with pytest.raises(InputError):
            kit.open(tmp_path / "absent", kit.model(), create=False)
        (tmp_path / "file").write_text("x")
        with pytest.raises(InputError):
            kit.open(tmp_path / "file", kit.model())
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "manifest.json").write_text(json.dumps({"kind": "elsewhere"}))
        with pytest.raises(StoreError, match="elsewhere"):
            kit.open(tmp_path / "other", kit.model())
        assert not (tmp_path / "absent").exists()

    def test_another_model_or_dimension_is_a_clear_error(self, kit: IndexKit, tmp_path: Path) -> None:
        path = tmp_path / "index"
        kit.open(path, kit.model()).close()
        with pytest.raises(EmbedderMismatch, match=re.escape(kit.model().name)):
            kit.open(path, kit.other_model())
        with pytest.raises(EmbedderMismatch, match="dim"):
            kit.open(path, kit.wider_model())
        with kit.open(path, kit.model()) as index:  # the same model is welcome
            assert index.count() == 0

    def test_no_pickle_on_disk(self, kit: IndexKit, tmp_path: Path) -> None:
        with kit.open(tmp_path / "index", kit.model()) as index:
            kit.add(index, kit.items(0))
        for f in (tmp_path / "index").rglob("*"):
            if f.is_file():
                assert not f.read_bytes()[:1] == b"\x80", f"{f.name} looks like a pickle"

    @pytest.mark.parametrize("lost", ["*.faiss", "*.faiss*"])  # the FAISS files, or also their pointers
    @pytest.mark.parametrize("read_only", [False, True])
    def test_lost_faiss_files_are_rebuilt_from_sqlite(
        self, kit: IndexKit, tmp_path: Path, lost: str, read_only: bool
    ) -> None:
        path = tmp_path / "index"
        with kit.open(path, kit.model()) as index:
            kit.add(index, kit.items(0))
            keys = kit.keys(index)
        for f in path.glob(lost):
            f.unlink()
        with kit.open(path, read_only=read_only) as index:
            assert all(kit.nearest(index, key)[:1] == [key] for key in keys)
            assert_tables_match_sqlite(index)

    @pytest.mark.parametrize("read_only", [False, True])
    def test_faiss_lagging_behind_sqlite_is_repaired_on_open(
        self, kit: IndexKit, tmp_path: Path, read_only: bool
    ) -> None:
        path = tmp_path / "index"
        with kit.open(path, kit.model()) as index:
            kit.add(index, kit.items(0))
        saved = {f.name: f.read_bytes() for f in path.glob("*.faiss*")}
        with kit.open(path) as index:
            kit.add(index, kit.items(1))
            keys = kit.keys(index)
        # a crash after the second write's commit, before its FAISS files were saved
        for f in path.glob("*.faiss*"):
            f.unlink()
        for name, data in saved.items():
            (path / name).write_bytes(data)
        with kit.open(path, read_only=read_only) as index:
            assert sum(r["added"] for r in index.repair_report.values()) > 0
            assert all(kit.nearest(index, key)[:1] == [key] for key in keys)
            assert_tables_match_sqlite(index)

    @pytest.mark.parametrize("read_only", [False, True])
    def test_a_reader_sees_a_writers_commits(self, kit: IndexKit, tmp_path: Path, read_only: bool) -> None:
        path = tmp_path / "index"
        first, second = kit.items(0), kit.items(1)
        with kit.open(path, kit.model()) as writer:
            kit.add(writer, first)
            with kit.open(path, read_only=read_only) as reader:
                writer.delete([kit.key(first[0])])  # a reader's first catch-up may be a removal
                assert kit.key(first[0]) not in kit.keys(reader)
                assert kit.key(first[0]) not in kit.nearest(reader, kit.key(first[1]), k=3)
                kit.add(writer, second)
                assert reader.count() == 5
                assert all(kit.nearest(reader, kit.key(i))[:1] == [kit.key(i)] for i in second)
                assert_tables_match_sqlite(reader)

    @pytest.mark.parametrize("delay", [0.02, 0.25, 0.75])
    def test_kill_9_mid_write_leaves_the_last_committed_state(
        self, kit: IndexKit, tmp_path: Path, delay: float
    ) -> None:
        path = tmp_path / "index"
        rounds: list[list[dict]] = []
        # Three kills, more (up to eight) until one lands inside a write: the writer leaves almost no
        # time between one write's "done" and the next one's "begin", but a busy machine may
        # preempt it there, as writing "done" wakes this process.
        while len(rounds) < 3 or (len(rounds) < 8 and all(r[-1]["state"] == "done" for r in rounds)):
            rounds.append(_kill_writer(kit, path, start=len(rounds) * 1000, delay=delay))
        events = [e for r in rounds for e in r]
        # the kill clock starts at the first acknowledged commit: every round committed something
        assert all(any(e["state"] == "done" for e in r) for r in rounds)
        in_flight = [r[-1] for r in rounds if r[-1]["state"] == "begin"]
        assert in_flight, "no write was in flight when the writer was killed"
        begun = {k for e in events if e["op"] == "add" for k in e["keys"]}
        added = {k for e in events if e["op"] == "add" and e["state"] == "done" for k in e["keys"]}
        deleting = {k for e in events if e["op"] == "delete" for k in e["keys"]}
        deleted = {k for e in events if e["op"] == "delete" and e["state"] == "done" for k in e["keys"]}
        with kit.open(path) as index:
            stored = kit.keys(index)
            assert stored <= begun, "an item no writer began to add is stored"
            assert added - deleting <= stored, "an acknowledged add was lost"
            assert not deleted & stored, "an acknowledged delete was undone"
            for e in in_flight:
                assert set(e["keys"]) & stored in (set(), set(e["keys"])), "a write was applied in part"
            assert_tables_match_sqlite(index)
            for key in sorted(stored)[:5]:
                assert kit.nearest(index, key)[:1] == [key]
            kit.add(index, kit.items(99_999))  # still writable
            assert index.count() == len(stored) + 3


def _kill_writer(kit: IndexKit, path: Path, start: int, delay: float) -> list[dict]:
    """Run the writer, SIGKILL it `delay` s after its first acknowledged commit; its reports."""
    ref = f"{type(kit).__module__}:{type(kit).__qualname__}"
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    kit.scratch.mkdir(parents=True, exist_ok=True)
    with open(kit.scratch / f"writer-{start}.err", "w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "indexes.testing", ref, str(kit.scratch), str(path), str(start)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        events: list[dict] = []
        try:
            while not any(e["state"] == "done" for e in events):
                line = lines.get(timeout=300)
                if line is None:
                    err.seek(0)
                    pytest.fail(f"the writer exited before its first commit:\n{err.read()[-2000:]}")
                events.append(json.loads(line))
            time.sleep(delay)
        finally:
            proc.kill()
            proc.wait()
        while (line := lines.get(timeout=60)) is not None:
            events.append(json.loads(line))
    return events


def _pump(stream: Any, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _operations(kit: IndexKit, start: int) -> Iterator[tuple[str, Any, list[str]]]:
    """Add group after group; every third group also deletes an item of the group before."""
    group, previous = start, None
    while True:
        items = kit.items(group)
        keys = [kit.key(i) for i in items]
        yield "add", items, keys
        if group % 3 == 0 and previous is not None:
            yield "delete", previous[:1], previous[:1]
        group, previous = group + 1, keys


def _write_forever(kit_ref: str, scratch: str, path: str, start: int) -> None:
    kit = resolve(kit_ref, "index kit")(Path(scratch))
    index = kit.open(Path(path), kit.model())
    ops = _operations(kit, start)
    op = next(ops)
    while True:
        verb, arg, keys = op
        print(json.dumps({"op": verb, "state": "begin", "keys": keys}), flush=True)
        if verb == "add":
            kit.add(index, arg)
        else:
            index.delete(arg)
        op = next(ops)  # the next items are made before this acknowledgement, not between writes
        print(json.dumps({"op": verb, "state": "done", "keys": keys}), flush=True)


if __name__ == "__main__":
    _write_forever(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
