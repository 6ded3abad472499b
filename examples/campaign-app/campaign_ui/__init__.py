"""The Campaign UI: a small Flask app that staging-ops deploys beside Apache Airflow.

``campaign_ui.wsgi:app`` is the WSGI entry point (gunicorn), ``python -m campaign_ui.migrate``
the release phase. Its only configuration is the environment staging-ops gives every process
(``DATABASE_URL``, ``DEPLOYED_COMMIT``, ``DEPLOYED_BRANCH``, ``SLOT_IDENTIFIER``).
"""
