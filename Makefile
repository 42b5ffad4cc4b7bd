# GroupUnicast entry points. Each target installs what it needs (scripts/setup MODE).
#   make demo   - the main job: a demo SFU on a throw-away netns topology
#   make demo-vm - the same inside a VM with sendgroup.ko loaded (sendgroup backend too)
#   make test   - every test suite (host, BPF, and the module in VMs); needs root
#   make module - build kmod/sendgroup.ko for the running kernel (KDIR=... for another)
#   make deb    - the Debian packages sendgroup-dkms and groupcast, in build/deb/
#   make setup  - install what every target needs (what `make test` installs)
#   make uninstall-deps - remove everything scripts/setup installed
.PHONY: demo demo-vm test module deb setup uninstall-deps clean

demo:
	scripts/demo

demo-vm:
	scripts/demo --vm 6.12

test:
	scripts/test/all

module:
	$(MAKE) -C kmod

deb:
	scripts/deb

setup:
	scripts/setup test

uninstall-deps:
	scripts/setup --uninstall

clean:
	$(MAKE) -C kmod clean
	rm -rf kmod/build
