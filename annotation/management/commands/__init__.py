"""Command-line doors into annotation: agreement and consensus over a long-format label CSV."""
