"""Claims: who holds which slot. model.py (states, events, parsing, the registry Protocol),
rules.py (the claim rules, pure), owner.py (who is asking), service.py (claim, release,
status), reap.py (what reap frees, and freeing it), branches.py (what git says of a branch),
view.py (text output)."""
