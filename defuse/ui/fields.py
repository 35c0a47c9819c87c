"""Number fields of the job forms whose bad values are named right beside them, before any job starts.

Streamlit's ``min_value``/``max_value`` only turn a field's border red and quietly keep its last valid value,
so a job could start with a number other than the one on screen (issue #17). These fields take any number
typed; on submit, :func:`refused` checks every field of the form and writes under each bad one what is wrong
and how to fix it. A job starts only when no field is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from ..runtime.settings import declared


def _words(x) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


@dataclass
class NumberField:
    """A number the user typed, the range it must lie in, and the empty slot under its input."""

    name: str                 # how a message names the field
    value: Any                # what Streamlit returned (None when the field was cleared)
    low: Optional[float]      # inclusive bounds; None: unbounded on that side
    high: Optional[float]
    note: Any                 # st.empty() right under the input
    whole: bool = True        # a whole number is expected
    low_open: bool = False    # the value must be above ``low``, not equal to it
    high_open: bool = False   # the value must be below ``high``, not equal to it

    def problem(self) -> Optional[str]:
        """What is wrong with the value, in plain words with the fix, or None."""
        v, kind = self.value, "a whole number" if self.whole else "a number"
        between = ("above {} and " if self.low_open else "from {} to ") + ("below {}" if self.high_open else
                                                                         "at most {}" if self.low_open else "{}")
        span = (between.format(_words(self.low), _words(self.high)) if self.low is not None and self.high is not None
                else f"{'above' if self.low_open else 'of at least'} {_words(self.low)}" if self.low is not None
                else f"of at most {_words(self.high)}" if self.high is not None else "")
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return f"{self.name} is empty: type {kind} {span}".rstrip()
        if self.whole and not float(v).is_integer():  # "1.5" epochs: refused, never quietly rounded to 1
            return f"{self.name} must be {kind} {span}; you typed {v:g}. Type a whole number {span}".rstrip()
        too_low = self.low is not None and (v < self.low or (self.low_open and v == self.low))
        if too_low or (self.high is not None and (v > self.high or (self.high_open and v == self.high))):
            return f"{self.name} must be {kind} {span}; you typed {_words(v)}. Type a value {span}"
        return None


def number_field(where, label: str, value, *, low=None, high=None, name: Optional[str] = None,
                 **number_input) -> NumberField:
    """A ``number_input`` under ``where`` (a column, the page) with no clamp, and an empty slot under it.

    ``name``: the field's name in messages (default: the label up to its first " (").
    """
    whole = isinstance(value, int)
    if whole:  # a float input: an integer one rounds "1.5" to 1 in the browser, before any check could see it
        number_input = {"format": "%.15g", **number_input, "step": float(number_input.get("step", 1))}
        value = float(value)
    got = where.number_input(label, value=value, **number_input)
    if whole and isinstance(got, float) and got.is_integer():
        got = int(got)
    return NumberField(name or label.split(" (")[0], got, low, high, where.empty(), whole=whole)


def setting_field(where, cls, name: str, value, *, label: Optional[str] = None, high=None,
                  **number_input) -> NumberField:
    """A :func:`number_field` for the setting ``name`` of the config class ``cls``, from its one declaration
    (:mod:`defuse.runtime.settings`): its bounds, its label (the name messages use), its help.

    ``label``: the text above the input (default: the declared label); ``high``: a tighter upper bound that depends
    on the project (the images it has), never a looser one. An optional count shown as 0 stands for its None
    ("chosen for the device"): 0 is then the lowest value the field takes."""
    spec = declared(cls)[name]
    top = spec.high if high is None else high if spec.high is None else min(high, spec.high)
    low = 0 if spec.optional and spec.kind is int and value == 0 else spec.low
    f = number_field(where, label or spec.label.strip("“”"), value, low=low, high=top,
                     name=spec.label.strip("“”") or name, help=number_input.pop("help", spec.help), **number_input)
    f.low_open, f.high_open = spec.low_open, spec.high_open
    return f


def refused(*fields: NumberField) -> bool:
    """Write each bad field's problem under it; True when any was bad (then no job may start)."""
    bad = [f for f in fields if f.problem()]
    for f in bad:
        f.note.error(f"Not started: {f.problem()}", icon="⚠️")
    return bool(bad)


def show_beside(field: NumberField, error: ValueError) -> None:
    """A check that needs more than the field's range (memory, a config rule) failed: say so under the field.
    Returns None, so a form may ``return show_beside(...)`` for "nothing to start"."""
    field.note.error(f"Not started: {error}", icon="⚠️")
