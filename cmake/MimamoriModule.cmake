# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
# mimamori_module(NAME [SOURCES ...] PUBLIC_DEPS ... PRIVATE_DEPS ...): one static library per
# top-level folder, sources from NAME/src/*.cpp (or only SOURCES, given relative to NAME/),
# public headers under NAME/include/mimamori/NAME/.
function(mimamori_module name)
  cmake_parse_arguments(M "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  if(M_SOURCES)
    list(TRANSFORM M_SOURCES PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/ OUTPUT_VARIABLE sources)
  else()
    file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  endif()
  if(NOT sources)
    # A module whose sources have not landed yet still links (as headers only).
    add_library(mimamori_${name} INTERFACE)
    add_library(mimamori::${name} ALIAS mimamori_${name})
    target_include_directories(mimamori_${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(mimamori_${name} INTERFACE ${M_PUBLIC_DEPS})
    return()
  endif()
  add_library(mimamori_${name} STATIC ${sources})
  add_library(mimamori::${name} ALIAS mimamori_${name})
  target_include_directories(mimamori_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(mimamori_${name} PUBLIC ${M_PUBLIC_DEPS}
                        PRIVATE mimamori_warnings ${M_PRIVATE_DEPS})
  target_compile_features(mimamori_${name} PUBLIC cxx_std_20)
  set_target_properties(mimamori_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON LINKER_LANGUAGE CXX)
endfunction()

# mimamori_test(NAME LABEL SOURCES... LIBS ...): a doctest executable registered in CTest.
function(mimamori_test name label)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/doctest_main.cpp)
  target_link_libraries(${name} PRIVATE mimamori_warnings doctest::doctest ${T_LIBS})
  target_compile_definitions(${name} PRIVATE
    MIMAMORI_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    MIMAMORI_BINARY_DIR="${PROJECT_BINARY_DIR}")
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(MIMAMORI_SANITIZE)
    # ASan and UBSan make the suites about 2-3x slower.
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 3")
  endif()
  if(CMAKE_CROSSCOMPILING_EMULATOR)
    # Under qemu-user (the arm64 build) a test's own code takes about 4x the CPU time; its waits
    # (fsync, timers) do not grow: test_store takes 1.1-1.5x its native wall time.
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 3")
  endif()
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT ${T_TIMEOUT})
endfunction()
