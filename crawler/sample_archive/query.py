"""archive.org's search query language, evaluated over item documents.

Queries are parsed with ``luqum`` (a Lucene query parser: archive.org search is Lucene/Solr
underneath) and the tree is evaluated against plain dicts. Covered: ``field:value``, quoted
phrases, ``*``/``?`` wildcards (escaped slashes included, as in ``licenseurl:*by\\/4.0*``),
``AND``/``OR``/``NOT``, ``-`` and ``+``, parentheses, field groups and ``[a TO b]`` ranges. An
implicit operator between terms means AND, as on archive.org.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser

# Fields searched word by word; all others compare whole values (case-insensitively).
TEXT_FIELDS = {"title", "description", "creator", "subject"}
DEFAULT_FIELDS = ("identifier", "title", "description", "creator", "subject")

Doc = dict[str, object]
Predicate = Callable[[Doc], bool]


class QueryError(ValueError):
    """The query cannot be parsed or uses syntax this stand-in does not support."""


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _values(doc: Doc, field: str) -> list[str]:
    value = doc.get(field)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _match_word(value: str, word: str, field: str) -> bool:
    word = word.lower()
    value = value.lower()
    wildcard = "*" in word or "?" in word
    if field in TEXT_FIELDS:
        toks = _tokens(value)
        if wildcard:
            return any(fnmatch.fnmatchcase(t, word) for t in toks)
        return all(t in toks for t in _tokens(word)) if _tokens(word) else False
    if wildcard:
        return fnmatch.fnmatchcase(value, word)
    return value == word


def _match_phrase(value: str, phrase: str, field: str) -> bool:
    if field in TEXT_FIELDS:
        return " ".join(_tokens(phrase)) in " ".join(_tokens(value))
    return value.lower() == phrase.lower()


def compile_query(q: str) -> Predicate:
    """Parse ``q`` into a predicate over item documents; raise ``QueryError`` if it can't."""
    if not q or not q.strip():
        raise QueryError("empty query")
    try:
        node = parser.parse(q)
    except (ParseError, Exception) as exc:  # luqum raises a few kinds on bad input
        raise QueryError(f"cannot parse query: {exc}") from None
    return _compile(node, None)


def _compile(node: tree.Item, field: str | None) -> Predicate:
    if isinstance(node, tree.SearchField):
        return _compile(node.expr, node.name)
    if isinstance(node, tree.Group | tree.FieldGroup):
        return _compile(node.expr, field)
    if isinstance(node, tree.AndOperation | tree.UnknownOperation):
        parts = [_compile(c, field) for c in node.children]
        return lambda d: all(p(d) for p in parts)
    if isinstance(node, tree.OrOperation):
        parts = [_compile(c, field) for c in node.children]
        return lambda d: any(p(d) for p in parts)
    if isinstance(node, tree.Not | tree.Prohibit):
        inner = _compile(node.a, field)
        return lambda d: not inner(d)
    if isinstance(node, tree.Plus):
        return _compile(node.a, field)
    if isinstance(node, tree.Word):
        word = _unescape(node.value)
        fields = (field,) if field else DEFAULT_FIELDS
        if word == "*" and field:
            return lambda d: bool(_values(d, field))
        return lambda d: any(_match_word(v, word, f) for f in fields for v in _values(d, f))
    if isinstance(node, tree.Phrase):
        phrase = _unescape(node.value[1:-1])
        fields = (field,) if field else DEFAULT_FIELDS
        return lambda d: any(_match_phrase(v, phrase, f) for f in fields for v in _values(d, f))
    if isinstance(node, tree.Range):
        if not field:
            raise QueryError("a range needs a field")
        low, high = _unescape(str(node.low)), _unescape(str(node.high))

        def in_range(d: Doc) -> bool:
            for v in _values(d, field):
                above = low == "*" or (v >= low if node.include_low else v > low)
                below = high == "*" or (v <= high if node.include_high else v < high)
                if above and below:
                    return True
            return False

        return in_range
    raise QueryError(f"unsupported query syntax: {node.__class__.__name__} ({node})")
