"""Tools over pyqueue's public API: the CLI, search, metrics and the web dashboard."""
