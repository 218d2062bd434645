# distro-builder: the two set-up commands are `make iso` and `make test` (see README.md).
# Both install what they need: Debian packages with apt-get (as root), Python ones into .venv.

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
BUILD    ?= build
BASE_ISO ?=
DEMO_ISO := $(BUILD)/demo-base.iso
OUT_ISO  ?= $(BUILD)/stackops-amd64.iso
PYTEST_ARGS ?=
# Extra `distro-builder build` options, e.g. BUILD_ARGS='--serial-console --deployment d.yaml'
# (with a real BASE_ISO also the repositories: --sources my-sources.list).
BUILD_ARGS ?=

# Debian 12 packages. What `make iso` needs: the ISO tools, the demo base's boot parts, the
# preseed checker, gpg for signing, apt's deb822 parser.
BUILD_PACKAGES := python3 python3-venv python3-pip genisoimage xorriso isolinux syslinux-common \
	syslinux-utils debian-installer-12-netboot-amd64 memtest86+ debconf-utils dpkg-dev cpio busybox \
	gnupg gpgv apt openssl python3-apt
# What `make test` adds: QEMU and the independent checkers, the shells a node and the installer
# run, the stand-in node's tools, PostgreSQL, Chromium, the network-boot parts; UEFI firmware,
# GRUB, FAT tools and sfdisk for the GPT + appended-ESP images (tests/gpt_iso.py).
TEST_PACKAGES := qemu-system-x86 qemu-utils shellcheck time dose-distcheck lz4 cdebconf util-linux \
	debootstrap dash bash coreutils wget postgresql chromium chromium-driver ipxe-qemu pxelinux \
	e2fsprogs grub-rescue-pc ipxe dnsmasq-base iproute2 zstd iptables ovmf grub-pc-bin \
	grub-efi-amd64-bin mtools dosfstools fdisk
APT_PACKAGES := $(BUILD_PACKAGES) $(TEST_PACKAGES)

.PHONY: help deps deps-build venv iso demo-base test test-unit test-integration test-qemu e2e bench lint clean

help:
	@echo "make iso    build the distro ISO ($(OUT_ISO)); BASE_ISO=... to use a real Ubuntu ISO"
	@echo "make test   run every test (unit, integration, qemu)"
	@echo "make e2e    first boot of every node, power cuts, a failing step (stand-in node, QEMU)"
	@echo "make bench  run the benchmarks"
	@echo "make lint   ruff"

# Install the Debian packages that are missing (needs root or sudo): `deps` all of them (tests),
# `deps-build` only what building the ISO needs.
deps: PACKAGES = $(APT_PACKAGES)
deps-build: PACKAGES = $(BUILD_PACKAGES)
deps deps-build:
	@missing=$$(for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BIN)/distro-builder: pyproject.toml | deps-build
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@# apt's deb822 parser (archive/deb822.py): python3-apt is not on PyPI; link Debian's module
	@# alone (not --system-site-packages: that would also bring Debian's older pycdlib/debian).
	@so=$$(ls /usr/lib/python3/dist-packages/apt_pkg.cpython-*.so 2>/dev/null | head -1); \
	site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	[ -z "$$so" ] || ln -sf "$$so" "$$site/"
	@$(BIN)/python -c 'import apt_pkg' 2>/dev/null || echo "note: no apt_pkg; deb822 uses its Python rules"
	@touch $@

venv: $(BIN)/distro-builder

demo-base: venv
	$(BIN)/distro-builder demo-base -o $(DEMO_ISO)

ifeq ($(BASE_ISO),)
iso: demo-base
	$(BIN)/distro-builder demo-repo -o $(BUILD)/demo-repo
	$(BIN)/distro-builder build --base $(DEMO_ISO) -o $(OUT_ISO) \
		--sources $(BUILD)/demo-repo/sources.list $(BUILD_ARGS)
else
iso: venv
	$(BIN)/distro-builder build --base $(BASE_ISO) -o $(OUT_ISO) $(BUILD_ARGS)
endif

test: deps venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: deps venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: deps venv
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

test-qemu: deps venv
	$(BIN)/python -m pytest -m qemu $(PYTEST_ARGS)

# Every test marked e2e: stage 5 on the stand-in node for every node entry, power cuts, a failing
# step (tens of minutes under TCG; needs root, debootstrap and deb.debian.org the first time, see
# README "QA: smoke"); 300 cases of the base-ISO mutation fuzzer (about 5 minutes); multi-node
# with real Nova 2011.2 (four chroots on one LAN, an instance in libvirt, 2-4 minutes warm); and
# the QEMU boots kept out of make test for its time (the single-role entries, the plain-PXE
# chain, --preseed-url in d-i, the exported tree over QEMU's TFTP, two smoke-tool cases).
e2e: deps venv
	DISTRO_BUILDER_E2E=1 $(BIN)/python -m pytest -m e2e tests $(PYTEST_ARGS)

bench: deps venv
	$(BIN)/python benchmarks/run.py --gpt
	$(BIN)/python benchmarks/resolve.py
	$(BIN)/python benchmarks/smoke.py
	$(BIN)/python benchmarks/installer.py
	$(BIN)/python benchmarks/mirror.py
	$(BIN)/python benchmarks/firstboot.py
	nice $(BIN)/python benchmarks/download.py

lint: venv
	$(BIN)/ruff check distro_builder tests benchmarks
	$(BIN)/ruff format --check distro_builder tests benchmarks

clean:
	rm -rf $(BUILD) .pytest_cache
