"""Jinja2 templates of generated modules (installed as the package `graphgen_templates`)."""
