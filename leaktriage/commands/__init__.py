"""Click commands that live outside cli.py (loaded lazily by cli.LazyGroup)."""
