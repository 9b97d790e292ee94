"""The web layer: routes, forms, the SSE endpoint and template helpers. It stays thin."""
