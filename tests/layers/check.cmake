# Builds each probe target; "ok_*" probes must compile, "bad_*" probes must fail because the
# header is not on the module's include path (not for any other reason).
foreach(probe ${PROBES})
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${probe}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(probe MATCHES "^layer_ok_")
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${probe}: an allowed include did not compile:\n${out}${err}")
    endif()
  elseif(rc EQUAL 0)
    message(FATAL_ERROR "${probe}: a wrong-way include compiled")
  elseif(NOT "${out}${err}" MATCHES "No such file or directory")
    message(FATAL_ERROR "${probe}: failed for another reason:\n${out}${err}")
  endif()
  message(STATUS "${probe}: as expected")
endforeach()
