"""docgen: results.json -> Markdown status tables, area pages and endpoint pages."""
