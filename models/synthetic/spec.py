"""The ``synthetic:N:SEED[:SIZE][:subjects=K][:renderer=b]`` image-source spec, parsed and
checked (:func:`parse_synthetic_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gazelab.errors import GazelabError
from gazelab.models.synthetic.drawing import RENDERERS
from gazelab.models.synthetic.sets import SyntheticFaces, synthetic_faces


@dataclass(frozen=True)
class SyntheticSpec:
    """A parsed ``synthetic:N:SEED[:SIZE][:subjects=K][:renderer=b]`` image-source spec."""

    n: int = 8
    seed: int = 0
    size: int = 256
    subjects: int | None = None
    renderer: str = "a"

    def faces(self, *, rgb: bool = False) -> SyntheticFaces:
        return synthetic_faces(self.n, size=self.size, seed=self.seed, rgb=rgb,
                               subjects=self.subjects, renderer=self.renderer)  # fmt: skip


class SyntheticSpecError(GazelabError, ValueError):
    """A ``synthetic:...`` image spec that does not parse; the message names the part
    (:attr:`problem`: the message without the ``image source '...':`` prefix)."""

    def __init__(self, spec: str, problem: str) -> None:
        super().__init__(f"image source {spec!r}: {problem}")
        self.spec, self.problem = spec, problem

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # pickles (to worker processes)
        return (type(self), (self.spec, self.problem))


MAX_SYNTHETIC_FACES = 1_000_000
MAX_SYNTHETIC_SIZE = 4096
"""Upper bounds of ``synthetic:N:SEED:SIZE`` (as ``gazelab synthetic -n / --size``): a
mistyped number must be an error, not a hang or a terabyte allocation."""


def parse_synthetic_spec(spec: str) -> SyntheticSpec:
    """``synthetic:N:SEED[:SIZE]`` plus optional ``subjects=K`` and ``renderer=a|b`` parts,
    e.g. ``synthetic:2000:0:48:subjects=40:renderer=b``. Raises :class:`SyntheticSpecError`
    (a ``ValueError``) naming the part that is wrong."""
    kind, _, rest = spec.partition(":")
    if kind != "synthetic":
        raise SyntheticSpecError(spec, "not a synthetic:... spec")
    parts = [p for p in rest.split(":") if p]
    positional = [p for p in parts if "=" not in p]
    keyed = dict(p.split("=", 1) for p in parts if "=" in p)
    usage = "write synthetic:N:SEED[:SIZE][:subjects=K][:renderer=a|b] with whole numbers"
    unknown = sorted(set(keyed) - {"subjects", "renderer"})
    if unknown or len(positional) > 3:
        raise SyntheticSpecError(spec, f"unexpected part(s) {unknown or positional[3:]}; {usage}")
    try:
        n = int(positional[0]) if positional else 8
        seed = int(positional[1]) if len(positional) > 1 else 0
        size = int(positional[2]) if len(positional) > 2 else 256
        subjects = int(keyed["subjects"]) if "subjects" in keyed else None
    except ValueError as exc:
        raise SyntheticSpecError(spec, usage) from exc
    renderer = keyed.get("renderer", "a")
    for name, value, lo, hi in (("N", n, 1, MAX_SYNTHETIC_FACES),
                                ("SIZE", size, 16, MAX_SYNTHETIC_SIZE),
                                ("subjects", subjects, 1, MAX_SYNTHETIC_FACES)):  # fmt: skip
        if value is not None and not lo <= value <= hi:
            raise SyntheticSpecError(spec, f"{name} = {value} must be in {lo}..{hi:,}")
    if renderer not in RENDERERS:
        raise SyntheticSpecError(spec, f"renderer must be one of {RENDERERS}")
    return SyntheticSpec(n, seed, size, subjects, renderer)
