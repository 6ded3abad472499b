# disk-free.sh DIRECTORY
# `df -Pk` of the file system DIRECTORY is on: why an SFTP write failed, when the server
# only says "Failure".
df -Pk -- "$1"
