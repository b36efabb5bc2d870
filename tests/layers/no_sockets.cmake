# The http module is HTTP without I/O: none of its files may name a socket, an event loop or
# a timer (Beast's parser and Asio's buffer types are allowed).
file(GLOB_RECURSE files ${SOURCE_DIR}/src/http/* ${SOURCE_DIR}/include/switchyard/http/*)
foreach(f ${files})
  file(STRINGS ${f} lines REGEX "#include.*(asio/ip|asio/io_context|socket|steady_timer|asio/ssl|asio\\.hpp)|io_context|basic_stream_socket|tcp::socket")
  if(lines)
    message(FATAL_ERROR "${f} does I/O, which the http module must not:\n${lines}")
  endif()
endforeach()
list(LENGTH files n)
message(STATUS "http: ${n} files, no sockets")
