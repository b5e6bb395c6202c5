"""Validated config dataclasses from TOML: the machinery under :mod:`gazelab.settings` and
the ESR and transfer run configs.

A field declares its allowed values next to its default (:func:`setting`: a ``range`` or
``choices``) and :func:`validate` checks every field of a dataclass. A config file is read
within a size cap (:func:`read_toml_file`) and a TOML table becomes a checked dataclass
(:func:`dataclass_section`, each value by :func:`typed_value`); every mistake is one
:class:`SettingsError` naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from gazelab.errors import GazelabError
from gazelab.plugins import Choices


class SettingsError(GazelabError, ValueError):
    """A settings file or value is invalid; the message says which key and why."""


def setting(
    default: Any,
    *,
    range: tuple[float, float] | None = None,
    choices: Collection[Any] | None = None,
    doc: str = "",
) -> Any:
    """A dataclass field with its allowed values, checked by :func:`validate`. ``choices``:
    a tuple, or a registry's names read when checked (``TRACKERS.choices()``, a
    :class:`~gazelab.plugins.Choices`), never a snapshot taken at import."""
    meta = {"range": range, "choices": choices, "doc": doc}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults so settings stay frozen")
    return dataclasses.field(default=default, metadata=meta)


def validate(obj: Any, section: str = "") -> None:
    """Check every field of a settings dataclass against its declared range/choices."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{section}.{f.name}" if section else f.name
        lo_hi = f.metadata.get("range")
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            why = choices.why_not(value) if isinstance(choices, Choices) else ""
            raise SettingsError(
                f"{key} = {value!r} is not allowed; choose one of {', '.join(map(repr, choices))}"
                + (f"; {why}" if why else "")
            )
        if lo_hi is not None:
            lo, hi = lo_hi
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SettingsError(f"{key} = {value!r} must be a number in [{lo}, {hi}]")
            if not math.isfinite(value) or not lo <= value <= hi:
                raise SettingsError(f"{key} = {value!r} is out of range; allowed [{lo}, {hi}]")


class _Validated:
    def __post_init__(self) -> None:
        validate(self, getattr(self, "_section", ""))


MAX_CONFIG_BYTES = 1 << 20
"""Largest settings / run config read (1 MiB): configs are a few kB, and a config is
untrusted input that must not take unbounded memory."""


def _listing(names: Iterable[str], limit: int = 8, width: int = 40) -> str:
    """Names for a one-line error: the first ``limit`` in order, each cut to ``width``
    characters, then how many more (a file with 60,000 unknown sections gave a 589 KB line)."""
    ordered = sorted(names)
    shown = [n if len(n) <= width else n[: width - 3] + "..." for n in ordered[:limit]]
    more = len(ordered) - len(shown)
    return f"{shown}" + (f" and {more:,} more" if more else "")


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """The parsed table of TOML ``text``; any parse failure (bad syntax, nesting deep
    enough to exhaust the parser's recursion) is a ``SettingsError`` naming ``source``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{source}: not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise SettingsError(f"{source}: not valid TOML: nested too deeply") from exc


def read_toml_file(path: str | Path, what: str = "settings file") -> tuple[str, dict[str, Any]]:
    """The text and the parsed table of a TOML file (UTF-8, at most ``MAX_CONFIG_BYTES``);
    errors name ``what`` and the file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"cannot read {what} {p}: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise SettingsError(f"{what} {p} is larger than {MAX_CONFIG_BYTES // 1024} KiB; "
                            "is it the right file?")  # fmt: skip
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{what} {p}: not UTF-8 text (byte {exc.start}); "
                            "save it as UTF-8") from exc  # fmt: skip
    return text, parse_toml(text, str(p))


def dataclass_section(
    klass: type, table: Mapping[str, Any], source: str, section: str,
    errors: tuple[type[Exception], ...] = (),
) -> Any:  # fmt: skip
    """``klass(**table)`` for a config section: the one way a TOML table becomes a settings
    dataclass (the ``[protocol]``... sections here, and the ESR and transfer configs' own).

    Unknown keys and a value of the wrong kind (:func:`typed_value`) raise a
    :class:`SettingsError` naming the file, ``section.key``, the value and what is allowed;
    so do the errors ``klass`` raises for bad values (its range and choice checks,
    ``errors``, ``TypeError``).
    """
    known = [f.name for f in dataclasses.fields(klass)]
    unknown = set(table) - set(known)
    if unknown:
        raise SettingsError(
            f"{source}: unknown key(s) {_listing(f'{section}.{k}' for k in unknown)}; "
            f"[{section}] accepts {sorted(known)}"
        )
    values = {
        f.name: typed_value(table[f.name], f.default, f"{section}.{f.name}", source)
        for f in dataclasses.fields(klass)
        if f.name in table
    }
    catch: tuple[type[Exception], ...] = (*errors, TypeError)
    try:
        return klass(**values)
    except SettingsError as exc:  # the field checks name the key; add the file
        if str(exc).startswith(source):
            raise
        raise SettingsError(f"{source}: {exc}") from exc
    except catch as exc:
        raise SettingsError(f"{source} [{section}]: {exc}") from exc


_KIND_NAMES = {bool: "true or false", int: "a whole number", float: "a number",
               str: "a string"}  # fmt: skip


def typed_value(value: Any, default: Any, key: str, source: str = "") -> Any:
    """``value`` from TOML where a field with ``default`` stands: a whole number where a
    number is wanted becomes a float, a list where a tuple is wanted a tuple; a value of
    another kind is a :class:`SettingsError` (``source: key = 'x' must be a whole
    number``). A field without a plain default (bool, int, float, str, tuple) takes the
    value as it is and checks it itself."""
    if not _same_kind(value, default):
        shown = list(value) if isinstance(value, tuple) else value
        kind = (f"a list like {list(default)}" if isinstance(default, tuple)
                else _KIND_NAMES[type(default)])  # fmt: skip
        where = f"{source}: " if source else ""
        raise SettingsError(f"{where}{key} = {shown!r} must be {kind}")
    if isinstance(default, float):
        return float(value)
    if isinstance(default, tuple):
        return tuple(float(v) if default and isinstance(default[0], float) else v for v in value)
    return value


def _same_kind(value: Any, default: Any) -> bool:
    """Whether a TOML ``value`` can stand where the field's ``default`` does (a field
    without a plain default, or of another type, is left to the dataclass)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, tuple):
        return isinstance(value, list | tuple) and (
            not default or all(_same_kind(v, default[0]) for v in value)
        )
    return True
