"""What ``bd`` and ``gt`` share: a lazily built argparse tree, the context, errors.

Only the module of the command being run is imported and only its parser is
built, so ``bd ready`` pays for argparse plus the ledger and nothing else.
Every user mistake becomes one line on stderr (a JSON object with ``--json``)
and the error's stable exit code; a traceback is shown only with ``GT_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module

from ..errors import GastownError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, NoReturn

__all__ = ["Ctx", "Parser", "run_main", "common_options", "count", "emit_json", "exit_now",
           "split_csv", "text_arg"]


# argparse translates its few fixed strings through gettext, whose first lookup
# imports ``locale``; the messages are English-only here, so skip the lookup.
argparse._ = lambda message: message  # type: ignore[attr-defined]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and a :class:`UsageError`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def common_options(parser: argparse.ArgumentParser) -> None:
    """Options every command accepts, before or after its name."""
    sup = argparse.SUPPRESS
    parser.add_argument("--json", action="store_true", default=sup,
                        help="machine-readable output (beads' field names)")
    parser.add_argument("--actor", default=sup, help="who is acting (default: $BD_ACTOR, $USER)")
    parser.add_argument("--db", default=sup, help="database URL or path (default: .beads/beads.db)")
    parser.add_argument("-C", dest="directory", default=sup, metavar="DIR",
                        help="run as if started in DIR")
    parser.add_argument("-q", "--quiet", action="store_true", default=sup,
                        help="print only what scripts need")
    # upstream bd's global switches (the beads MCP server passes them); hidden
    parser.add_argument("--no-auto-flush", action="store_true", default=sup, help=sup)
    parser.add_argument("--no-auto-import", action="store_true", default=sup, help=sup)


#: the largest number a count option takes (any backend stores it as a 64-bit integer)
MAX_COUNT = 2**62


def count(text: str) -> int:
    """An argparse ``type`` for counts, limits and sequence numbers: 0 … :data:`MAX_COUNT`."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > MAX_COUNT:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise argparse.ArgumentTypeError(f"invalid count {shown!r}: use a whole number "
                                         f"from 0 to {MAX_COUNT}")
    return int(value)


#: the longest wait a seconds option takes (a year: longer is a typo, not a plan)
MAX_SECONDS = 365 * 86400.0


def seconds(text: str) -> float:
    """An argparse ``type`` for intervals and timeouts: a finite number of seconds
    above 0 (a 0 interval would spin; nan and inf compare false with every deadline)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_SECONDS:  # also false for nan
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise argparse.ArgumentTypeError(f"invalid seconds {shown!r}: use a number above 0 "
                                         f"and at most {int(MAX_SECONDS)}")
    return value


def seconds_or_zero(text: str) -> float:
    """:func:`seconds`, or 0 for options where 0 means "no limit"."""
    return 0.0 if text.strip() in ("0", "0.0") else seconds(text)


def text_arg(value: str | None, file_value: str | None, what: str) -> str | None:
    """``value``, or the text of ``file_value`` (``-`` = stdin) when that is given."""
    if file_value is None:
        return value
    if value is not None:
        raise UsageError(f"give {what} either inline or with a file, not both")
    try:
        if file_value == "-":
            return sys.stdin.read()
        with open(file_value, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {file_value}: {exc.strerror}") from None


def split_csv(values: list[str] | None) -> list[str]:
    """Values of a repeatable, comma-separated option (``-l a,b -l c``), flattened."""
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def emit_json(obj: Any) -> None:
    """Print an object as indented JSON on stdout."""
    import json

    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


class Ctx:
    """What a command function gets: the parsed options and a lazily opened ledger."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = bool(getattr(args, "json", False))
        self.quiet: bool = bool(getattr(args, "quiet", False))
        self.actor: str | None = getattr(args, "actor", None)
        self.db: str | None = getattr(args, "db", None)
        self.cwd: str | None = getattr(args, "directory", None)
        self._ledger: Any = None
        self.tty = sys.stdout.isatty()

    @property
    def ledger(self) -> Any:
        """The ledger, opened on first use (discovery from ``-C`` or the cwd)."""
        if self._ledger is None:
            from ..ledger.core import Ledger

            self._ledger = Ledger.open(self.db, cwd=self.cwd, actor=self.actor)
        return self._ledger

    def out(self, obj: Any, text: str | Callable[[], str] | None = None) -> None:
        """JSON with ``--json``; otherwise ``text`` (a string or a function making one)."""
        if self.json:
            emit_json(obj)
        elif text is not None:
            s = text() if callable(text) else text
            if s:
                sys.stdout.write(s if s.endswith("\n") else s + "\n")

    def say(self, line: str) -> None:
        """A human confirmation line (suppressed by ``--json`` and ``--quiet``)."""
        if not self.json and not self.quiet:
            sys.stdout.write(line + "\n")

    def resolve(self, partial: str) -> str:
        """A full bead id from what the user typed (prefix optional, unique prefix ok)."""
        if "/" in partial:  # RIG/ID, or this town's own gt:// address (federation)
            from ..federation.local import resolve_local

            return resolve_local(self.ledger, partial)
        return str(self.ledger.resolve_id(partial))

    def close(self) -> None:
        """Close the ledger if it was opened (after upstream's auto-export, when it is on)."""
        if self._ledger is None:
            return
        try:
            if (self._ledger.store.changed_rows()
                    and not getattr(self.args, "no_auto_flush", False)):
                from ..ledger.autoflush import flush_if_enabled

                flush_if_enabled(self._ledger)
        except Exception as exc:  # noqa: BLE001 - the command's change is committed already
            sys.stderr.write(f"Warning: auto-export skipped: {type(exc).__name__}: {exc}\n")
        try:
            if self._ledger.store.changed_rows():  # [federation] auto_publish: kick only
                from ..federation.autopub import after_write

                after_write(getattr(self._ledger.store, "path", None))
        except Exception as exc:  # noqa: BLE001 - never fails the committed change
            sys.stderr.write(f"Warning: auto-publish skipped: {type(exc).__name__}: {exc}\n")
        finally:
            self._ledger.close()




