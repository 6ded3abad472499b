# deploy-mark-bad.sh RELEASE_DIR: mark a release that failed (`.bad`): rollback never picks it.
touch "$1/.bad"
