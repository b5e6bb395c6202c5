"""The one base of every error a user can act on (docs/architecture.md#extension-points).

Each module's error subclasses :class:`GazelabError` (and keeps its builtin base,
``ValueError`` or ``RuntimeError``, for callers that catch those). The command line
catches this base once and prints one line with exit status 2.
"""

from __future__ import annotations


class GazelabError(Exception):
    """Bad input or a fault the user can fix: the message says what, where and what to do."""


class GazelabWarning(UserWarning):
    """Something a user should know that does not stop the work (rows of a dataset were
    skipped ...): the command line prints it as one line, ``gazelab CMD: warning: ...``,
    like an error, never with a source file and line."""
