"""Manifests, dataset layouts, image loading, datasets and perturbations."""
