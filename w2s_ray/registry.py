"""A small name -> entry registry whose lookups fail with "did you mean" hints."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from w2s_ray.errors import UserError

T = TypeVar("T")


def suggest(name: str, choices: list[str]) -> str:
    """Return a " — did you mean 'x'?" suffix, or "" when nothing is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """Named entries of one kind (models, datasets, losses)."""

    def __init__(self, kind: str, list_command: str) -> None:
        self.kind = kind
        self.list_command = list_command
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            hint = suggest(name, list(self._entries))
            raise UserError(
                f"unknown {self.kind} '{name}'{hint} (see `{self.list_command}`)"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())
