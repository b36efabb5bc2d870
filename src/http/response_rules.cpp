#include "switchyard/http/response_rules.h"

#include "switchyard/common/ascii.h"

namespace switchyard::http {

ResponsePlan plan_response(ResponseHead& head, unsigned client_version, bool client_keep_alive) {
  ResponsePlan plan;
  const bool upgrade = head.status == 101;
  for (auto& field : head.fields.items) {
    switch (field.id) {
      case FieldId::kUpgrade:  // a 101's Upgrade says what the tunnel speaks
        field.drop = !upgrade;
        break;
      case FieldId::kContentLength:
        field.drop = head.has_body;  // information only on a body-less response
        break;
      case FieldId::kTrailer:
        field.drop = true;
        break;
      case FieldId::kEndpointLoadMetricsBin:
        field.drop = true;
        break;
      case FieldId::kEndpointLoadMetrics:
        if (plan.load_report.empty() && !plan.load_report_repeated) {
          plan.load_report = field.value;
        } else {
          plan.load_report_repeated = true;
        }
        field.drop = true;
        break;
      default:
        if (is_hop_by_hop(field.id)) field.drop = true;
        break;
    }
  }
  for (const auto& field : head.fields.items) {
    if (field.id != FieldId::kConnection) continue;
    std::string_view value = field.value;
    size_t tokens = 0;
    while (!value.empty() && tokens++ < 32) {
      auto comma = value.find(',');
      std::string_view token = trim_ows(value.substr(0, comma));
      value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
      if (token.empty() || iequals(token, "content-length") ||
          iequals(token, "transfer-encoding") || iequals(token, "host")) {
        continue;  // never lets a Connection header unframe the response
      }
      for (auto& other : head.fields.items) {
        if (other.name.size() == token.size() && iequals(other.name, token)) other.drop = true;
      }
    }
  }
  bool keep_alive = client_keep_alive;
  if (!head.has_body || upgrade) {
    plan.mode = http1::BodyMode::kNone;
  } else if (head.content_length && !head.chunked) {
    plan.mode = http1::BodyMode::kLength;
    plan.content_length = *head.content_length;
  } else if (client_version >= 11) {
    plan.mode = http1::BodyMode::kChunked;
  } else {
    plan.mode = http1::BodyMode::kUntilClose;  // HTTP/1.0 clients do not know chunked
    keep_alive = false;
  }
  plan.keep_alive = keep_alive && !upgrade;
  return plan;
}

std::optional<LoadReportField> load_report_of(const FieldList& fields) {
  std::optional<std::string_view> first;
  std::optional<std::string_view> first_bin;
  for (const auto& field : fields.items) {
    if (field.id == FieldId::kEndpointLoadMetricsBin) {
      if (!first_bin) first_bin = field.value;
      continue;
    }
    if (field.id != FieldId::kEndpointLoadMetrics) continue;
    if (first)
      return LoadReportField{*first};  // repeated: the first counts (an empty one as malformed)
    first = field.value;
  }
  if (first && !first->empty()) return LoadReportField{*first};
  if (first_bin && !first_bin->empty()) return LoadReportField{*first_bin, true};
  return std::nullopt;  // a lone empty header is no report
}

void drop_load_reports(FieldList& fields) {
  for (auto& f : fields.items) {
    if (f.id == FieldId::kEndpointLoadMetrics || f.id == FieldId::kEndpointLoadMetricsBin)
      f.drop = true;
  }
}

}  // namespace switchyard::http
