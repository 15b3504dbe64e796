"""Command-line adapters (``bd``, ``gt``) over the library."""
