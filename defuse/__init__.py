"""Defuse: find, understand and fix the failure modes of an image classifier.

Layers, each importing only those below it (docs/architecture.md): ``ui`` -> ``cli`` -> ``steps``
-> ``workspace`` -> the compute packages (``identify``, ``distill``, ``label``, ``correct``, ``nets``,
``data``, ``runtime``), where each step is a function with a frozen config and a typed result.
"""

__version__ = "0.1.0"
