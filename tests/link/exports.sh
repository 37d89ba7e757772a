#!/usr/bin/env bash
# exports.sh LIBATTN_SO ATTN_H — libattn.so exports exactly the functions
# attn.h declares with ATTN_API: no internal attn__* symbol, no mechanism
# vtable attn_mech_<ident>, nothing else.
set -euo pipefail
so=$1 hdr=$2
public=$(grep -o '^ATTN_API [^(]*(' "$hdr" | sed -E 's/.*[ *]([a-z_0-9]+)\($/\1/' | sort -u)
exported=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' | sort -u)
bare=$(grep -n -E '^(const |unsigned |struct )?[a-z_0-9]+[ *]+attn_[a-z_0-9]+\(' "$hdr" || true)
[ -z "$bare" ] || { echo "exports.sh: functions declared in $hdr without ATTN_API:" >&2; echo "$bare" >&2; exit 1; }
[ -n "$public" ] || { echo "exports.sh: no ATTN_API declarations found in $hdr" >&2; exit 1; }
extra=$(comm -13 <(echo "$public") <(echo "$exported"))
missing=$(comm -23 <(echo "$public") <(echo "$exported"))
if [ -n "$extra" ] || [ -n "$missing" ]; then
    [ -z "$extra" ] || echo "exports.sh: $so exports symbols not in the public API:" $extra >&2
    [ -z "$missing" ] || echo "exports.sh: $so lacks public functions:" $missing >&2
    exit 1
fi
echo "exports.sh: $so exports the $(echo "$public" | wc -l) public functions of $(basename "$hdr") and nothing else"
