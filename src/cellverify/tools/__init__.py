"""Maintainer tools: the verdict's calibration and a region's measurement."""
