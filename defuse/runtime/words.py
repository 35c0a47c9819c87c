"""The words a message uses for a setting or an option, for whoever reads it: the command line or the app.

A message in the core names what to change with :func:`named` (a config's field, from its declaration in
:mod:`defuse.runtime.settings`: ``--flag`` on the command line, its label on a page) or :func:`option` (a CLI
option that is no config's field, declared once in :data:`OPTIONS` with its words on a page). So nothing
rewrites a message after the fact.

The audience is the CLI unless the app says otherwise: the app (``defuse.ui.boot``) calls :func:`speak_to_app`
once per process, and the jobs it starts inherit the app's words through :data:`ENV` in their environment
(``defuse.cli.jobs.start_job``), so a job's error is already in the page's words.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .settings import declared, flag_of

ENV = "DEFUSE_WORDS"   # "app" in a job the app started
AUDIENCES = ("cli", "app")

# Set by the app: whether the running code speaks to a page. A test process runs pages and the CLI side by side,
# so the app answers per call (is this a page's script run?) rather than once for the whole process.
_app_when: list[Callable[[], bool]] = []


def speak_to_app(when: Callable[[], bool] = lambda: True) -> None:
    """From now on, code for which ``when()`` holds speaks the app's words (the app calls this at start-up)."""
    _app_when[:] = [when]


def audience() -> str:
    """"app" inside the app or a job it started, else "cli"."""
    if os.environ.get(ENV) == "app" or any(when() for when in _app_when):
        return "app"
    return "cli"


def named(cls, field: str) -> str:
    """The field ``field`` of the config ``cls`` as the reader knows it: its ``--flag``, or its label on a page
    (the flag where the app has no label for it)."""
    spec = declared(cls)[field]
    if audience() == "app" and spec.label:
        return spec.label
    return "--" + flag_of(field, spec)


@dataclass(frozen=True)
class Option:
    """A CLI option that is no config's field: how the command line types it and how a page names it."""

    cli: str         # as typed: "--reviewer auto"
    app: str = ""    # the page's control, or what to do in the app; "" where the option is the CLI's alone


# Each option a core message names, once. The app's words are the labels its pages show (defuse/ui, pages/).
OPTIONS = {
    "accept-low-fidelity": Option("--accept-low-fidelity", "the “Search with this VAE anyway” box"),
    "trust-code": Option("--trust-code", "the “I trust this file” box"),
    "architecture": Option("--architecture", "“Network of bare weights”"),
    "architecture-class": Option("--architecture module:Class", "“…or your own network class”"),
    "arch-kwargs": Option("--arch-kwargs"),
    "size": Option("--size", "a new project (sidebar) with another “Image size”"),
    "size-32": Option("--size 32 (or 64, 128)", "a new project (sidebar) with another “Image size”"),
    "reviewer": Option("--reviewer", "the automatic reviewer"),
    "reviewer-auto": Option("--reviewer auto (or a reviewer checkpoint)",
                            "the automatic reviewer (tick its box on the page)"),
    "no-reviewer": Option("no --reviewer", "without the automatic reviewer"),
    "failure-labels-reviewer": Option("--failure-labels reviewer", "“Each sample its own label: the automatic "
                                      "reviewer's” under “Labels of the failure samples D_f” on the Correct page"),
    "failure-labels-scenario": Option("--failure-labels scenario", "“One label per scenario” under “Labels of the "
                                      "failure samples D_f” on the Correct page"),
    "backend-local": Option("--backend local", "“This machine” as the backend"),
    "ray-address": Option("--ray-address", "“Ray address”"),
    "ray-workers": Option("--ray-workers"),
    "out": Option("--out"),
    "workspace": Option("--workspace", "another project name"),
    "force": Option("--force"),
    "only": Option("--only"),
    "labels": Option("--labels"),
    "with-test": Option("--with-test"),
    "min-test-accuracy": Option("--min-test-accuracy"),
    "max-negative-flips": Option("--max-negative-flips"),
    "baseline": Option("--baseline"),
}


def option(name: str) -> str:
    """The words for the option ``name`` of :data:`OPTIONS`, for the reader (its flag where no page has it)."""
    words = OPTIONS[name]
    return words.app if audience() == "app" and words.app else words.cli
