"""The bundled specs (the repository's specs/), shipped as package data: see conformance.loader.DEFAULT_SPECS."""
