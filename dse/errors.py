"""Errors that reach the user as one clear line, never a traceback.

Every error raised for bad input names where the input came from (a file, a command-line
option), which key, what was expected and what was given. The command line catches
:class:`DseError` and prints ``str(error)`` on stderr with a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path


class DseError(Exception):
    """Base class of every error `dse` reports to its user."""


class InputError(DseError):
    """A value in a file or on the command line breaks a rule.

    Parameters
    ----------
    source:
        The file (or a description such as ``"--num-chips"``) the value came from.
    key:
        Dotted key inside the source, e.g. ``"architecture.clock_ghz"``; empty for the whole source.
    expected:
        The rule, phrased as what was expected (``"a number > 0"``).
    given:
        What was found, already formatted for the reader.
    """

    def __init__(self, source: str | Path, key: str, expected: str, given: object) -> None:
        self.source = str(source)
        self.key = key
        self.expected = expected
        self.given = given
        where = _shorten(_printable(f"{self.source}: {key}" if key else self.source))
        super().__init__(f"{where}: expected {expected}, got {_shown(given)}")


SHOWN_CHARS = 240
"""Longest path or value (characters) an error message shows; longer ones are cut in the middle."""


def _shorten(text: str) -> str:
    if len(text) <= SHOWN_CHARS:
        return text
    half = SHOWN_CHARS // 2
    return f"{text[:half]}...{text[-half:]}"


def _printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped, so that a key or path
    holding a line break (or form feed, or U+2028) still makes one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _shown(value: object) -> str:
    """``repr(value)`` on one line, cut to :data:`SHOWN_CHARS`; safe for any nesting."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"a deeply nested {type(value).__name__}"
    return _shorten(text.replace("\n", " "))


class NotFoundError(DseError):
    """A catalog name that matches no entry and no file."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        shown = ", ".join(known)
        super().__init__(
            f"unknown {kind} {_shown(name)}: expected a catalog id ({shown}) or a path to a .toml file"
        )
