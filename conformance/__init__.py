"""umami-conformance: API conformance tests and docs for the Umami web-analytics REST API."""

__version__ = "0.1.0"
