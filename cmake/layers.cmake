# A layer with no sources yet still needs one translation unit to be a static library.
macro(eight_nonempty var name)
  if(NOT ${var})
    set(_empty ${CMAKE_BINARY_DIR}/empty/${name}.cpp)
    file(WRITE ${_empty} "// ${name} has no sources yet\n")
    set(${var} ${_empty})
  endif()
endmacro()

# eight_layer(NAME DIR [DEPS ...]): a static library from every .cpp under src/DIR (globbed, so a
# new file needs no CMake edit), linking only the named lower layers.
function(eight_layer name dir)
  cmake_parse_arguments(L "" "" "DEPS;SYSTEM_DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${dir}/*.cpp)
  eight_nonempty(srcs ${name})
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${EIGHT_WARNINGS})
  target_link_libraries(${name} PUBLIC ${L_DEPS} ${L_SYSTEM_DEPS})
endfunction()

# eight_isa_sources(TARGET FILE...): compile each FILE once per CPU ISA (generic, avx2, avx2vnni,
# avx512)
# into TARGET, with EIGHT_ISA_NAMESPACE set so each copy's symbols live in their own namespace.
# The run-time dispatcher (backend/cpu/dispatch.cpp) picks one set from cpuid.
set(EIGHT_ISA_FLAGS_generic "")
set(EIGHT_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c -mbmi2)
# avx2vnni is the avx2 build plus AVX-VNNI: it defines EIGHT_ISA_avx2 too and differs only where
# code asks for EIGHT_ISA_avx2vnni (the batched int8 matmul).
set(EIGHT_ISA_FLAGS_avx2vnni -mavx2 -mfma -mf16c -mbmi2 -mavxvnni)
set(EIGHT_ISA_DEFS_avx2vnni EIGHT_ISA_avx2=1)
set(EIGHT_ISA_FLAGS_avx512 -mavx2 -mfma -mf16c -mbmi2 -mavx512f -mavx512bw -mavx512dq -mavx512vl
    -mavx512vnni -mavx512bf16 -mavx512vbmi)
function(eight_isa_sources target)
  foreach(isa generic avx2 avx2vnni avx512)
    set(objlib ${target}_isa_${isa})
    add_library(${objlib} OBJECT ${ARGN})
    target_include_directories(${objlib} PRIVATE ${CMAKE_SOURCE_DIR}/src)
    target_compile_options(${objlib} PRIVATE ${EIGHT_WARNINGS} ${EIGHT_ISA_FLAGS_${isa}})
    target_compile_definitions(${objlib} PRIVATE EIGHT_ISA_NAMESPACE=isa_${isa} EIGHT_ISA_${isa}=1
                               ${EIGHT_ISA_DEFS_${isa}})
    target_link_libraries(${objlib} PRIVATE nlohmann_json::nlohmann_json)
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:${objlib}>)
  endforeach()
endfunction()
