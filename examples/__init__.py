"""Example specs (installed as the package `graphgen_examples`; `graphgen examples` lists them)."""