class _Formatter(argparse.HelpFormatter):
    """Help formatter that asks the terminal width from ``os`` directly.

    argparse's own default imports ``shutil`` (milliseconds) just to learn the
    width, even when no help is printed.
    """

    def __init__(self, prog: str, **kw: Any) -> None:
        if kw.get("width") is None:
            try:
                kw["width"] = max(40, os.get_terminal_size(sys.stderr.fileno()).columns - 2)
            except OSError:
                kw["width"] = 100
        super().__init__(prog, **kw)


class _OneCommand:
    """Stands in for argparse's subparsers action when only one command is built."""

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.parser: Parser | None = None

    def add_parser(self, name: str, **kw: Any) -> Parser:
        kw.pop("help", None)
        kw.pop("aliases", None)
        self.parser = Parser(prog=f"{self.prog} {name}", formatter_class=_Formatter, **kw)
        return self.parser


def _build(prog: str, description: str, commands: Mapping[str, tuple[str, str]],
           version: str) -> Parser:
    """The full parser with every command (for help, version and unknown commands)."""
    parser = Parser(prog=prog, description=description, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"{prog} (gastown) {version}")
    common_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in commands:
        module, _help = commands[name]
        getattr(import_module(module), "setup")(name, sub)
    return parser


def _build_one(prog: str, name: str, commands: Mapping[str, tuple[str, str]]) -> Parser:
    """Only the named command's parser: what every normal invocation builds."""
    shim = _OneCommand(prog)
    getattr(import_module(commands[name][0]), "setup")(name, shim)
    assert shim.parser is not None
    return shim.parser


