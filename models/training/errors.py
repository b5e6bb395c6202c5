"""The error every training step raises for a run that cannot start or go on."""

from __future__ import annotations

from gazelab.errors import GazelabError


class TrainingError(GazelabError, ValueError):
    """A run cannot start (bad data, masks that do not match the images, …)."""
