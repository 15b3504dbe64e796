#!/usr/bin/env bash
# The kill -9 chaos writer through the `bd` command line: crash_writer_cli.sh DIR
# Prints "created ID" / "closed ID" only after bd exited 0 (the change committed).
set -u
dir="$1"
i=0
while true; do
  i=$((i + 1))
  id=$(bd -C "$dir" q "cli bead $i" -p $((i % 5))) || exit 1
  echo "created $id"
  if [ $((i % 3)) -eq 0 ]; then
    bd -C "$dir" close "$id" -q >/dev/null || exit 1
    echo "closed $id"
  fi
done
