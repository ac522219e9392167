"""umami-conformance's command line (`cli.py`), the composition root above the runner and the docs."""
