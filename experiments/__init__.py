"""The experiment runner: wires personasim's stages into one run directory."""

from __future__ import annotations
