"""Benchmarks of the callback service. They print figures; they assert nothing.

``python -m bench.run`` runs every scenario and prints one table; see bench/README.md.
"""
