#include "switchyard/http/target.h"

#include "switchyard/common/ascii.h"

namespace switchyard::http {
namespace {

std::string_view strip_port(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    auto close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  auto colon = authority.rfind(':');
  return colon == std::string_view::npos ? authority : authority.substr(0, colon);
}

}  // namespace

RequestTarget parse_target(std::string_view target, std::string_view host_header) {
  RequestTarget t;
  if (!target.empty() && target.front() == '/') {
    t.authority = host_header;
    t.host = strip_port(host_header);
    t.path = target.substr(0, target.find('?'));
    t.origin = target;
    return t;
  }
  // absolute-form: scheme "://" authority [path] ["?" query]
  auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) {
    t.valid = target == "*";  // asterisk-form (OPTIONS *)
    t.authority = host_header;
    t.host = strip_port(host_header);
    t.path = target;
    t.origin = target;
    return t;
  }
  std::string_view scheme = target.substr(0, scheme_end);
  std::string_view rest = target.substr(scheme_end + 3);
  auto path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  // http(s) only; userinfo is an error (RFC 9110 §4.2.4), and an empty authority names nobody.
  t.valid = (iequals(scheme, "http") || iequals(scheme, "https")) && !authority.empty() &&
            authority.find('@') == std::string_view::npos;
  t.absolute = true;
  t.authority = authority;
  t.host = strip_port(authority);
  if (path_start == std::string_view::npos) {
    t.path = "/";
    t.origin = "/";
  } else if (rest[path_start] == '?') {
    t.path = "/";
    t.origin = rest.substr(path_start);
    t.origin_needs_slash = true;
  } else {
    std::string_view p = rest.substr(path_start);
    t.path = p.substr(0, p.find('?'));
    t.origin = p;
  }
  return t;
}

}  // namespace switchyard::http
