"""Claims: who holds which slot. model.py (states, events, parsing, the registry Protocol),
owner.py (who is asking), service.py (claim, release, status, reap), branches.py (what git
says of a branch), view.py (text output)."""
