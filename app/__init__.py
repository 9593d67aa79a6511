"""Vigil: video analytics for Axis cameras and laptops."""
__version__ = "0.1.0"
