# Kernel lines the project supports, and where their images and headers are.
#   6.1, 6.12: Debian's kernels, unpacked by scripts/setup (never installed as the
#              host's kernels) into $GU_KERNEL_ROOT/RELEASE/ ({boot,lib/modules,usr/src})
#   debug:     Debian's 6.12 source built with KASAN, lockdep, kmemleak, ...
#              (scripts/vm/build-debug-kernel, cached under $GU_KERNEL_CACHE)
# shellcheck shell=bash

# The Debian lines (benchmarks, dkms, demos) and every line the tests boot.
KERNEL_LINES=(6.1 6.12)
VM_TEST_LINES=("${KERNEL_LINES[@]}" debug)

GU_KERNEL_ROOT=${GU_KERNEL_ROOT:-/opt/groupunicast/kernels}
GU_KERNEL_CACHE=${GU_KERNEL_CACHE:-/var/cache/groupunicast/kernels}
_kernels_scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# kernel_package LINE -> the Debian metapackage that follows the line's newest
# generic amd64 build (6.1: bookworm; 6.12: bookworm-security/-backports)
kernel_package() {
	case $1 in
	6.1) echo linux-image-amd64 ;;
	6.12) echo linux-image-6.12-amd64 ;;
	*) echo "no Debian package for kernel line $1" >&2; return 1 ;;
	esac
}

# kernel_release LINE -> e.g. 6.1.0-56-amd64 (the newest unpacked generic amd64 build)
kernel_release() {
	local line=$1 release release_file
	if [ "$line" = debug ]; then
		release_file=$(kernel_path debug include/config/kernel.release) || return 1
		cat "$release_file"
		return
	fi
	# scripts/setup writes `complete` last: a half-unpacked tree is never picked.
	release=$(find "$GU_KERNEL_ROOT" -mindepth 2 -maxdepth 2 -name complete \
		-path "$GU_KERNEL_ROOT/$line.*-amd64/complete" 2>/dev/null |
		sed 's|/complete$||; s|.*/||' | sort -V | tail -1)
	if [ -z "$release" ]; then
		echo "no kernel for line $line under $GU_KERNEL_ROOT (run scripts/setup test)" >&2
		return 1
	fi
	echo "$release"
}

# kernel_image LINE -> the bzImage QEMU boots
kernel_image() { kernel_path "$1" arch/x86/boot/bzImage "$GU_KERNEL_ROOT/%s/boot/vmlinuz-%s"; }

# kernel_kdir LINE -> the tree out-of-tree modules build against (KDIR)
kernel_kdir() { kernel_path "$1" "" "$GU_KERNEL_ROOT/%s/lib/modules/%s/build"; }

# kernel_path LINE PATH-IN-DEBUG-TREE DEBIAN-PATH-FORMAT (each %s: the release)
kernel_path() {
	local line=$1 release
	if [ "$line" = debug ]; then
		debug_kernel_built && echo "$(debug_kernel_dir)/build${2:+/$2}"
		return
	fi
	release=$(kernel_release "$line") || return 1
	# shellcheck disable=SC2059 # the format is the caller's
	printf "$3\n" "$release" "$release"
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
