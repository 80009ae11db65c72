# Compiles every src/backend/vulkan/shaders/*.comp into SPIR-V with glslc and embeds the words in
# one generated source (see embed_spirv.cmake), which defines the table backend/vulkan reads.
#
# A shader that needs variants lists them in a comment line of its own:
#   // variants: f32=W_F32 q4_0=W_Q4_0
# which builds <shader>_f32 with -DW_F32=1, <shader>_q4_0 with -DW_Q4_0=1, and so on. A shader
# without that line builds once, under its own name.
function(eight_vulkan_shaders target shader_dir)
  file(GLOB shaders CONFIGURE_DEPENDS ${shader_dir}/*.comp)
  set(out_dir ${CMAKE_BINARY_DIR}/generated/vulkan)
  file(MAKE_DIRECTORY ${out_dir})
  set(names "")
  set(spvs "")
  foreach(shader ${shaders})
    get_filename_component(base ${shader} NAME_WE)
    file(STRINGS ${shader} variant_lines REGEX "^// variants:")
    set(variants "")
    foreach(line ${variant_lines})
      string(REGEX REPLACE "^// variants:[ ]*" "" line "${line}")
      string(REPLACE " " ";" line "${line}")
      list(APPEND variants ${line})
    endforeach()
    if(NOT variants)
      set(variants "-")
    endif()
    foreach(v ${variants})
      if(v STREQUAL "-")
        set(name ${base})
        set(defines "")
      else()
        string(REGEX MATCH "^[^=]+" suffix "${v}")
        string(REGEX REPLACE "^[^=]+=" "" define "${v}")
        set(name ${base}_${suffix})
        set(defines -D${define}=1)
      endif()
      set(spv ${out_dir}/${name}.spv)
      add_custom_command(OUTPUT ${spv}
        COMMAND ${EIGHT_GLSLC} --target-env=vulkan1.2 -O -fshader-stage=compute ${defines}
                -I${shader_dir} -MD -MF ${spv}.d -o ${spv} ${shader}
        DEPENDS ${shader}
        DEPFILE ${spv}.d
        COMMENT "glslc ${name}"
        VERBATIM)
      list(APPEND names ${name})
      list(APPEND spvs ${spv})
    endforeach()
  endforeach()
  set(table ${out_dir}/shaders.cpp)
  string(REPLACE ";" "," names_arg "${names}")
  string(REPLACE ";" "," spvs_arg "${spvs}")
  add_custom_command(OUTPUT ${table}
    COMMAND ${CMAKE_COMMAND} -DNAMES=${names_arg} -DSPVS=${spvs_arg} -DOUT=${table}
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_spirv.cmake
    DEPENDS ${spvs} ${CMAKE_SOURCE_DIR}/cmake/embed_spirv.cmake
    COMMENT "embedding SPIR-V"
    VERBATIM)
  target_sources(${target} PRIVATE ${table})
endfunction()
