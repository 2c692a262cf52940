#!/bin/sh
# Runs every test program in the folder given, then prints the totals on a
# line of its own: "N passed, N failed".  Exit status 1 if anything failed.
dir=$1
passed=0; failed=0; crashed=""
# Compiled tests from the build folder, then the standard-library Python ones.
for t in "$dir"/test_* tests/test_*.py; do
    [ -f "$t" ] || continue
    name=$(basename "$t")
    case "$t" in
        *.py) out=$(python3 "$t" 2>&1); rc=$? ;;
        *) [ -x "$t" ] || continue; out=$("$t" 2>&1); rc=$? ;;
    esac
    res=$(printf '%s\n' "$out" | sed -n 's/^RESULT [^ ]* \([0-9]*\) \([0-9]*\)$/\1 \2/p' | tail -n 1)
    printf '%s\n' "$out" | grep -v '^RESULT ' | sed 's/^/  /'
    if [ -z "$res" ]; then
        echo "  $name: crashed or ended early (exit $rc)"
        failed=$((failed + 1)); crashed="$crashed $name"
        continue
    fi
    p=${res% *}; f=${res#* }
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    echo "  $name: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
