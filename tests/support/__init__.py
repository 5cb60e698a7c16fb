"""Test support code (kept out of the installed package)."""