def run_main(prog: str, description: str, commands: Mapping[str, tuple[str, str]],
             argv: Sequence[str] | None = None, aliases: Mapping[str, str] | None = None) -> int:
    """Parse ``argv`` for ``prog``, run the command, turn errors into one line + exit code."""
    from .. import __version__

    args_list = list(sys.argv[1:] if argv is None else argv)
    aliases = aliases or {}
    wanted = _command_name(args_list)
    if wanted is not None and wanted in aliases:
        idx = args_list.index(wanted)
        args_list[idx] = wanted = aliases[wanted]
    as_json = "--json" in args_list
    ctx: Ctx | None = None
    try:
        _check_text(args_list)
        if "--version" in args_list and wanted is None:
            sys.stdout.write(f"{prog} (gastown) {__version__}\n")
            return 0
        if wanted is not None and wanted not in commands:
            import difflib

            close = difflib.get_close_matches(wanted, list(commands), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise UsageError(f"{prog}: unknown command {wanted!r}{hint} (see '{prog} --help')")
        if wanted is not None:
            # the common case: build one command's parser and drop its name from argv
            rest = list(args_list)
            rest.remove(wanted)
            args = _build_one(prog, wanted, commands).parse_args(rest)
        else:
            parser = _build(prog, description, commands, __version__)
            args = parser.parse_args(args_list)
        func = getattr(args, "func", None)
        if func is None:
            _build(prog, description, commands, __version__).print_help()
            return 0
        ctx = Ctx(args)
        if ctx.cwd:
            try:
                os.chdir(ctx.cwd)
            except OSError as exc:
                raise UsageError(f"-C {ctx.cwd}: {exc.strerror}") from None
        result = func(ctx)
        sys.stdout.flush()
        return int(result or 0)
    except GastownError as exc:
        _report(prog, exc, as_json)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except BrokenPipeError:
        # the reader (head, grep -q) went away: not an error worth a message
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
        if os.environ.get("GT_DEBUG"):
            raise
        # what slipped past a command's own checks (input nested too deep, a full
        # disk) still becomes one line with a proper exit code; a bug stays exit 70
        known = _known_failure(exc)
        if known is not None:
            _report(prog, known, as_json)
            return known.exit_code
        sys.stderr.write(f"{prog}: internal error: {type(exc).__name__}: {exc} "
                         "(set GT_DEBUG=1 for a traceback)\n")
        return 70
    finally:
        if ctx is not None:
            ctx.close()


_VALUE_OPTIONS = ("--actor", "--db", "-C", "--town")
_TEXT_ENV = ("BD_ACTOR", "BEADS_ACTOR", "BD_DB", "BEADS_DB", "GT_TOWN", "USER")


def _check_text(args: Sequence[str]) -> None:
    """Refuse arguments (and the environment we read) that are not valid UTF-8.

    Python hands undecodable bytes over as lone surrogates, which no database,
    file or terminal can take; saying so up front beats failing halfway.
    """
    for n, arg in enumerate(args, 1):
        if not _encodable(arg):
            raise UsageError(f"argument {n} is not valid UTF-8 text: {_ascii_short(arg)}")
        if "\0" in arg:  # only a caller in-process can pass one; no path may hold it
            raise UsageError(f"argument {n} contains a NUL character: {_ascii_short(arg)}")
    for var in _TEXT_ENV:
        value = os.environ.get(var)
        if value is not None and not _encodable(value):
            raise UsageError(f"${var} is not valid UTF-8 text: {_ascii_short(value)}")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ascii_short(text: str, width: int = 60) -> str:
    shown = ascii(text[:width])
    return shown if len(text) <= width else f"{shown}… ({len(text)} chars)"


def _known_failure(exc: BaseException) -> GastownError | None:
    """The user-facing error for an exception a bad input or a full disk can cause."""
    import errno

    from ..errors import StorageError, ValidationError

    if isinstance(exc, RecursionError):
        return ValidationError("input nested too deeply to handle")
    if isinstance(exc, UnicodeError):
        return ValidationError("text is not valid UTF-8 (it contains unpaired surrogates)")
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return ValidationError(f"number too large: {str(exc).split(';')[0]}")
    if isinstance(exc, OverflowError):
        return ValidationError(f"number too large: {exc}")
    if type(exc).__name__ == "OperationalError" and "pattern too complex" in str(exc):
        return ValidationError("search text or pattern too long")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT,
                                                  errno.EROFS, errno.EIO):
        where = f"{exc.filename}: " if exc.filename else ""
        return StorageError(f"cannot write: {where}{exc.strerror}")
    return None


def _command_name(args: Sequence[str]) -> str | None:
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in _VALUE_OPTIONS:
            skip = True
        elif not a.startswith("-"):
            return a
    return None


_MAX_MESSAGE = 1000


def _report(prog: str, exc: GastownError, as_json: bool) -> None:
    # one line, whatever the message quotes: control characters are escaped and a
    # huge value (a 50,000-character id) is cut
    message = "".join(ch if ch.isprintable() else (" " if ch in "\n\t" else ascii(ch)[1:-1])
                      for ch in str(exc))
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + f"… ({len(message)} chars)"
    if as_json:
        import json

        sys.stderr.write(json.dumps({**exc.to_json(), "error": message}) + "\n")
    else:
        sys.stderr.write(f"Error: {message}\n")


def exit_now(code: int) -> None:
    """End a command-line process right away, once its output is flushed.

    Interpreter teardown would close the ledger's last SQLite connection, which
    checkpoints the WAL into the database file with an fsync: milliseconds on
    every ``bd`` call.  Committed data is already in the WAL either way, and
    SQLite's automatic checkpoints fold it in, as they would for a long-running
    process.  Only the console scripts call this; library callers never do.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
