#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries BINARY... link to,
# one per line, sorted.  deploy/Dockerfile's build stage writes this list so that
# the runtime stage installs exactly the runtime libraries and nothing else.
# Fails when a library belongs to no package (the image would not run).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
libs=$(ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
[ -n "$libs" ] || { echo "runtime-packages: ldd found no libraries in $*" >&2; exit 1; }
for f in $libs; do
  real=$(realpath "$f")
  # Debian 12 merged /lib into /usr/lib, but dpkg still records some files
  # under their old paths: try each spelling.
  pkg=""
  for p in "$f" "$real" "${real#/usr}" "/usr$f"; do
    if out=$(dpkg -S "$p" 2>/dev/null); then pkg=${out%%:*}; break; fi
  done
  [ -n "$pkg" ] || { echo "runtime-packages: no package holds $f ($real)" >&2; exit 1; }
  echo "$pkg"
done | sort -u
