"""The scale-and-speed benchmark (issue 5): ``make bench`` or ``python bench/run.py``."""
