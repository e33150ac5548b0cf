# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
# Cross build for arm64 camera units on a Debian 12 amd64 machine, with Debian's cross compiler
# (g++-aarch64-linux-gnu) and multiarch arm64 -dev packages (`dpkg --add-architecture arm64`):
# no sysroot, the arm64 libraries sit in /usr/lib/aarch64-linux-gnu beside the amd64 ones and
# the headers in /usr/include are shared. `./packaging/install-deps --arm64` installs all of it;
# the `arm64` preset (CMakePresets.json) uses this file; README "arm64" says what is covered.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# find_library and find_package search lib/aarch64-linux-gnu, never lib/x86_64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# pkg-config reads only the arm64 .pc files and the architecture-independent ones.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
# ctest starts each test through qemu-user itself: binfmt_misc is often not registered (a
# container without systemd), so an arm64 binary cannot be exec'd directly. The arm64 loader and
# libraries are the multiarch ones (/lib/ld-linux-aarch64.so.1, /usr/lib/aarch64-linux-gnu), so
# qemu needs no -L prefix; with `-L /usr/aarch64-linux-gnu`, Debian 12's qemu 7.2 spins forever
# in the forked child of a dynamically linked program, which hangs the store's kill -9 test.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static)
