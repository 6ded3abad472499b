# disk-free.sh DIRECTORY
# The KiB free on the file system DIRECTORY is on, as one JSON line {"available_kib": N}: why
# an SFTP write failed, when the server only says "Failure". `df -P`'s 4th column of its
# second line (POSIX fixes the columns; the mount point, which may hold blanks, is last).
df -Pk -- "$1" | awk 'NR == 2 && $4 ~ /^[0-9]+$/ { printf "{\"available_kib\": %s}\n", $4 }'
