"""The operator's commands (Invoke tasks), one module per concern; tasks.py collects them.

Each task parses its flags, calls one staging_ops function and prints its result. staging_ops
modules are imported inside the tasks, so `invoke --list` never pays for psycopg2, requests,
Flask or Fabric.
"""
