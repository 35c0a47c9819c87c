"""The regression suite: confirmed failure scenarios frozen as a portable, versioned test set; checking
and comparing classifiers on it. Needs no workspace, no VAE and no GPU."""
