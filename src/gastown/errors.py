"""One error hierarchy for the whole project, with stable exit codes.

Every error a user can cause is a :class:`GastownError`.  The command lines print
``str(error)`` as one line on stderr and exit with ``error.exit_code``; nothing
else about an error is shown to a user, so messages must name *what* is wrong
and *where* (the id, the file and line, the key).

Exit codes are part of the public interface: scripts and agents branch on them.
"""

from __future__ import annotations

__all__ = [
    "GastownError",
    "UsageError",
    "NotFoundError",
    "ConflictError",
    "ValidationError",
    "CycleError",
    "ImportFormatError",
    "StorageError",
    "NotInitializedError",
    "FormulaError",
    "TownError",
    "ProviderError",
]


class GastownError(Exception):
    """Base class of every error the project raises on purpose."""

    exit_code = 1
    #: a short machine-readable name, used in ``--json`` error objects
    code = "error"

    def to_json(self) -> dict[str, object]:
        """The error as the object ``--json`` commands print on stderr."""
        return {"error": str(self), "code": self.code, "exit_code": self.exit_code}


class UsageError(GastownError):
    """The command line or API call itself is malformed."""

    exit_code = 2
    code = "usage"


class NotFoundError(GastownError):
    """An id, name or file that was asked for does not exist."""

    exit_code = 3
    code = "not_found"


class ConflictError(GastownError):
    """The change is refused because of the current state (claimed, blocked, exists)."""

    exit_code = 4
    code = "conflict"


class ValidationError(GastownError):
    """A value is out of its allowed range or form."""

    exit_code = 5
    code = "invalid"


class CycleError(ValidationError):
    """A blocking or parent-child edge would close a cycle."""

    code = "cycle"


class ImportFormatError(ValidationError):
    """A JSONL line could not be imported; names the file and line."""

    code = "import_format"


class StorageError(GastownError):
    """The backend could not be reached or failed (dead server, corrupt file)."""

    exit_code = 6
    code = "storage"


class NotInitializedError(StorageError):
    """No ledger was found (no ``.beads/`` upward from the working directory)."""

    exit_code = 7
    code = "not_initialized"


class FormulaError(ValidationError):
    """A formula file is invalid or uses something not supported."""

    exit_code = 8
    code = "formula"


class TownError(GastownError):
    """A town-level operation failed (rig, agent, session, sling)."""

    exit_code = 9
    code = "town"


class ProviderError(TownError):
    """An agent provider (tmux, subprocess) is missing or failed."""

    exit_code = 10
    code = "provider"
