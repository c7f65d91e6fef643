"""Batched implicit neural representations (SIREN, Gauss, WIRE), fitting, PCA heatmaps and cache."""
