"""Recipes: sources in native formats -> analysis-ready Zarr v3, published through the catalog."""
