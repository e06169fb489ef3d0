"""The exception tree. Every error cascade raises on purpose carries its exit code and a hint.

    CascadeError                 exit 1 unless a subclass says otherwise
    ├── UsageError               exit 2: bad flags, arguments or input
    │   ├── ConfigError          exit 2: a bad config file, env variable or value
    │   └── NotBuiltError        exit 2: a command group that a later release fills in
    ├── OperationalError         exit 1: the work could not be done
    │   ├── UnreachableError     exit 1: DNS, refused, TLS, timeout, dropped connection
    │   └── RemoteError          exit 1: the remote side answered with an error
    └── CheckFailed              exit 3: a check ran and its answer was "no"

The CLI prints `error: <message>` and `hint: <hint>` on stderr and exits with `exit_code`;
library code raises these and never prints.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3
EXIT_INTERRUPTED = 130


class CascadeError(Exception):
    """Base of every error cascade raises on purpose; `hint` says what the user can do next."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CascadeError):
    """The command line or its input is wrong; running it again unchanged cannot succeed."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A config file, environment variable or configured value is invalid."""


class NotBuiltError(UsageError):
    """The command exists in the interface but is not built yet."""


class OperationalError(CascadeError):
    """The work could not be done: a peer is down, a start failed, a resource is missing."""

    exit_code = EXIT_FAILURE


class UnreachableError(OperationalError):
    """No answer: name resolution, connection, TLS or timeout failed, or the peer hung up."""


class RemoteError(OperationalError):
    """The peer answered, with an error status or an answer cascade cannot use."""


class CheckFailed(CascadeError):
    """A check ran to completion and failed (a threshold breached, a ping answered an error)."""

    exit_code = EXIT_CHECK_FAILED
