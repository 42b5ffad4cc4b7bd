# Kernel lines the project supports, and where their images and headers are.
# shellcheck shell=bash

KERNEL_LINES=(6.1 6.12)

# kernel_release LINE -> e.g. 6.1.0-56-amd64 (the newest generic amd64 build installed)
kernel_release() {
	local line=$1 image
	image=$(ls /boot/vmlinuz-"$line".*-amd64 /boot/vmlinuz-"$line".*+*-amd64 2>/dev/null |
		grep -vE -- '-(rt|cloud)-amd64$' | sort -V | tail -1)
	if [ -z "$image" ]; then
		echo "no installed kernel for line $line under /boot (run scripts/setup)" >&2
		return 1
	fi
	basename "$image" | sed 's/^vmlinuz-//'
}
