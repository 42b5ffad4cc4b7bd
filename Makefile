# GroupUnicast entry points. Each target installs what it needs (scripts/setup).
#   make demo   - the main job: a demo SFU on a throw-away netns topology
#   make demo-vm - the same inside a VM with sendgroup.ko loaded (sendgroup backend too)
#   make test   - every test suite (host, BPF, and the module in VMs); needs root
#   make module - build kmod/sendgroup.ko for the running kernel (KDIR=... for another)
.PHONY: demo demo-vm test module setup clean

demo:
	scripts/demo

demo-vm:
	scripts/demo --vm 6.12

test:
	scripts/test/all

module:
	$(MAKE) -C kmod

setup:
	scripts/setup

clean:
	$(MAKE) -C kmod clean
	rm -rf kmod/build
