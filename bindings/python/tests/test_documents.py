"""Document collections and keyspaces from Python."""
from __future__ import annotations

from pathlib import Path

import pytest

import keyval


@pytest.fixture
def store(tmp_path):  # type: ignore[no-untyped-def]
    with keyval.open(str(tmp_path / "db")) as s:
        yield s


def test_keyspaces(store: keyval.Store) -> None:
    ks = store.keyspace("users")
    ks[b"k"] = b"in users"
    store[b"k"] = b"default"
    assert ks[b"k"] == b"in users" and store[b"k"] == b"default"
    assert len(ks) == 1 and store.keyspaces() == ["users"]
    del ks[b"k"]
    assert len(ks) == 0
    with pytest.raises(keyval.NotFoundError):
        ks[b"k"]
    with pytest.raises(keyval.InvalidArgumentError):
        store.keyspace("")

    # One batch across the default keyspace and two named ones.
    orders = store.keyspace("orders")
    with store.batch() as b:
        b.put(b"k", b"default 2")
        b.put(b"u:2", b"bob", keyspace=ks)
        b.put(bytearray(b"u:1"), b"ann", keyspace=ks)
        b.put(b"o:1", b"u:1", keyspace=orders)
        b.delete(b"gone", keyspace=ks)
    assert store[b"k"] == b"default 2" and orders[b"o:1"] == b"u:1"
    assert list(ks) == [b"u:1", b"u:2"] and dict(ks.items(prefix=b"u:2")) == {b"u:2": b"bob"}
    assert list(ks.items(start=b"u:2")) == [(b"u:2", b"bob")] and list(ks.values()) == [b"ann", b"bob"]
    assert b"u:1" in ks and b"k" not in ks and ks.get(b"zz") is None
    assert ks.stats() == {"keys": 2, "key_bytes": 6, "value_bytes": 6}
    with pytest.raises(KeyError):
        del ks[b"zz"]
    ks.discard(b"zz")
    with pytest.raises(keyval.InvalidArgumentError):
        ks.items(prefix=b"u", start=b"a")
    assert repr(ks) == "<keyval.Keyspace 'users'>"

    assert store.drop_keyspace("users")
    with pytest.raises(keyval.NotFoundError):
        len(ks)
    with pytest.raises(keyval.NotFoundError):
        list(ks.items())
    with pytest.raises(keyval.NotFoundError):
        ks.stats()
    # A batch naming a dropped keyspace applies nothing.
    b = store.batch()
    b.put(b"k", b"default 3")
    b.put(b"u:3", b"cy", keyspace=ks)
    with pytest.raises(keyval.NotFoundError):
        b.commit()
    assert store[b"k"] == b"default 2"


def test_collection_crud_and_errors(store: keyval.Store) -> None:
    c = store.collection("people")
    assert c.insert({"name": "ann", "age": 30}) == "1"
    assert c.insert_many([{"name": "bob", "age": 25}, {"_id": "z", "age": 40}]) == ["2", "z"]
    st = store.stats()
    assert (st["collections"], st["keyspaces"]) == (1, 3)
    with pytest.raises(keyval.DuplicateKeyError):
        c.insert({"_id": "z"})
    with pytest.raises(keyval.InvalidArgumentError):
        c.insert({"_id": 5})
    assert c["1"]["name"] == "ann"
    assert c.get("missing") is None
    with pytest.raises(KeyError):
        c["missing"]
    assert c.update_with("1", {"$inc": {"age": 1}})["age"] == 31
    assert c.update("1", {"city": "oslo", "name": None}) == {"_id": "1", "age": 31, "city": "oslo"}
    with pytest.raises(keyval.InvalidArgumentError):
        c.update("1", {"_id": "x"})
    with pytest.raises(keyval.NotFoundError):
        c.update_many([("1", {"v": 1}), ("nope", {"v": 2})])
    assert "v" not in c["1"]
    c.replace("new", {"age": 7}, upsert=True)
    with pytest.raises(keyval.NotFoundError):
        c.replace("other", {"age": 7})
    assert c.delete("2") and not c.delete("2")
    assert store.collections() == ["people"]
    assert c.stats()["documents"] == 3
    assert store.drop_collection("people")
    assert store.collections() == []


