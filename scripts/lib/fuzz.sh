# The module's fuzzer in a VM run (sourced by scripts/vm/guest, after tally.sh).
# shellcheck shell=bash

# run_sg_fuzz SUITE LOGDIR: kmod/tests/sg_fuzz (every ioctl with edge values
# and bad pointers, sockets of every kind, threads, fork, SCM_RIGHTS, signals,
# SIGKILL mid-send; an undocumented errno or a kernel-internal one in
# results[] fails it), then sg_fuzz32 (the compat path, shorter); then the
# module must hold no group, member or cached route. The seed is printed:
# SENDGROUP_FUZZ_SEED=S replays a run; SENDGROUP_FUZZ_ITERATIONS=N sets its
# length (default 10^6 ioctls, as CI requires on every kernel line);
# SENDGROUP_FUZZ_PROFILE its profile (full, or lean for the debug kernel:
# the same kinds of op, fewer bulk calls and long episodes; sg_fuzz --help);
# SENDGROUP_FUZZ_DEADLINE=S fails the 64-bit run unless it reaches its length
# within S seconds (it stops there: a CI budget, checked instead of overrun);
# SENDGROUP_FUZZ_PROGRAMS which builds run (default: sg_fuzz sg_fuzz32).
run_sg_fuzz() {
	local suite=$1 logdir=$2 here repo seed fuzz iterations start profile deadline
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	repo=$(dirname "$here")
	seed=${SENDGROUP_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
	profile=${SENDGROUP_FUZZ_PROFILE:-full}
	for fuzz in ${SENDGROUP_FUZZ_PROGRAMS:-sg_fuzz sg_fuzz32}; do
		case $fuzz in
		*32) iterations=${SENDGROUP_FUZZ32_ITERATIONS:-100000} deadline=() ;;
		*) iterations=${SENDGROUP_FUZZ_ITERATIONS:-1000000}
		   deadline=(${SENDGROUP_FUZZ_DEADLINE:+--deadline "$SENDGROUP_FUZZ_DEADLINE"}) ;;
		esac
		start=$(date +%s)
		# Streamed as it runs (progress lines, stuck ops): a VM killed at its
		# deadline still shows where the fuzzer was.
		(ulimit -n 8192; "$here/lib/netns-exec" "$repo/kmod/build/tests/$fuzz" --seed "$seed" \
			--iterations "$iterations" "${deadline[@]}" --profile "$profile") 2>&1 |
			tee "$logdir/$fuzz.log"
		echo "# $suite: $fuzz took $(($(date +%s) - start)) s for $iterations ioctls ($profile profile)"
		tally_from_kselftest "$logdir/$fuzz.log"
	done
	tally_check "$suite: no group, member or cached route left after the fuzzer" sg_fuzz_released
}

sg_fuzz_released() {
	local stat value
	for stat in groups_live members_live routes_cached; do
		value=$(cat "/sys/class/misc/sendgroup/stats/$stat")
		[ "$value" = 0 ] || { echo "$stat is $value" >&2; return 1; }
	done
}
