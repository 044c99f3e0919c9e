"""``make bench``: the pipeline measured against its own ceilings, side by side, in one run.

Figures are printed and written to ``bench/results/latest.json``; nothing here is asserted in tests.
See ``bench/README.md`` for what each row means.
"""