def test_find_pages_indexes_and_explain(store: keyval.Store) -> None:
    c = store.collection("items")
    c.insert_many([{"n": i, "even": i % 2 == 0, "tags": [i % 3]} for i in range(100)])
    c.create_index("n")
    c.create_index("tags")
    with pytest.raises(keyval.DuplicateKeyError):
        c.create_index("even", unique=True)
    assert [i.path for i in c.indexes()] == ["_id", "n", "tags"]
    plan = c.explain({"n": {"$gte": 10, "$lt": 20}})
    assert plan.plan == "index" and plan.index == "n" and plan.entries == 10
    seen = []
    page = c.find({"even": True}, sort=["-n"], limit=7)
    while True:
        seen += [d["n"] for d in page.docs]
        assert page.total == 50
        if not page.has_next:
            break
        page = c.find({"even": True}, sort=["-n"], limit=7, after=page.next_cursor)
    assert seen == list(range(98, -1, -2))
    assert c.count({"tags": 1}) == 33
    assert sum(1 for _ in c.find_iter({"n": {"$lt": 50}})) == 50
    p = c.find({"n": 5}, projection={"n": 1, "_id": 0})
    assert p.docs == [{"n": 5}]
    for bad in ({"limit": -1}, {"limit": 1001}, {"offset": -1}):
        with pytest.raises(keyval.InvalidArgumentError):
            c.find(None, **bad)  # type: ignore[arg-type]
    with pytest.raises(keyval.InvalidArgumentError):
        c.find({"$nope": 1})


def test_documents_survive_reopen(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "db")
    with keyval.open(path) as s:
        c = s.collection("c")
        c.insert({"a": 1})
        c.create_index("a", unique=True)
    with keyval.open(path) as s:
        c = s.collection("c")
        assert c.explain({"a": 1}).index == "a"
        with pytest.raises(keyval.DuplicateKeyError):
            c.insert({"a": 1})
        assert c.insert({"a": 2}) == "2"


def test_hostile_document_input_is_refused_not_a_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 29: a 100,000-segment update path killed the interpreter with
    SIGSEGV; a 128-segment one stored a document no query could read; a
    failed write created the collection; a missing collection answered
    some reads with NotFound and others as empty."""
    path = str(tmp_path / "db")
    with keyval.open(path) as s:
        c = s.collection("x")
        doc_id = c.insert({"a": 1})
        for op in ("$set", "$inc", "$max", "$push"):
            with pytest.raises(keyval.InvalidArgumentError):
                c.update_with(doc_id, {op: {".".join(["a"] * 100_000): 1}})
        with pytest.raises(keyval.InvalidArgumentError):
            c.update_with(doc_id, {"$set": {".".join(["b"] * 128): 1}})
        assert c.count() == 1 and c[doc_id] == {"_id": doc_id, "a": 1}
        with pytest.raises(keyval.InvalidArgumentError):
            c.find({"a": {"$gt": 1, "b": 2}})
        with pytest.raises(keyval.InvalidArgumentError):
            c.find({"a..b": 1})

        # A failed write leaves no collection behind.
        bad = s.collection("never")
        for attempt in (
            lambda: bad.insert({"_id": 5}),
            lambda: bad.insert({"v": float("nan")}),
            lambda: bad.insert_many([{"_id": "1"}, {"_id": "1"}]),
            lambda: bad.insert({"$where": 1}),
            lambda: bad.create_index("a..b"),
        ):
            with pytest.raises((keyval.InvalidArgumentError, keyval.DuplicateKeyError, ValueError)):
                attempt()
        assert s.collections() == ["x"]

        # A missing collection reads as empty, whichever read asks.
        assert bad.find().docs == [] and bad.get("1") is None and bad.count() == 0
        assert [i.path for i in bad.indexes()] == ["_id"] and not bad.delete("1")
        assert bad.stats()["documents"] == 0 and not bad.drop_index("a")
        assert s.collections() == ["x"]

        # create_collection creates it now, and list_* are the documented names.
        made = s.create_collection("made")
        assert s.list_collections() == ["made", "x"] and made.list_indexes()[0].path == "_id"
    with keyval.open(path) as s:
        assert s.collections() == ["made", "x"]


def test_every_operation_on_every_keyspace(tmp_path: Path) -> None:
    """A Store is its default keyspace: the same methods, written once, on
    it and on a named keyspace."""
    with keyval.open(tmp_path / "db") as db:
        named = db.keyspace("named")
        assert db.name == "" and named.name == "named"
        for ks in (db, named):
            mine = b"value of " + ks.name.encode()
            ks[b"a"] = b"1"
            ks.set(b"b", mine, durability="os")
            with pytest.raises(keyval.InvalidArgumentError):
                ks.set(b"c", b"3", durability="fast")
            assert b"a" in ks and b"zz" not in ks
            assert ks.get_many([b"a", b"b", b"zz"]) == [b"1", mine, None]
            ks.discard(b"a", durability="sync")
            assert len(ks) == 1 and list(ks.keys()) == [b"b"]
            with db.batch() as b:
                b.put(b"batched", b"x", keyspace=ks)
            assert ks[b"batched"] == b"x"
        assert db[b"b"] == b"value of "
        assert named[b"b"] == b"value of named"
        assert named.stats()["keys"] == 2
        assert "wal_segments" in db.stats()
    with pytest.raises(keyval.ClosedError):
        named[b"b"]
    with pytest.raises(keyval.ClosedError):
        db[b"b"]
