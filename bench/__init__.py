"""Benchmarks of buckets and the operator, each reported against a ceiling measured in the same run.

The machines these run on are small and shared, so absolute rates drift from
one run to the next. Every benchmark therefore measures, in the same run and
under the same conditions, what the bare layer below it can do (the raw
database driver, a trivial HTTP endpoint, the Kubernetes Job controller) and
reports the ratio, with medians of repeated runs. ``python -m bench`` runs
them all (see ``bench/README.md``); they are not tests and live outside
pytest's test paths.
"""
