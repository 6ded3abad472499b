"""gunicorn's default config file (./gunicorn.conf.py), as the broken-web branch ships it.

``on_starting`` runs in the master before it creates its listening sockets: this one never
returns, so the web process stays up and never listens.
"""

import time


def on_starting(server: object) -> None:
    print("gunicorn: on_starting hangs (broken-web): never listening", flush=True)
    while True:
        time.sleep(3600)
