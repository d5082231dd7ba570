"""The ``cis-eval`` command line: a thin layer over the library's verbs.

Exit codes: 0 success, 2 bad input or usage (one clear message, no traceback),
1 internal error (a bug: please report it; ``--debug`` shows the traceback).
Messages never contain student identifiers.

Commands are registered explicitly, in the order of :data:`COMMANDS`: each command module
has a ``NAME``, a one-line ``HELP``, ``configure(parser)`` adding its options and
``run(args) -> int``. Nothing heavy is imported until a command runs, and a command's
options are added only when that command is parsed, so ``cis-eval --help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NoReturn

from .. import __version__
from ..errors import CisEvalError
from . import (
    assign,
    demo,
    diagnose,
    estimate,
    fidelity,
    integrity,
    map,
    power,
    simulate,
    validate,
)
from ._common import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    MAX_LINE_CHARS,
    MAX_LINES,
    bounded,
    one_line,
    say,
)

__all__ = [
    "COMMANDS",
    "MAX_LINES",
    "MAX_LINE_CHARS",
    "bounded",
    "build_parser",
    "command_parsers",
    "main",
]

COMMANDS: tuple[ModuleType, ...] = (
    demo,
    simulate,
    map,
    validate,
    assign,
    integrity,
    estimate,
    fidelity,
    power,
    diagnose,
)
"""The subcommands, in the order of a study: simulate, check, assign, estimate, plan."""

# Messages are cut to MAX_LINES lines of MAX_LINE_CHARS characters and escaped for the
# terminal (see _common.bounded): a huge column map or a file full of problems must not
# flood it, and a school named '<script>' or holding an escape sequence must not act.


class Parser(argparse.ArgumentParser):
    """argparse with the command line's error format: one line, ``error: ...``, exit 2."""

    def error(self, message: str) -> NoReturn:
        """Print the usage error as one bounded, escaped line and exit with status 2."""
        line = one_line(" ".join(message.split()))
        self.exit(EXIT_USAGE, f"error: {line} (see {self.prog} --help)\n")


class CommandParser(Parser):
    """A subcommand's parser whose options are added the first time it is used."""

    def __init__(
        self,
        *args: Any,
        configure: Callable[[argparse.ArgumentParser], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._configure = configure

    def configured(self) -> CommandParser:
        """Add the command's options now (once) and return the parser."""
        configure, self._configure = self._configure, None
        if configure is not None:
            configure(self)
        return self

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Configure, then parse as usual."""
        return super(CommandParser, self.configured()).parse_known_args(args, namespace)

    def format_help(self) -> str:
        """Configure, then format the help as usual."""
        return super(CommandParser, self.configured()).format_help()

    def format_usage(self) -> str:
        """Configure, then format the usage line as usual."""
        return super(CommandParser, self.configured()).format_usage()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (their options are added on first use)."""
    parser = Parser(
        prog="cis-eval",
        description="Evaluate school-based case management: simulate or load trial data, "
        "estimate impacts, check fidelity.",
    )
    parser.add_argument("--version", action="version", version=f"cis-eval {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, configure=command.configure)
        p.set_defaults(func=command.run)
    return parser


def command_parsers(parser: argparse.ArgumentParser | None = None) -> dict[str, CommandParser]:
    """Every subcommand's parser, with its options added (for documentation and tests)."""
    parser = parser or build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: p.configured() for name, p in sub.choices.items()}


def _os_message(exc: OSError) -> str:
    """An operating-system error as a user message naming the path."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the disk"
    where = exc.filename if exc.filename is not None else ""
    return f"{where}: {reason}" if where else reason


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _on_sigterm(handler: Any) -> Any:
    """Install a SIGTERM handler (main thread only) and return the previous one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _parse_and_run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cis-eval``; returns the exit code.

    Every error a user can cause (a file, its content, an option, an output path) is one
    bounded message on stderr and exit status 2; anything else is a bug, exit status 1.
    """
    given = list(sys.argv[1:] if argv is None else argv)
    # SIGTERM unwinds like Ctrl-C, so temporary outputs are removed on the way out
    previous = _on_sigterm(_terminate)
    try:
        return _parse_and_run(given)
    except CisEvalError as exc:
        say("error", exc)
        return EXIT_USAGE
    except OSError as exc:
        # a file that cannot be read or written (permissions, a full disk, a folder where
        # a file was expected) is the user's environment, not a bug
        say("error", _os_message(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # --debug is read from the raw arguments: the error may come from parsing itself
        if "--debug" in given:
            raise
        print(
            f"internal error ({type(exc).__name__}). This is a bug in cis-eval; rerun with "
            "--debug for details and report it.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        _on_sigterm(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
