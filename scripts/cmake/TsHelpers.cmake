# Small CMake helpers shared by every module.

# ts_add_module(NAME name SOURCES ... DEPS ...): builds tensorscape_<name>, aliased tensorscape::<name>,
# with the repository root as include root and our warning set.
function(ts_add_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(tensorscape_${M_NAME} STATIC ${M_SOURCES})
  add_library(tensorscape::${M_NAME} ALIAS tensorscape_${M_NAME})
  target_include_directories(tensorscape_${M_NAME} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
  target_link_libraries(tensorscape_${M_NAME} PUBLIC ${M_DEPS} PRIVATE ts_warnings ${M_PRIVATE_DEPS})
endfunction()

# ts_add_test(NAME name SOURCES ... DEPS ... LABELS ...): one GoogleTest binary whose test cases are each
# registered with ctest (gtest_discover_tests, listed when ctest runs), so a skip inside a binary shows as a
# skipped test. Every test gets TS_VALIDATION=1 so Vulkan validation layers are on; TS_SOURCE_DIR and
# TS_BINARY_DIR (fixtures) are compiled in. In Release the test sources themselves are compiled at -O1 (the code
# they test keeps -O3): a LibTorch test unit compiles in 26 s instead of 44 s, and the work they time or
# check runs inside the engine's libraries.
include(GoogleTest)
function(ts_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS cpu)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main ts_warnings)
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${T_NAME} PRIVATE $<$<CONFIG:Release>:-O1>)
  # Under ASan + UBSan the test sources themselves get ASan only (the engine they test keeps both): UBSan's
  # checks cost 40 % of a LibTorch test unit's compile time (51 s against 31 s), and the checks that matter
  # are in the engine's code.
  if(TS_SANITIZE AND NOT TS_SANITIZE STREQUAL "thread")
    target_compile_options(${T_NAME} PRIVATE -fno-sanitize=undefined)
  endif()
  target_compile_definitions(${T_NAME} PRIVATE TS_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                                TS_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${T_NAME} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 120
                       PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} ENVIRONMENT "TS_VALIDATION=1"
                                  SKIP_RETURN_CODE 77)
endfunction()

# ts_use_torch_pch(target [SOURCES file ...]): the target's translation units (only the listed ones when
# given; the rest skip it) include the shared precompiled <torch/torch.h> of ts_torch_pch first instead of
# parsing LibTorch's headers each (about 40 % of such a unit's compile time). -Winvalid-pch (ts_warnings)
# says when GCC cannot use it.
function(ts_use_torch_pch target)
  if(NOT TARGET ts_torch_pch)
    return()
  endif()
  cmake_parse_arguments(P "" "" "SOURCES" ${ARGN})
  target_precompile_headers(${target} REUSE_FROM ts_torch_pch)
  if(P_SOURCES)
    get_target_property(all ${target} SOURCES)
    foreach(s IN LISTS all)
      if(NOT s IN_LIST P_SOURCES)
        set_source_files_properties(${s} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
      endif()
    endforeach()
  endif()
endfunction()
