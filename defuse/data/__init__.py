"""The data: datasets and their train/validation/test splits, image files, image grids."""
