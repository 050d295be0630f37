"""Shared ground for every layer: configuration, the home directory and the error hierarchy."""

__version__ = "0.1.0"
