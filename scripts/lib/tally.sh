# Shared by every test suite script: count test cases and print one tally line.
# A suite prints `tally: SUITE P passed, F failed` last; scripts/test/all sums them.
# shellcheck shell=bash

tally_passed=0
tally_failed=0

tally_add() { # passed failed
	tally_passed=$((tally_passed + $1))
	tally_failed=$((tally_failed + $2))
}

# Count a kselftest-harness run from its "# Totals: pass:N fail:M ..." line.
tally_from_kselftest() { # logfile
	local line
	line=$(grep -E '^# Totals: pass:[0-9]+ fail:[0-9]+' "$1" | tail -1)
	if [ -z "$line" ]; then
		echo "no kselftest totals in $1 (the test binary crashed or did not run)" >&2
		tally_add 0 1
		return
	fi
	local p f e
	p=$(sed -E 's/^# Totals: pass:([0-9]+) .*/\1/' <<<"$line")
	f=$(sed -E 's/.* fail:([0-9]+) .*/\1/' <<<"$line")
	e=$(sed -E 's/.* error:([0-9]+).*/\1/' <<<"$line")
	tally_add "$p" $((f + ${e:-0}))
}

# A single named check: tally_check NAME COMMAND...
tally_check() {
	local name=$1
	shift
	if "$@"; then
		echo "ok - $name"
		tally_add 1 0
	else
		echo "not ok - $name"
		tally_add 0 1
	fi
}

tally_print() { # suite
	echo "tally: $1 $tally_passed passed, $tally_failed failed"
	[ "$tally_failed" -eq 0 ]
}

# Count a `swift test` / XCTest / Swift Testing log (one implementation:
# scripts/test/swift --count-only). A run without a summary line crashed.
tally_from_swift() { # logfile [exit-status]
	local counted p f
	counted=$("$(dirname "${BASH_SOURCE[0]}")/../test/swift" --count-only "$1" "${2:-0}" | tail -1)
	read -r p f < <(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/' <<<"$counted")
	tally_add "${p:-0}" "${f:-1}"
}
