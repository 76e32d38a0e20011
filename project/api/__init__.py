"""The HTTP layer's shared parts: write access, error responses, health and page schemas."""
