"""The slot domain, under everything that claims, deploys or records: model.py (the claim
values and their parsing, states, events, the SlotRegistry Protocol), rules.py (the claim
rules, pure), owner.py (who is asking), branch.py (which branch names a deploy accepts)."""
