"""The command line (``python -m defuse <command>``, :mod:`defuse.cli.main`) and the jobs the app starts with it.

Kept empty on purpose: importing :mod:`defuse.cli.jobs` (the app does) must not load the parser and commands.
"""
