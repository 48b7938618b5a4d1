"""Test helpers shared across test folders; not a test package itself."""
