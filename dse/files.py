"""The one way `dse` reads and writes the files a user hands it: safely, with one-line errors.

Every file the tools read (chip, workload, space, settings, levers and technology TOML files;
results files and their provenance; sweep manifests and part files) is opened by
:func:`open_input`. It looks at the path with ``os.stat`` first and refuses anything that is not
a regular file (a FIFO would block a reader forever, a device may never end) or that is larger
than the caller's limit, then opens it without blocking and checks the opened file again, so a
path swapped between the two looks is caught too. Every ``OSError`` (not found, permission
denied, name too long, is a directory, disk full, ...) becomes an
:class:`~dse.errors.InputError` naming the path. Writes go through :func:`writing`, which maps
the same errors the same way.

:class:`OutputLock` keeps two runs from writing the same output at once.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from dse.errors import InputError

MIB = 2**20
MAX_TOML_BYTES = 4 * MIB
"""Largest TOML file read (bytes); the shipped ones are under 16 KiB."""
MAX_TOML_DEPTH = 32
"""Deepest nesting of tables and arrays in a TOML file; the shipped ones reach 4."""
MAX_JSON_BYTES = 256 * MIB
"""Largest provenance or manifest JSON file read (bytes)."""
MIN_RESULTS_BYTES = 2**30
"""Results files up to this size (bytes) are read whatever the machine's memory."""

_REASONS = {
    errno.ENOENT: "no such file",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "a name too long for the file system",
    errno.EISDIR: "a directory",
    errno.ENOTDIR: "a path through something that is not a folder",
    errno.ELOOP: "too many levels of symbolic links",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "a read-only file system",
    errno.EFBIG: "a file too large for the file system",
    errno.EIO: "an input/output error",
}


def reason(error: OSError) -> str:
    """A short, lower-case description of what went wrong, e.g. ``"permission denied"``."""
    if error.errno in _REASONS:
        return _REASONS[error.errno]
    if error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def os_error(path: str | Path, error: OSError, expected: str) -> InputError:
    """The one-line error for ``error`` met on ``path`` (``expected``: ``"a TOML file"``)."""
    if error.errno == errno.ENOENT:
        article, _, rest = expected.partition(" ")
        expected = f"an existing {rest}" if article in ("a", "an") else expected
    return InputError(path, "", expected, reason(error))


def results_limit_bytes() -> int:
    """Largest results file read (bytes): a quarter of physical memory, at least 1 GiB.

    A results table takes several times its file size in memory once parsed.
    """
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return MIN_RESULTS_BYTES
    return max(MIN_RESULTS_BYTES, memory // 4)


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _check(path: str | Path, info: os.stat_result, limit: int, expected: str) -> None:
    kind = _kind(info.st_mode)
    if kind is not None:
        raise InputError(path, "", expected, kind)
    if info.st_size > limit:
        raise InputError(
            path, "", f"{expected} of at most {limit:,} bytes", f"{info.st_size:,} bytes"
        )


def check_input(path: str | Path, limit: int, expected: str = "a readable file") -> None:
    """Refuse ``path`` unless it is a regular file of at most ``limit`` bytes (never opens it)."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise os_error(path, error, expected) from None
    except ValueError:
        raise InputError(path, "", expected, "a path with a NUL character") from None
    _check(path, info, limit, expected)


@contextmanager
def open_input(
    path: str | Path, limit: int, expected: str = "a readable file"
) -> Iterator[IO[bytes]]:
    """The regular file ``path`` (at most ``limit`` bytes) open for binary reading.

    ``OSError`` raised while the block reads the file is an :class:`InputError` too.
    """
    check_input(path, limit, expected)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise os_error(path, error, expected) from None
    with os.fdopen(fd, "rb") as handle:
        _check(path, os.fstat(fd), limit, expected)
        os.set_blocking(fd, True)
        try:
            yield handle
        except OSError as error:
            raise os_error(path, error, expected) from None


def read_bytes(path: str | Path, limit: int, expected: str = "a readable file") -> bytes:
    """The whole content of the regular file ``path`` (at most ``limit`` bytes)."""
    with open_input(path, limit, expected) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(path, "", f"{expected} of at most {limit:,} bytes", "a larger file")
    return data


def decode(data: bytes, path: str | Path) -> str:
    """``data`` as UTF-8 text, or an :class:`InputError` naming ``path``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            path, "", "a UTF-8 text file", f"undecodable bytes at offset {error.start}"
        ) from None


def parse_toml(data: bytes, path: str | Path) -> dict[str, Any]:
    """Parse TOML ``data`` read from ``path``; nested at most :data:`MAX_TOML_DEPTH` levels."""
    text = decode(data, path)
    if _nesting_exceeds(text, MAX_TOML_DEPTH):
        raise _too_deep(path)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(path, "", "valid TOML", f"a syntax error ({error})") from None
    except RecursionError:
        raise _too_deep(path) from None
    if depth(parsed) > MAX_TOML_DEPTH:
        raise _too_deep(path)
    return parsed


