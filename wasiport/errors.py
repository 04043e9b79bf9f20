"""Errors the CLI turns into one clear sentence on stderr, and the exit codes it documents.

Stages raise `UserError` (or a subclass with its own code) for bad input, a missing
tool or a refused operation. Anything else that escapes is a bug: the CLI prints one
sentence and exits with EXIT_INTERNAL; the traceback is shown with --verbose or
WASIPORT_DEBUG=1.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # check: findings at or above --fail-on; apply: the port did not build or verify
EXIT_USAGE = 2  # bad input, a refused operation, a missing tool
EXIT_INTERNAL = 70  # a bug in wasiport (EX_SOFTWARE)
EXIT_IO = 74  # the filesystem refused a read or write (EX_IOERR)
EXIT_TEMPFAIL = 75  # another wasiport process holds the lock: try again later (EX_TEMPFAIL)
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM

EXIT_CODES_HELP = """\
exit status (every command): 0 success; 1 findings (check) or a port that did not
build or verify (apply, rolled back); 2 bad input or a refused operation; 70 an
internal error in wasiport (a bug: rerun with --verbose and report it); 74 the
filesystem refused a read or write (what was restored is said); 75 another wasiport
process is writing to the same crate or project; 130 interrupted.
"""


class UserError(Exception):
    """Bad input, a missing tool, or a refused operation: not a bug in wasiport."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f"\n  hint: {self.hint}" if self.hint else "")


class FilesystemRefused(UserError):
    """A file could not be written or restored (permissions, read-only, a full disk)."""

    exit_code = EXIT_IO
