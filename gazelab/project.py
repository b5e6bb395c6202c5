"""Where a project's files live (a command-line concern, shared by ``compare``, ``view`` and
``masks``): ``gazelab demo`` writes this layout, and those commands accept ``--project DIR``
for it, each path can be given on its own instead::

    DIR/project.sqlite     the session store
    DIR/model.keras        the trained classifier (optional)
    DIR/saliency-cache/    relevance maps cached by model and image (beside the store)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gazelab.errors import GazelabError


class ProjectError(GazelabError, ValueError):
    """Neither a project folder nor a store was named."""


@dataclass(frozen=True)
class ProjectPaths:
    """The store, model and saliency cache of a project (``model`` is ``None`` when the
    project has none and none was named)."""

    store: Path
    model: Path | None
    cache: Path | None

    @classmethod
    def resolve(
        cls,
        project: str | Path | None = None,
        *,
        store: str | Path | None = None,
        model: str | Path | None = None,
        cache: str | Path | None = None,
    ) -> ProjectPaths:
        """The paths named one by one, else their place in ``project``; a named file that is
        missing is a :class:`FileNotFoundError`, a project without ``model.keras`` is not."""
        root = Path(project) if project else None
        st = Path(store) if store else (root / "project.sqlite" if root else None)
        if st is None:
            raise ProjectError("give --project DIR or --store FILE")
        if not st.exists():
            raise FileNotFoundError(f"project store not found: {st}")
        md = Path(model) if model else (root / "model.keras" if root else None)
        if md is not None and not md.exists():
            if model:
                raise FileNotFoundError(f"model file not found: {md}")
            md = None
        ca = Path(cache) if cache else st.parent / "saliency-cache"
        return cls(st, md, ca)
