"""Infrastructure: the store (shared state) and the WeCom API client."""
