"""User-facing errors: the CLI prints these as one line and exits 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix (a study file, a name, a path); the message says how."""


class AssetError(UserError):
    """An offline asset could not be fetched, verified or extracted."""
