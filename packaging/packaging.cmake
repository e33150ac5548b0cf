# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
# Debian packages: `cpack -G DEB` in the build directory, after building.
# mimamori-camera: the daemon, its systemd unit, tmpfiles.d entry, maintainer scripts, examples.
# mimamori-tools: the `mimamori` CLI for city staff and police (and for provisioning a camera).
# Both carry the DEP-5 copyright file and the changelog; tests/packaging checks them with
# dpkg-deb, lintian --pedantic and readelf, and installs them into a throwaway root.
set(deb ${PROJECT_SOURCE_DIR}/packaging/debian)
# `cpack` (and `cmake --install`) package what is built, without building every test and
# benchmark first: build before packaging (./packaging/build, or the two binaries' targets).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# The changelog's newest entry must be this version: a release bumps both or the build stops.
file(STRINGS ${deb}/changelog changelog_head LIMIT_COUNT 1)
if(NOT changelog_head MATCHES "^mimamori \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "packaging/debian/changelog starts with '${changelog_head}', "
                      "not version ${PROJECT_VERSION} of project()")
endif()
# Installed compressed, as Debian installs changelogs (a native version: changelog.gz).
set(changelog_gz ${PROJECT_BINARY_DIR}/generated/changelog.gz)
add_custom_command(OUTPUT ${changelog_gz}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/generated
  COMMAND sh -c "gzip -9n < '${deb}/changelog' > '${changelog_gz}'"
  DEPENDS ${deb}/changelog VERBATIM)
add_custom_target(mimamori_changelog ALL DEPENDS ${changelog_gz})

foreach(component camera tools)
  install(FILES ${deb}/copyright ${changelog_gz} DESTINATION share/doc/mimamori-${component}
          COMPONENT ${component})
endforeach()

# Bookworm's systemd still reads units and tmpfiles.d from /lib (lintian wants them there).
install(FILES packaging/mimamorid.service DESTINATION /lib/systemd/system COMPONENT camera)
install(FILES ${deb}/mimamori-camera.tmpfiles DESTINATION /usr/lib/tmpfiles.d
        RENAME mimamori-camera.conf COMPONENT camera)
# No config in /etc: `mimamori provision` writes it, and the unit waits for it. The packaged
# example is what provision writes, with the camera's id.
install(FILES ${deb}/README.Debian DESTINATION share/doc/mimamori-camera COMPONENT camera)
install(FILES ${deb}/examples/masks.json packaging/config/mimamorid.json
        DESTINATION share/doc/mimamori-camera/examples COMPONENT camera)
install(DIRECTORY docs/ DESTINATION share/doc/mimamori COMPONENT tools)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mimamori)
set(CPACK_PACKAGE_VENDOR "Mimamori")
set(CPACK_PACKAGE_CONTACT "Mimamori developers <dev@mimamori.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SOURCE mimamori)
set(CPACK_DEBIAN_PACKAGE_SECTION video)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Stripped binaries; dpkg-shlibdeps works out the library dependencies.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENTS_ALL camera tools)
set(CPACK_DEBIAN_CAMERA_PACKAGE_NAME mimamori-camera)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME mimamori-tools)
set(CPACK_DEBIAN_CAMERA_PACKAGE_CONTROL_EXTRA ${deb}/camera/postinst ${deb}/camera/prerm ${deb}/camera/postrm)
# The tools provision the unit and read its ring; BlueZ for the watch tags.
set(CPACK_DEBIAN_CAMERA_PACKAGE_RECOMMENDS "mimamori-tools (= ${PROJECT_VERSION}), bluez")
# The outline preview draws mask names (Japanese included) with Noto Sans CJK.
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "fonts-noto-cjk")
set(CPACK_DEBIAN_CAMERA_PACKAGE_DEPENDS "adduser, gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, gstreamer1.0-plugins-ugly, gstreamer1.0-libav")
# First line: the synopsis; the rest: the extended description (CPack indents it).
set(CPACK_COMPONENT_CAMERA_DESCRIPTION "municipal watch camera recorder with privacy masks (daemon)
Mimamori is the software of a municipal watch camera. mimamorid captures
video with GStreamer, blacks out houses' doors, windows and balconies with
fixed privacy masks before encoding, and keeps about twelve days of H.264
footage on the SD card in an encrypted, power-cut-safe ring whose expired
days are crypto-shredded. Footage leaves the camera only as a sealed extract
for a police request the city approved, and every grant and refusal is
written to a hash-chained, camera-signed audit log.
.
This package holds the daemon, its hardened systemd unit and an example mask
file. Run `mimamori provision` (mimamori-tools) before the first start;
README.Debian says what else to create.")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "municipal watch camera tools for city staff and police
Mimamori is the software of a municipal watch camera that records only
masked, encrypted footage and hands it out only for approved police
requests.
.
This package holds the mimamori command line: privacy masks (validate,
preview, a browser editor, import, check), keys and trust files, signed
requests and their approval, fetching and verifying extracts, the audit
log, the ring on a camera's card, the BLE detector's records, and
provisioning a camera on its first boot.")
include(CPack)
