"""The networks: the paper's classifier and β-VAE, their training, and checkpoints on disk."""
