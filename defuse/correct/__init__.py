"""Correct (paper §3.2.4): fine-tune on L(D) + λ·CE(D_f) over a λ sweep, pick λ, export the corrected model."""
