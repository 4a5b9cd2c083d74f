"""Errors a user can act on: each names the file, the place in it and what was expected."""

from __future__ import annotations


class ShopformerError(Exception):
    """Base class of every error Shopformer reports to users (the CLI prints it, no traceback)."""


class DataError(ShopformerError, ValueError):
    """Input data that cannot be used: says which file, row and column, and what was expected.

    Also a `ValueError`, so code that guards array maths with `except ValueError` catches it."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        self.path, self.row, self.column = path, row, column
        self.expected, self.found = expected, found
        super().__init__(self._format(message))

    def _format(self, message: str) -> str:
        where = [str(self.path)] if self.path else []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = f"{', '.join(where)}: {message}" if where else message
        if self.expected is not None:
            text += f" (expected {self.expected}"
            text += f", found {self.found!r})" if self.found is not None else ")"
        return text


class ConfigError(ShopformerError, ValueError):
    """A configuration value or key that is wrong or unknown."""


class NotFittedError(ShopformerError, RuntimeError):
    """A model asked to score, save or explain before it was fitted or loaded."""


class UnknownUserError(LookupError, ShopformerError):
    """A user id the model, the log or the service has no events of (the service answers 404)."""
