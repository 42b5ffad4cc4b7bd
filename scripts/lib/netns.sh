# shellcheck shell=bash
# The one network-namespace topology builder of the shell scripts (the Swift side's is
# GroupcastLab's `Topology`). Everything stays inside namespaces this file creates: veth pairs
# are created with both ends already in their namespaces (nothing appears on the host), no
# default route is ever added.
#
#   . "$here/../lib/netns.sh"      # from scripts/test, scripts/bench, ...
#   trap netns_cleanup EXIT            # or call netns_cleanup from your own trap
#   netns_add NAME...                  # ip netns add + lo up; remembered for netns_cleanup
#   netns_veth NS_A IF_A NS_B IF_B     # a veth pair, IF_A in NS_A, IF_B in NS_B, both up
#   netns_addr NS IF ADDR/PREFIX...    # addresses (IPv6 without duplicate address detection)
#   netns_exec NS COMMAND...           # run COMMAND in NS (nsenter: keeps open descriptors)
#   netns_mac NS IF                    # print IF's MAC address
#   netns_no_default_route NS          # fail if NS has a default route
#   netns_cleanup                      # delete every namespace netns_add made (their veths go too)

netns_created=()

netns_add() {
	local ns
	for ns in "$@"; do
		ip netns add "$ns" || return 1
		netns_created+=("$ns")
		ip -n "$ns" link set lo up || return 1
	done
}

netns_veth() {
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" || return 1
	ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

netns_addr() {
	local ns=$1 dev=$2 addr
	shift 2
	for addr in "$@"; do
		case $addr in
		*:*) ip -n "$ns" addr add "$addr" dev "$dev" nodad || return 1 ;;
		*) ip -n "$ns" addr add "$addr" dev "$dev" || return 1 ;;
		esac
	done
}

netns_exec() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

netns_mac() {
	ip -n "$1" -br link show dev "$2" | awk '{print $3}'
}

netns_no_default_route() {
	if ip -n "$1" route show default | grep -q . || ip -n "$1" -6 route show default | grep -q .; then
		echo "unexpected default route in $1" >&2
		return 1
	fi
}

netns_cleanup() {
	local ns
	for ns in "${netns_created[@]}"; do ip netns del "$ns" 2>/dev/null; done
	netns_created=()
}
