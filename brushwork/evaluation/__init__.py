"""Applying trained networks to folders, results pages, FID/KID, grids, loss plots, the survey."""
