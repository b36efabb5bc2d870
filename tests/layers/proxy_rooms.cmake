# The proxy's rooms (README, "The proxy's rooms") include only rooms below them, bottom up:
# io/ and worker/, h2/, upstream/, downstream/, listener/. The worker knows the rooms above
# only through its Listening and WorkerPart interfaces; the server (top of src/proxy) wires
# them together.
function(check_room room)
  file(GLOB_RECURSE files ${SOURCE_DIR}/src/proxy/${room}/*)
  foreach(f ${files})
    foreach(above ${ARGN})
      file(STRINGS ${f} lines REGEX "#include \"${above}/")
      if(lines)
        message(FATAL_ERROR "${f} (${room}/) includes ${above}/, a room above it:\n${lines}")
      endif()
    endforeach()
  endforeach()
  list(LENGTH files n)
  message(STATUS "${room}/: ${n} files, nothing from ${ARGN}")
endfunction()

check_room(io worker h2 upstream downstream listener)
check_room(worker h2 upstream downstream listener)
check_room(h2 upstream downstream listener)
check_room(upstream downstream listener)
check_room(downstream listener)
