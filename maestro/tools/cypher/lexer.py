"""The Cypher tokenizer: what is code and what is data (strings, comments, backticked names).

One compiled pattern reads the query left to right, so a keyword inside ``'a string'``, a
``// comment``, a ``/* block comment */`` or a ```backticked name``` is never mistaken for code:

- string literals in ``'...'`` or ``"..."`` with backslash escapes (``'O\\'Brien'``); both supported
  engines (Neo4j, FalkorDB) read backslash escapes the same way;
- ``//`` comments end at ``\\n`` or ``\\r``; a line comment holding another line separator
  (U+2028, U+0085, ...) is refused, because engines disagree on where such a comment ends;
- ``/* ... */`` comments do not nest in Cypher; a ``/*`` inside one is refused rather than guessed at;
- backticked identifiers with doubled-backtick escapes (```a``b``` is the name ``a`b``);
- parameters ``$name``, ``$0`` and ``$`odd name```; numbers (decimal, ``0x`` hex, ``0o`` octal, floats);
- operators, longest first (``..``, ``<>``, ``<=``, ``>=``, ``=~``, ``+=``, ``!=``); arrows are
  read as separate ``<``, ``-``, ``>`` tokens and assembled by the parser.

An unquoted name written with non-ASCII letters that upper-case to plain ASCII (``ſET`` reads as
``SET``) is refused, so no engine's case folding can turn it into a keyword the guard did not see.
Whitespace is ASCII only (space, tab, CR, LF, FF, VT); any other character outside a string, comment
or backticked name (zero-width spaces, Unicode dashes, NBSP) is a syntax error: the guard fails closed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from maestro.tools.cypher.errors import CypherSyntaxError

__all__ = ["EOF", "IDENT", "NUMBER", "OP", "PARAM", "QIDENT", "STRING", "Token", "tokenize", "where"]

IDENT = "ident"
QIDENT = "qident"
STRING = "string"
NUMBER = "number"
PARAM = "param"
OP = "op"
EOF = "eof"


class Token(NamedTuple):
    """One token: ``kind``; ``text`` (the name for identifiers and parameters, unescaped for backticked
    ones; the source text otherwise); ``upper`` (the upper-cased name of an unquoted identifier, the
    operator itself, ``""`` for everything else, so a backticked ``CREATE`` never reads as a keyword);
    ``start``/``end`` offsets into the query."""

    kind: str
    text: str
    upper: str
    start: int
    end: int


_TOKEN_RE = re.compile(
    r"""
      (?P<ws>[ \t\n\r\f\v]+)
    | (?P<lcomment>//[^\n\r]*)
    | (?P<bcomment>/\*.*?\*/)
    | (?P<bopen>/\*)
    | (?P<string>'(?:[^'\\]|\\.)*+'|"(?:[^"\\]|\\.)*+")
    | (?P<sopen>['"])
    | (?P<qident>`(?:[^`]|``)*+`)
    | (?P<qopen>`)
    | (?P<param>\$(?:[^\W\d]\w*|[0-9]+|`(?:[^`]|``)*+`))
    | (?P<number>0x[0-9A-Fa-f]+|0o[0-7]+|(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<ident>[^\W\d]\w*)
    | (?P<op>\.\.|<>|<=|>=|=~|\+=|!=|[()\[\]{},.:;|+\-*/%^=<>!&])
    """,
    re.VERBOSE | re.DOTALL,
)

# Line separators other than CR/LF: some engines end a // comment at them, others do not.
_ODD_LINE_BREAKS = re.compile("[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def where(source: str, offset: int) -> str:
    """``line L, column C`` (1-based) of ``offset`` in ``source``."""
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _error(source: str, message: str, offset: int) -> CypherSyntaxError:
    return CypherSyntaxError(f"{message} at {where(source, offset)}", offset=offset)


def describe_char(char: str) -> str:
    """``'x' (U+0078)`` or, for an invisible character, ``U+200B ZERO WIDTH SPACE``."""
    name = unicodedata.name(char, "")
    if char.isprintable() and not char.isspace():
        return f"{char!r} (U+{ord(char):04X})"
    return f"U+{ord(char):04X} {name}".rstrip()


def _unquote(text: str) -> str:
    return text[1:-1].replace("``", "`")


def tokenize(source: str) -> list[Token]:
    """Split a query into tokens (comments and whitespace dropped), ending with one ``EOF`` token.

    Raises :class:`CypherSyntaxError` (with the offset) for an unterminated string, comment or backticked
    name, a nested block comment, an odd line separator in a line comment, or an unexpected character.
    """
    tokens: list[Token] = []
    append = tokens.append
    pos = 0
    for m in _TOKEN_RE.finditer(source):
        start = m.start()
        if start != pos:
            raise _error(source, f"unexpected character {describe_char(source[pos])}", pos)
        kind = m.lastgroup
        end = pos = m.end()
        if kind == "ws":
            continue
        text = m.group()
        if kind == "ident":
            upper = text.upper()
            if not text.isascii() and upper.isascii():
                raise _error(
                    source,
                    f"name {text!r} is written with non-ASCII letters that read as {upper!r}: "
                    "write it in ASCII, or quote it with backticks",
                    start,
                )
            append(Token(IDENT, text, upper, start, end))
        elif kind == "op":
            append(Token(OP, text, text, start, end))
        elif kind == "string":
            append(Token(STRING, text, "", start, end))
        elif kind == "number":
            append(Token(NUMBER, text, "", start, end))
        elif kind == "param":
            name = _unquote(text[1:]) if text[1] == "`" else text[1:]
            append(Token(PARAM, name, "", start, end))
        elif kind == "qident":
            append(Token(QIDENT, _unquote(text), "", start, end))
        else:
            _check_comment_or_fail(source, kind, text, start)
    if pos != len(source):
        raise _error(source, f"unexpected character {describe_char(source[pos])}", pos)
    append(Token(EOF, "", "", len(source), len(source)))
    return tokens


def _check_comment_or_fail(source: str, kind: str | None, text: str, start: int) -> None:
    if kind == "lcomment":
        odd = _ODD_LINE_BREAKS.search(text)
        if odd is not None:
            raise _error(
                source,
                f"line comment contains {describe_char(odd.group())}: engines disagree on whether it ends "
                "the comment; use a plain newline",
                start + odd.start(),
            )
    elif kind == "bcomment":
        inner = text.find("/*", 2, len(text) - 2)
        if inner != -1:
            raise _error(
                source,
                "nested '/*' inside a block comment: Cypher comments do not nest; remove the inner '/*'",
                start + inner,
            )
    elif kind == "bopen":
        raise _error(source, "unterminated block comment: '/*' without '*/'", start)
    elif kind == "sopen":
        raise _error(source, f"unterminated string literal: {text} without its closing quote", start)
    elif kind == "qopen":
        raise _error(source, "unterminated backticked name: '`' without its closing '`'", start)
