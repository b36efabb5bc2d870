#pragma once

// What switchyard changes in an endpoint's response head before a client sees it. Pure.

#include <optional>
#include <string_view>

#include "switchyard/http/http1_writer.h"
#include "switchyard/http/message.h"

namespace switchyard::http {

struct ResponsePlan {
  http1::BodyMode mode = http1::BodyMode::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;        // the client connection stays open after this response
  std::string_view load_report;  // the first endpoint-load-metrics value, or empty
  bool load_report_repeated = false;
};

// Marks what is not forwarded: hop-by-hop fields and those Connection names (except framing
// fields and Host: a Connection header never changes how a message is delimited), the framing
// fields themselves (the writer sets them from the plan), and every endpoint-load-metrics field
// (it is for the proxy). Decides the client-side framing: Content-Length as received; chunked
// or close-delimited bodies are chunked for HTTP/1.1 clients and close-delimited for HTTP/1.0
// ones. A response without a body (HEAD, 204, 304) keeps its Content-Length as information.
ResponsePlan plan_response(ResponseHead& head, unsigned client_version, bool client_keep_alive);

// The load-report intake: the first endpoint-load-metrics value of a response head or trailer
// block, if it has one (a repeat is ignored; plan_response drops every copy from what the
// client sees), else the first endpoint-load-metrics-bin (gRPC's ORCA per-call form).
struct LoadReportField {
  std::string_view value;
  bool binary = false;
};
std::optional<LoadReportField> load_report_of(const FieldList& fields);
// Drops the load-report fields of a trailer block (they are for the proxy).
void drop_load_reports(FieldList& fields);

}  // namespace switchyard::http
