# Shared by every test suite script: count test cases and print one tally line.
# A suite prints `tally: SUITE P passed, F failed` last; scripts/test-all sums them.
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

# Count a `swift test` / XCTest / Swift Testing run from its summary lines.
# XCTest: "Executed N tests, with M failures"; Swift Testing: "Test run with N tests ... passed"
# or "... failed with M issues". A run with neither line crashed: one failure.
tally_from_swift() { # logfile
	local line n f found=0
	line=$(grep -E 'Executed [0-9]+ tests?, with [0-9]+ failures?' "$1" | tail -1)
	if [ -n "$line" ]; then
		n=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$line")
		f=$(sed -E 's/.*with ([0-9]+) failures?.*/\1/' <<<"$line")
		tally_add $((n - f)) "$f"
		found=1
	fi
	line=$(grep -E 'Test run with [0-9]+ tests?' "$1" | tail -1)
	if [ -n "$line" ]; then
		n=$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"$line")
		if grep -qE 'Test run with [0-9]+ tests? .*(failed|issues?)' <<<"$line" && ! grep -q 'passed after' <<<"$line"; then
			# Swift Testing counts failing tests only through their issues.
			f=$(grep -cE '^.{0,4}Test [^ ]+.* failed after' "$1" || true)
			[ "$f" -gt 0 ] || f=1
			tally_add $((n - f)) "$f"
		else
			tally_add "$n" 0
		fi
		found=1
	fi
	if [ "$found" -eq 0 ]; then
		echo "no swift test summary in $1 (the test binary crashed or did not run)" >&2
		tally_add 0 1
	fi
}
