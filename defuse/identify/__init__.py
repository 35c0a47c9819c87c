"""Identify (paper §3.2.1): search for unrestricted adversarial examples (UAEs) by perturbing β-VAE codes.

``search`` is the step (Q samples per image, Beta noise, at most M per image); ``noise``,
``autotune`` and ``chunks`` keep it fast, bounded in memory and resumable.
"""
