"""The Trino model: what the charm wants the workload to look like.

Nothing in this package imports ``ops`` or ``lightkube``: it turns a snapshot of
what Juju knows into files and a Pebble layer, so it can be tested (and run as
a dry run) without a Juju model.
"""
