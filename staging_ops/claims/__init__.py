"""Claims, the use-cases: service.py (claim, release, status), reap.py (what reap frees, and
freeing it), branches.py (what git says of a branch), auto_release.py and scheduled_reap.py
(the release rule, automated), view.py (text output). Their vocabulary and rules are in
staging_ops/slots."""
