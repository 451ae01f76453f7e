"""``make bench``: papermail's throughput, scaling, memory and quality, measured side by side.

Run ``python -m bench --help``. All coupling to papermail's internals lives in ``bench.adapters``.
"""
