"""Distill (paper §3.2.2): cluster the UAEs into failure scenarios (DP-GMM, weight above ε), sample from them (τ).

``scenarios`` fits and holds the scenarios, ``dpgmm`` is the mixture, ``sampling`` draws and decodes
samples of a scenario, ``embed`` is the 2-D map of codes shown on the Explore page.
"""
