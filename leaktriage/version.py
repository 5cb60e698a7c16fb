"""The version of leaktriage (one place; the package, the manifest's tool record and --version read it)."""
__version__ = "0.1.0"
