# archipel_embed(TARGET NAME FILE): compiles FILE's text into TARGET as
# `extern const char archipel::embedded::NAME[]`, rebuilt when the file changes.
function(archipel_embed target name file)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
  file(READ ${file} text)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded/${name}.cpp)
  file(CONFIGURE OUTPUT ${out} CONTENT
       "// Generated from ${file} by cmake/embed.cmake.\nnamespace archipel::embedded {\nextern const char ${name}[];\nconst char ${name}[] = R\"__archipel__(${text})__archipel__\";\n}  // namespace archipel::embedded\n"
       @ONLY)
  target_sources(${target} PRIVATE ${out})
endfunction()
