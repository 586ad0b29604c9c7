"""Searching a producer's segments: the query's words, the database's own search, the pages.

What a user types is never handed to a query language. It is cut into words and ``"quoted
phrases"`` here, every character that is not a letter, a mark or a digit dropped, and each
term is then written out as a quoted phrase of plain words: for FTS5 (``"harbour master"``)
and for PostgreSQL's ``websearch_to_tsquery``, which never raises a syntax error anyway.
A segment matches when it holds every term; ``*``, ``NEAR(``, ``OR`` or ``-`` mean nothing
special. Both databases fold case and keep diacritics, and neither stems ("run" does not
find "running"): SQLite's ``unicode61`` tokenizer, PostgreSQL's ``simple`` configuration.

Ranking is the database's: BM25 on SQLite, ``ts_rank_cd`` on PostgreSQL (cover density,
so terms close together rank first), then newer jobs, then earlier in the recording. Pages
are offsets into that order, carried by a cursor tied to the query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import connection
from django.utils.html import escape

from voxhelm.errors import InvalidInput
from voxhelm.search.index import HIT_END, HIT_START

MAX_QUERY_CHARS = 500
MAX_TERMS = 16
MAX_OFFSET = 10_000
SNIPPET_WORDS = 24  # FTS5's snippet() takes it in the statement below, as a literal
CURSOR_PREFIX = "srch_"
_PHRASE = re.compile(r'"([^"]*)"')
_WORD_CATEGORIES = ("L", "M", "N")


@dataclass(frozen=True)
class Query:
    """The terms of a search: each a word, or a phrase of words separated by one space."""

    terms: tuple[str, ...]

    def quoted(self) -> str:
        """Every term as a quoted phrase: FTS5's syntax and ``websearch_to_tsquery``'s."""
        return " ".join(f'"{term}"' for term in self.terms)

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.terms).encode()).hexdigest()[:16]


def _words(text: str) -> list[str]:
    """The runs of letters, marks and digits in ``text`` (what both tokenizers index)."""
    kept = "".join(
        char if unicodedata.category(char)[0] in _WORD_CATEGORIES else " " for char in text
    )
    return kept.casefold().split()


def parse_query(text: str, param: str = "q") -> Query:
    """The terms of what a user typed; :class:`InvalidInput` when it holds no word, is too
    long, or holds a NUL (no database stores one)."""
    if "\x00" in text:
        raise InvalidInput("The search query must not contain NUL characters.", param=param)
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(
            f"The search query is longer than {MAX_QUERY_CHARS} characters.", param=param
        )
    terms: list[str] = []
    for phrase in _PHRASE.findall(text):
        terms.append(" ".join(_words(phrase)))
    terms.extend(_words(_PHRASE.sub(" ", text)))
    unique = tuple(dict.fromkeys(term for term in terms if term))
    if not unique:
        raise InvalidInput("The search query has no words to search for.", param=param)
    if len(unique) > MAX_TERMS:
        raise InvalidInput(
            f"The search query has more than {MAX_TERMS} words and phrases.", param=param
        )
    return Query(unique)


@dataclass(frozen=True)
class Hit:
    """A segment that matches: where it is, its text, and a snippet with the matches."""

    job_id: UUID
    start: float
    end: float
    speaker: str
    text: str
    marked: str  # the snippet, matches between HIT_START and HIT_END

    def snippet_html(self) -> str:
        """The snippet as HTML: the text escaped, each match in ``<mark>``."""
        return escape(self.marked).replace(HIT_START, "<mark>").replace(HIT_END, "</mark>")


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    has_more: bool
    next_cursor: str | None


def search(producer: str, query: Query, *, limit: int, after: str | None = None) -> Results:
    """One page of ``producer``'s segments that match ``query``, best first."""
    offset = _offset(after, query) if after else 0
    params: list[Any]
    if connection.vendor == "postgresql":
        sql, params = POSTGRES_SEARCH, [HEADLINE_OPTIONS, query.quoted()]
    else:
        sql, params = SQLITE_SEARCH, [HIT_START, HIT_END, query.quoted()]
    params += [producer, limit + 1, offset]  # the parameters both statements end with
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    hits = [_hit(row) for row in rows[:limit]]
    has_more = len(rows) > limit and offset + limit < MAX_OFFSET
    cursor_text = _cursor(offset + limit, query) if has_more else None
    return Results(hits, has_more, cursor_text)


def _hit(row: tuple[Any, ...]) -> Hit:
    job_id, start, end, speaker, text, marked = row
    return Hit(UUID(str(job_id)), float(start), float(end), speaker, text, marked)


# The statements are constants: every value the user gives is a parameter.
SQLITE_SEARCH = (
    'SELECT s.job_id, s.start, s."end", s.speaker, s.text, '
    "snippet(voxhelm_search_segment_fts, 0, %s, %s, '…', 24) "
    "FROM voxhelm_search_segment_fts "
    "JOIN voxhelm_search_segment s ON s.id = voxhelm_search_segment_fts.rowid "
    "JOIN voxhelm_jobs_job j ON j.id = s.job_id "
    "WHERE voxhelm_search_segment_fts MATCH %s AND s.producer = %s "
    "ORDER BY bm25(voxhelm_search_segment_fts), j.created_at DESC, s.start, s.id "
    "LIMIT %s OFFSET %s"
)
POSTGRES_SEARCH = (
    'SELECT s.job_id, s.start, s."end", s.speaker, s.text, '
    "ts_headline('simple'::regconfig, s.text, q.query, %s) "
    "FROM voxhelm_search_segment s JOIN voxhelm_jobs_job j ON j.id = s.job_id, "
    "(SELECT websearch_to_tsquery('simple'::regconfig, %s) AS query) q "
    "WHERE s.producer = %s AND s.tsv @@ q.query "
    "ORDER BY ts_rank_cd(s.tsv, q.query) DESC, "
    "j.created_at DESC, s.start, s.id LIMIT %s OFFSET %s"
)
HEADLINE_OPTIONS = (
    f"StartSel={HIT_START}, StopSel={HIT_END}, MaxWords={SNIPPET_WORDS}, "
    f"MinWords={SNIPPET_WORDS // 2}, ShortWord=0"
)


def _cursor(offset: int, query: Query) -> str:
    raw = f"{offset}|{query.fingerprint()}".encode("ascii")
    return CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _offset(after: str, query: Query) -> int:
    """The offset a cursor of this same query points at; any other cursor is refused."""
    body = after.removeprefix(CURSOR_PREFIX)
    try:
        if not after.startswith(CURSOR_PREFIX):
            raise ValueError(after)
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
        offset_text, _, fingerprint = raw.partition("|")
        offset = int(offset_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        offset, fingerprint = -1, ""
    if not 0 < offset <= MAX_OFFSET or fingerprint != query.fingerprint():
        raise InvalidInput(
            "'after' must be the next_cursor of an earlier page of the same search.",
            param="after",
            code="invalid_cursor",
        )
    return offset
