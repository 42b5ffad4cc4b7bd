# Kernel lines the project supports, and where their images and headers are.
#   6.1, 6.12: Debian's kernels (scripts/setup installs them under /boot)
#   debug:     Debian's 6.12 source built with KASAN, lockdep, kmemleak, ...
#              (scripts/vm/build-debug-kernel, cached under $GU_KERNEL_CACHE)
# shellcheck shell=bash

# The Debian lines (benchmarks, dkms, demos) and every line the tests boot.
KERNEL_LINES=(6.1 6.12)
VM_TEST_LINES=("${KERNEL_LINES[@]}" debug)

GU_KERNEL_CACHE=${GU_KERNEL_CACHE:-/var/cache/groupunicast/kernels}
_kernels_scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# kernel_release LINE -> e.g. 6.1.0-56-amd64 (the newest generic amd64 build installed)
kernel_release() {
	local line=$1 image
	if [ "$line" = debug ]; then
		debug_kernel_built || return 1
		cat "$(debug_kernel_dir)/build/include/config/kernel.release"
		return
	fi
	image=$(ls /boot/vmlinuz-"$line".*-amd64 /boot/vmlinuz-"$line".*+*-amd64 2>/dev/null |
		grep -vE -- '-(rt|cloud)-amd64$' | sort -V | tail -1)
	if [ -z "$image" ]; then
		echo "no installed kernel for line $line under /boot (run scripts/setup)" >&2
		return 1
	fi
	basename "$image" | sed 's/^vmlinuz-//'
}

# kernel_image LINE -> the bzImage QEMU boots
kernel_image() { kernel_path "$1" arch/x86/boot/bzImage /boot/vmlinuz-%s; }

# kernel_kdir LINE -> the tree out-of-tree modules build against (KDIR)
kernel_kdir() { kernel_path "$1" "" /lib/modules/%s/build; }

# kernel_path LINE PATH-IN-DEBUG-TREE DEBIAN-PATH-FORMAT (%s: the release)
kernel_path() {
	local line=$1 release
	if [ "$line" = debug ]; then
		debug_kernel_built || return 1
		echo "$(debug_kernel_dir)/build${2:+/$2}"
		return
	fi
	release=$(kernel_release "$line") || return 1
	# shellcheck disable=SC2059 # the format is the caller's
	printf "$3\n" "$release"
}

# The debug kernel's cache key: whatever decides its bytes (the config
# fragment, the build script, Debian's source version, virtme-ng's base config).
debug_kernel_key() {
	{
		cat "$_kernels_scripts/vm/debug-kernel.config" "$_kernels_scripts/vm/build-debug-kernel"
		dpkg-query -W -f='${Version}\n' linux-source-6.12 2>/dev/null
		virtme-configkernel --dry-run --defconfig 2>/dev/null
	} | sha256sum | cut -c1-16
}

# debug_kernel_dir -> $GU_KERNEL_CACHE/6.12-debug-KEY (build/ inside is the tree)
debug_kernel_dir() {
	echo "$GU_KERNEL_CACHE/6.12-debug-$(debug_kernel_key)"
}

debug_kernel_built() {
	[ -e "$(debug_kernel_dir)/complete" ] && return 0
	echo "the debug kernel is not built yet: run scripts/vm/build-debug-kernel" >&2
	return 1
}