_TOML_TOKENS = re.compile(
    "|".join(
        (
            r'"""(?:[^\\]|\\[\s\S])*?""""{0,2}',
            r"'''[\s\S]*?''''{0,2}",
            r'"(?:[^"\\\n]|\\.)*"',
            r"'[^'\n]*'",
            r"#[^\n]*",
            r"[\[\]{}=,.\n]",
        )
    )
)
"""Strings and comments (skipped whole), and the punctuation that nests or ends a key."""


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether a TOML text nests arrays, inline tables or dotted keys more than ``limit`` deep.

    A linear scan before parsing: ``tomllib`` takes time quadratic in a dotted key's length
    (minutes for 50,000 parts) and recurses once per level of arrays and inline tables.
    """
    stack: list[str] = []
    key, header, dots = True, False, 0
    for match in _TOML_TOKENS.finditer(text):
        token = match.group()
        if token == "\n" and not stack:
            key, header, dots = True, False, 0
        elif token == "[" and key and not stack:
            header = True
        elif token == "]" and header:
            key = False
        elif token in ("[", "{"):
            stack.append(token)
            key, dots = token == "{", 0
        elif token in ("]", "}") and stack:
            stack.pop()
            key = False
        elif token == "," and stack and stack[-1] == "{":
            key, dots = True, 0
        elif token == "=":
            key = False
        elif token == "." and key:
            dots += 1
        if dots > limit or len(stack) > limit:
            return True
    return False


def _too_deep(path: str | Path) -> InputError:
    return InputError(
        path, "", f"TOML nested at most {MAX_TOML_DEPTH} levels deep", "deeper nesting"
    )


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read and parse the TOML file ``path`` (see :func:`open_input` and :func:`parse_toml`)."""
    return parse_toml(read_bytes(path, MAX_TOML_BYTES, "a TOML file"), path)


def read_json(path: str | Path, expected: str, limit: int = MAX_JSON_BYTES) -> Any:
    """Read and parse the JSON file ``path``; malformed or too deeply nested JSON is refused."""
    return parse_json(read_bytes(path, limit, expected), path, expected)


def parse_json(data: str | bytes, path: str | Path, expected: str) -> Any:
    """Parse JSON ``data`` read from ``path`` (``expected`` phrases what it should be)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise InputError(path, "", expected, "JSON nested too deeply") from None
    except ValueError as error:
        raise InputError(path, "", expected, f"malformed JSON ({error})") from None


def depth(value: Any) -> int:
    """How deeply tables (dicts) and arrays (lists) nest in ``value``; 0 for a scalar."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest


def is_file(path: str | Path) -> bool:
    """Whether ``path`` names a regular file; false (not an error) for unusable paths."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def exists(path: str | Path) -> bool:
    """Whether anything is at ``path``; false (not an error) for unusable paths."""
    try:
        os.stat(path)
    except (OSError, ValueError):
        return False
    return True


@contextmanager
def writing(path: str | Path, expected: str = "a writable file") -> Iterator[None]:
    """Map an ``OSError`` raised in the block (disk full, permission, ...) to an
    :class:`InputError` naming ``path``."""
    try:
        yield
    except OSError as error:
        raise os_error(path, error, expected) from None


def lock_path(out: Path) -> Path:
    """The lock file of the output ``out``: ``OUT.lock`` beside it."""
    return out.with_name(out.name + ".lock")


class OutputLock:
    """An exclusive, non-blocking ``flock`` on ``OUT.lock``, held while a run writes ``out``.

    A second run on the same output refuses with one line naming the process that holds it.
    The lock file is removed (while still locked) on release; the kernel frees the lock when
    its holder dies, so a killed run never leaves a stale lock behind.
    """

    def __init__(self, out: Path, option: str = "out") -> None:
        self.out = Path(out)
        self.path = lock_path(self.out)
        self.option = option
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        with writing(self.path, "a lock file beside the output"):
            for _ in range(10):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                if self._lock(fd):
                    break
            else:
                raise InputError(
                    self.option,
                    "",
                    "an output whose lock can be taken",
                    str(self.out),
                    argument=self.option,
                )
            self._fd = fd
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except OSError:
                self.__exit__(None, None, None)
                raise
        return self

    def _lock(self, fd: int) -> bool:
        """Lock ``fd``; False (fd closed) when its file was removed meanwhile, to retry."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise InputError(
                self.option,
                "",
                "an output no other dse run is writing",
                f"{self.out} (in use by process {holder}; lock {self.path.name})",
                argument=self.option,
            ) from None
        try:
            here = os.stat(self.path)
        except OSError:
            here = None
        held = os.fstat(fd)
        if here is not None and (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
            return True
        os.close(fd)
        return False

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            with suppress(OSError):
                self.path.unlink()
            os.close(self._fd)
            self._fd = None
