// The one translation unit that compiles Asio and Beast (separate compilation): every other
// file sees only their declarations, which keeps each rebuild of a Beast user short.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
