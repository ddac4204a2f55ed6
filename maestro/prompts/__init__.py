"""Versioned prompt templates: Jinja2 files under ``templates/`` and a loader that hashes each version."""
