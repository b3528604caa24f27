# Sourced by the dist checks. `check NAME COMMAND...` runs COMMAND and says
# "ok NAME", or "FAIL NAME" and the last lines of what it printed; $passed
# and $failed count them.
passed=0 failed=0
check() {
    local name=$1 out
    shift
    out=$(mktemp /tmp/jitgate-check-XXXXXX)
    if "$@" >"$out" 2>&1; then
        passed=$((passed + 1))
        echo "  ok    $name"
    else
        failed=$((failed + 1))
        echo "  FAIL  $name"
        sed 's/^/        /' "$out" | tail -20
    fi
    rm -f "$out"
}
