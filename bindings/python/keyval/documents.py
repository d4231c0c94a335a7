"""Document collections of a :class:`~keyval.Store`.

Documents are ``dict`` objects (JSON objects) with a string ``_id``; filters,
options and update operators are the MongoDB-style JSON described in
``docs/documents.md``. Every write is one atomic batch with its index entries.
"""
from __future__ import annotations

import json
from ctypes import byref, c_int32, c_size_t, c_uint64, c_void_p
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from . import _native
from ._handle import _Calls, _json_out
from ._native import lib
from .errors import _check

Document = Dict[str, Any]
"""A JSON object as ``json`` decodes it."""


def _enc(x: Any) -> bytes:
    return json.dumps(x, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Page:
    """One page of :meth:`Collection.find` results."""

    docs: List[Document]
    total: int
    has_next: bool
    has_prev: bool
    next_cursor: Optional[str]
    prev_cursor: Optional[str]


@dataclass
class IndexInfo:
    """One index: its dotted path, whether unique, whether multikey."""

    path: str
    unique: bool
    multikey: bool


@dataclass
class Plan:
    """How :meth:`Collection.find` runs a query."""

    plan: str
    index: Optional[str]
    ranges: int
    entries: int
    sort: str


class Collection:
    """A collection of JSON documents; get one with :meth:`Store.collection`.
    Created by its first write. Thread-safe like its Store."""

    def __init__(self, store: _Calls, name: str) -> None:
        self._store = store
        self.name = name
        self._n = name.encode()

    def __repr__(self) -> str:
        return f"Collection({self.name!r})"

    def _c(self, fn: Any, *args: Any) -> int:
        status: int = self._store._call(fn, self._n, len(self._n), *args)
        return status

    def insert(self, doc: Mapping[str, Any]) -> str:
        """Insert ``doc`` and return its id (its ``_id``, or the next automatic
        id ``"1"``, ``"2"``, ...). Raises :class:`DuplicateKeyError` if the
        ``_id`` exists or a unique index holds one of its values,
        :class:`InvalidArgumentError` for a non-object or a non-string ``_id``."""
        d = _enc(doc)
        out = _native._u8p()
        n = c_size_t()
        _check(self._c(lib.kv_doc_insert, d, len(d), byref(out), byref(n)))
        try:
            return bytes(bytearray(out[: n.value])).decode()
        finally:
            lib.kv_free(out)

    def insert_many(self, docs: Sequence[Mapping[str, Any]]) -> List[str]:
        """Insert every document atomically (all or none); returns the ids."""
        d = _enc(list(docs))
        ids: List[str] = _json_out(self._store, lib.kv_doc_insert, self._n, len(self._n), d, len(d))
        return ids

    def get(self, id: str, default: Optional[Document] = None) -> Optional[Document]:
        """The document ``id``, or ``default`` if it (or the collection) is absent."""
        from .errors import NotFoundError
        i = id.encode()
        try:
            doc: Document = _json_out(self._store, lib.kv_doc_get, self._n, len(self._n), i, len(i))
        except NotFoundError:
            return default
        return doc

    def __getitem__(self, id: str) -> Document:
        """The document ``id``; raises :class:`NotFoundError` (a KeyError)."""
        i = id.encode()
        doc: Document = _json_out(self._store, lib.kv_doc_get, self._n, len(self._n), i, len(i))
        return doc

    def delete(self, id: str) -> bool:
        """Delete document ``id``; returns whether it existed."""
        i = id.encode()
        existed = c_int32()
        _check(self._c(lib.kv_doc_delete, i, len(i), byref(existed)))
        return bool(existed.value)

    def _update(self, id: str, change: Any, mode: int) -> Document:
        i, c = id.encode(), _enc(change)
        doc: Document = _json_out(self._store, lib.kv_doc_update, self._n, len(self._n), i, len(i), c,
                                  len(c), mode)
        return doc

    def update(self, id: str, patch: Mapping[str, Any]) -> Document:
        """Apply a JSON merge patch (RFC 7396) to document ``id``; returns the new
        document. Raises NotFoundError, InvalidArgumentError (changing ``_id``),
        DuplicateKeyError (a unique index)."""
        return self._update(id, patch, 0)

    def update_with(self, id: str, ops: Mapping[str, Any]) -> Document:
        """Apply update operators (``$set $unset $inc $mul $min $max $rename $push
        $pull``) to document ``id``; returns the new document."""
        return self._update(id, ops, 1)

    def replace(self, id: str, doc: Mapping[str, Any], upsert: bool = False) -> Document:
        """Replace document ``id``; with ``upsert`` a missing one is inserted,
        without it NotFoundError is raised."""
        return self._update(id, doc, 3 if upsert else 2)

    def update_many(self, patches: Sequence[Tuple[str, Mapping[str, Any]]]) -> None:
        """Merge-patch several documents atomically; one missing id raises
        NotFoundError and changes nothing."""
        p = _enc([[i, d] for i, d in patches])
        _check(self._c(lib.kv_doc_update_many, p, len(p)))

    @staticmethod
    def _options(sort: Optional[Sequence[str]], projection: Optional[Mapping[str, int]],
                 limit: Optional[int], offset: Optional[int], after: Optional[str],
                 before: Optional[str]) -> bytes:
        o: Dict[str, Any] = {}
        for k, v in (("sort", list(sort) if sort is not None else None), ("projection", projection),
                     ("limit", limit), ("offset", offset), ("after", after), ("before", before)):
            if v is not None:
                o[k] = v
        return _enc(o)

    def find(self, filter: Optional[Mapping[str, Any]] = None, *, sort: Optional[Sequence[str]] = None,
             projection: Optional[Mapping[str, int]] = None, limit: Optional[int] = None,
             offset: Optional[int] = None, after: Optional[str] = None,
             before: Optional[str] = None) -> Page:
        """One page of the documents matching ``filter`` (``None`` for all),
        sorted by ``sort`` (``["-age", "name"]``; ties and default by ``_id``).
        Pass ``page.next_cursor`` as ``after`` for the next page. Raises
        InvalidArgumentError for a bad filter, a negative offset, a limit over
        1000, or a cursor with an offset."""
        f = _enc(filter or {})
        o = self._options(sort, projection, limit, offset, after, before)
        r = _json_out(self._store, lib.kv_doc_find, self._n, len(self._n), f, len(f), o, len(o))
        return Page(docs=r["docs"], total=r["total"], has_next=r["has_next"], has_prev=r["has_prev"],
                    next_cursor=r["next_cursor"], prev_cursor=r["prev_cursor"])

    def find_iter(self, filter: Optional[Mapping[str, Any]] = None) -> Iterator[Document]:
        """Every matching document in ``_id`` order, fetched 1000 at a time."""
        after: Optional[str] = None
        while True:
            page = self.find(filter, limit=1000, after=after)
            yield from page.docs
            if not page.has_next:
                return
            after = page.next_cursor

    def count(self, filter: Optional[Mapping[str, Any]] = None) -> int:
        """The number of documents matching ``filter``."""
        f = _enc(filter or {})
        n = c_uint64()
        _check(self._c(lib.kv_doc_count, f, len(f), byref(n)))
        return n.value

    def explain(self, filter: Optional[Mapping[str, Any]] = None, *,
                sort: Optional[Sequence[str]] = None) -> Plan:
        """How :meth:`find` would run: the index used or a collection scan."""
        f = _enc(filter or {})
        o = self._options(sort, None, None, None, None, None)
        r = _json_out(self._store, lib.kv_doc_explain, self._n, len(self._n), f, len(f), o, len(o))
        return Plan(plan=r["plan"], index=r["index"], ranges=r["ranges"], entries=r["entries"],
                    sort=r["sort"])

    def create_index(self, path: str, unique: bool = False) -> None:
        """Index the dotted ``path``; DuplicateKeyError (nothing written) if
        ``unique`` and two documents share a value."""
        p = path.encode()
        _check(self._c(lib.kv_coll_create_index, p, len(p), 1 if unique else 0))

    def drop_index(self, path: str) -> bool:
        """Drop the index on ``path``; returns whether it existed."""
        p = path.encode()
        existed = c_int32()
        _check(self._c(lib.kv_coll_drop_index, p, len(p), byref(existed)))
        return bool(existed.value)

    def indexes(self) -> List[IndexInfo]:
        """Every index, ``_id`` first."""
        r = _json_out(self._store, lib.kv_coll_list_indexes, self._n, len(self._n))
        return [IndexInfo(path=i["path"], unique=i["unique"], multikey=i["multikey"]) for i in r]

    def list_indexes(self) -> List[IndexInfo]:
        """Every index, ``_id`` first (the same as :meth:`indexes`)."""
        return self.indexes()

    def stats(self) -> Dict[str, int]:
        """``{"documents", "bytes", "indexes", "index_entries"}``."""
        r: Dict[str, int] = _json_out(self._store, lib.kv_coll_stats, self._n, len(self._n))
        return r
