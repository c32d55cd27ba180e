"""``python -m personasim``."""

from __future__ import annotations

from personasim.cli import main

main()
