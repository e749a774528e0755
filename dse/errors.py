"""Errors that reach the user as one clear line, never a traceback.

Every error raised for bad input names where the input came from (a file, or an argument of
a library function in Python terms, e.g. ``num_chips``), which key, what was expected and what
was given. The library never names a command-line flag: the command line catches
:class:`DseError`, maps an :class:`InputError`'s ``argument`` to its own option name and
prints one line on stderr with a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path


class DseError(Exception):
    """Base class of every error `dse` reports to its user."""


class InputError(DseError, ValueError):
    """A value in a file or an argument of a library function breaks a rule.

    Parameters
    ----------
    source:
        The file (or the Python argument, such as ``"num_chips"``) the value came from.
    key:
        Dotted key inside the source, e.g. ``"architecture.clock_ghz"``; empty for the whole source.
    expected:
        The rule, phrased as what was expected (``"a number > 0"``); other arguments it names
        are in backticks (``"either `days` or `num_chips`"``), so that the command line can
        show them as its options.
    given:
        What was found, already formatted for the reader.
    argument:
        The function argument the value was given as (``"num_chips"``), when it came from one
        rather than from a file; see :meth:`for_argument`.
    """

    def __init__(
        self,
        source: str | Path,
        key: str,
        expected: str,
        given: object,
        *,
        argument: str | None = None,
    ) -> None:
        self.source = str(source)
        self.key = key
        self.expected = expected
        self.given = given
        self.argument = argument
        where = _shorten(_printable(f"{self.source}: {key}" if key else self.source))
        super().__init__(f"{where}: expected {expected}, got {_shown(given)}")

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its parts when it crosses a process boundary (a worker of a parallel
        # validation or sweep raises it): Exception's default passes only the message.
        return (
            _rebuild_input_error,
            (self.source, self.key, self.expected, self.given, self.argument),
        )

    @classmethod
    def for_argument(cls, name: str, expected: str, given: object) -> InputError:
        """The argument ``name`` (a Python parameter name) broke a rule: ``expected`` states
        the rule in Python terms, ``given`` is the value as passed."""
        return cls(name, "", expected, given, argument=name)

    def message(self, where: str) -> str:
        """The error's line with its source shown as ``where`` (e.g. a command-line option)."""
        place = _shorten(
            _printable(f"{where}: {self.key}" if self.key and not self.argument else where)
        )
        return f"{place}: expected {self.expected}, got {_shown(self.given)}"


def _rebuild_input_error(
    source: str, key: str, expected: str, given: object, argument: str | None
) -> InputError:
    return InputError(source, key, expected, given, argument=argument)


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


class NotFoundError(InputError):
    """A catalog name that matches no entry and no file."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.source, self.key, self.given, self.argument = str(name), "", name, None
        shown = ", ".join(known)
        self.expected = f"a catalog id ({shown}) or a path to a .toml file"
        DseError.__init__(self, f"unknown {kind} {_shown(name)}: expected {self.expected}")


class TooLargeError(DseError):
    """A run above the size limits that was not confirmed: ``estimate`` in words, the limits
    it ``broke``."""

    def __init__(self, estimate: str, broken: list[str]) -> None:
        self.estimate = estimate
        self.broken = broken
        super().__init__(self.message("`confirm=True`"))

    def message(self, confirm: str, dry_run: str | None = None) -> str:
        """The refusal, naming how to ``confirm`` (and how to only estimate, if given)."""
        text = f"refusing to start: {self.estimate}; that is {' and '.join(self.broken)}. "
        text += f"Pass {confirm} to run it anyway"
        return text + (f", or {dry_run} to only print the estimate." if dry_run else ".")


class MissingExtraError(DseError, ImportError):
    """An optional feature whose packages are not installed: names the extra to install."""

    def __init__(self, extra: str, purpose: str, module: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(
            f"{purpose} needs the optional {extra!r} packages (module {module!r} is missing): "
            f"pip install 'dse[{extra}]'"
        )
