"""Each setting declared once: its type, default, range or choices, the paper's value, help and the app's label.

A step's config is a frozen dataclass whose fields are made with :func:`setting`; its ``__post_init__`` calls
:func:`check_settings`. Everything else is read from those declarations: the checks (one message shape,
:class:`SettingError`), the CLI's flags (``defuse.cli.args.add_setting_flags``), the app's number fields and
their bounds (``defuse.ui.fields.setting_field``), the words an error uses on a page or on the command line
(:meth:`SettingError.words`), and the JSON a page sends to its job (``defuse.cli.jobs.config_args``), read back
by ``defuse.cli.args.config_from_args`` into the same checks.

Why not pydantic or attrs: the configs are plain frozen dataclasses that the steps already record, compare and
``replace``; a field's metadata carries the declaration, so nothing about them changes and nothing is installed.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Optional

KEY = "defuse_setting"
KINDS = (int, float, bool, str, tuple)
CONFIG_FLAG = "--config"   # the CLI's option that reads every setting of a step from JSON (defuse.cli.args)


@dataclass(frozen=True)
class Setting:
    """One field's declaration (kept in the dataclass field's metadata)."""

    kind: type                         # int, float, bool, str or tuple
    low: Optional[float] = None        # inclusive bound (exclusive with ``low_open``); None: unbounded
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    choices: Optional[tuple] = None    # the allowed strings
    optional: bool = False             # None is allowed (it means: chosen elsewhere, or "all")
    item: Optional[Setting] = None   # tuples: each item's declaration
    per_row: bool = False              # also a non-empty list of such values, one per row (τ per scenario)
    paper: Any = None                  # the paper's value, where the paper gives one
    help: str = ""                     # one line, for ``--help`` and the app's tooltip
    label: str = ""                    # the app's short name for the field (Q, M, ε, “Epochs”)
    flag: bool = True                  # the CLI has a ``--flag`` for it
    cli: str = ""                      # the flag's name where it is not the field's (``samples`` for ``n``)
    valid: Optional[Callable[[Any], bool]] = None  # an extra rule, described by ``allowed``
    allowed: str = ""                  # the words for what is allowed (default: built from the above)

    def describe(self) -> str:
        """What a value must be, in words: "an integer in [1, 100000]", "one of ['a', 'b']"."""
        if self.allowed:
            words = self.allowed
        elif self.choices is not None:
            words = f"one of {sorted(self.choices)}"
        elif self.kind is bool:
            words = "True or False"
        elif self.kind is tuple:
            words = f"a list of {_plural(self.item.describe())}" if self.item else "a list"
        else:
            noun = "an integer" if self.kind is int else "a finite number" if self.kind is float else "text"
            words = noun + _span(self)
        if self.per_row:
            words += f", or a non-empty list of {_plural(words)} (one per scenario row)"
        return f"None or {words}" if self.optional and not words.startswith("None") else words


def _plural(words: str) -> str:
    for one, many in (("an integer", "integers"), ("a finite number", "finite numbers"), ("text", "texts")):
        if words.startswith(one):
            return many + words[len(one):]
    return words


def _num(x) -> str:
    if isinstance(x, float):
        return f"{x:.0f}" if x.is_integer() and abs(x) < 1e16 else f"{x:g}"
    return str(x)


def _span(s: Setting) -> str:
    lo, hi = s.low, s.high
    if lo is not None and hi is not None:
        return f" in {'(' if s.low_open else '['}{_num(lo)}, {_num(hi)}{')' if s.high_open else ']'}"
    if lo is not None:
        return f" {'>' if s.low_open else '>='} {_num(lo)}"
    if hi is not None:
        return f" {'<' if s.high_open else '<='} {_num(hi)}"
    return ""


def setting(default, *, kind: type | None = None, **declared) -> dataclasses.Field:
    """A dataclass field declared once. ``kind`` defaults to the default's type (give it when the default is
    None or a tuple of items, e.g. ``setting(None, kind=int, optional=True, low=1)``); ``declared``: the other
    :class:`Setting` attributes."""
    kind = kind or type(default)
    if kind not in KINDS:
        raise TypeError(f"setting kind must be one of {[k.__name__ for k in KINDS]}; got {kind!r}")
    if default is None:
        declared["optional"] = True
    meta = {KEY: Setting(kind=kind, **declared)}
    return dataclasses.field(default=default, metadata=meta)


class SettingError(ValueError):
    """A setting's value is not allowed: names the field, the value got and what is allowed.

    ``str(e)`` names the field as the code does; :meth:`words` names it as the CLI (``--flag``) or the app (its
    label) does, from the same declaration, so no message is rewritten after the fact."""

    def __init__(self, name: str, value, allowed: str, spec: Setting | None = None):
        self.name, self.value, self.allowed, self.spec = name, value, allowed, spec
        self.in_config = False   # the CLI read the value from ``--config``'s JSON, not from its flag
        super().__init__(self.words("code"))

    def words(self, where: str = "code") -> str:
        """The message with the field named for ``where``: "code", "cli" or "app"."""
        name = field_name(self.name, self.spec, "code" if where == "cli" and self.in_config else where)
        where_from = CONFIG_FLAG + " field " if where == "cli" and self.in_config else ""
        return f"{where_from}{name} must be {self.allowed}; got {self.value!r}"


def field_name(name: str, spec: Setting | None, where: str) -> str:
    """How ``where`` ("code", "cli", "app") names the field ``name``."""
    if where == "cli":
        return "--" + flag_of(name, spec)
    if where == "app" and spec is not None and spec.label:
        return spec.label
    return name


def flag_of(name: str, spec: Setting | None) -> str:
    """The CLI flag of field ``name``, without its dashes: the declared ``cli`` name, else the field's."""
    return (spec.cli if spec is not None and spec.cli else name).replace("_", "-")


def declared(cls) -> dict[str, Setting]:
    """``name -> Setting`` for every declared field of the dataclass ``cls`` (or of an instance's class)."""
    return {f.name: f.metadata[KEY] for f in fields(cls) if KEY in f.metadata}


def check_value(name: str, value, spec: Setting):
    """``value`` as the field stores it (ints stay ints, numbers become floats, lists tuples), or SettingError."""
    got = value

    def refuse():
        raise SettingError(name, got, spec.describe(), spec)

    if value is None:
        return None if spec.optional else refuse()
    if spec.per_row and isinstance(value, (tuple, list)):
        one = dataclasses.replace(spec, per_row=False, optional=False)
        try:
            if value:
                return tuple(check_value(name, v, one) for v in value)
        except SettingError:
            pass
        refuse()
    kind = spec.kind
    if kind is bool:
        if not isinstance(value, bool):
            refuse()
    elif kind is int:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            refuse()
        value = int(value)
    elif kind is float:
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            refuse()
        value = float(value)
    elif kind is str:
        if not isinstance(value, str):
            refuse()
    elif kind is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
            refuse()
        if spec.item is not None:
            try:
                value = tuple(check_value(name, v, spec.item) for v in value)
            except SettingError:
                refuse()
        value = tuple(value)
    if spec.choices is not None and value not in spec.choices:
        refuse()
    if kind in (int, float) and not _within(value, spec):
        refuse()
    if spec.valid is not None and not spec.valid(value):
        refuse()
    return value


def _within(v, s: Setting) -> bool:
    if s.low is not None and (v < s.low or (s.low_open and v == s.low)):
        return False
    return not (s.high is not None and (v > s.high or (s.high_open and v == s.high)))


def check_settings(obj) -> None:
    """Check every declared field of the frozen dataclass ``obj`` (call it from ``__post_init__``), storing each
    value in its kind (``epochs=3`` stays 3, ``lr=1`` becomes 1.0, a list of λ a tuple)."""
    for name, spec in declared(obj).items():
        value = check_value(name, getattr(obj, name), spec)
        object.__setattr__(obj, name, value)


def parse_text(text: str, spec: Setting):
    """A value typed as text (a CLI flag, a form's text box) in ``spec``'s kind; left as text when it does not read
    as one, so the check then names the text got. Tuples: items split on commas or semicolons."""
    t = text.strip()
    if spec.optional and t.lower() in ("", "none"):
        return None
    if spec.kind is tuple or (spec.per_row and any(c in t for c in ",;")):
        item = spec.item or (dataclasses.replace(spec, per_row=False) if spec.per_row else Setting(kind=str))
        return tuple(parse_text(p, item) for p in t.replace(";", ",").split(",") if p.strip())
    if spec.kind is bool:
        return {"true": True, "false": False}.get(t.lower(), t)
    if spec.kind in (int, float):
        for read in (int, float):
            try:
                return read(t)
            except ValueError:
                pass
    return t if spec.kind is not str else text
