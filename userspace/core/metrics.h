#pragma once
// Metrics in the Prometheus text exposition format (version 0.0.4), from a
// structured form that is also `jitgate metrics --json`:
//   {"metrics": [{"name": "jitgate_grants_active", "type": "gauge",
//                 "help": "...", "samples": [{"labels": {"port": "5432"},
//                 "value": 1}]}]}
// and the local address the daemon serves them on.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/keys.h"
#include "core/result.h"

namespace jg {

// Builds the structured form, one family at a time.
class MetricsBuilder {
public:
    // Starts a family; its samples follow.  type: "counter" or "gauge".
    MetricsBuilder& family(std::string name, std::string type, std::string help);
    MetricsBuilder& sample(double value, nlohmann::json labels = nlohmann::json::object());
    const nlohmann::json& result() const { return out_; }

private:
    nlohmann::json out_ = {{"metrics", nlohmann::json::array()}};
};

// The text exposition of the structured form: # HELP and # TYPE, then one
// line per sample; label values escaped (\\, \", \n).  Families or samples
// that are not well formed are left out.
std::string render_prometheus(const nlohmann::json& metrics);

// HTTP metrics address: "127.0.0.1:9464" or "[::1]:9464".  Only loopback
// addresses are accepted: the metrics name protected ports, and nothing on
// the endpoint authenticates the reader.
struct MetricsAddress {
    Addr16 addr{};
    std::uint16_t port = 0;
    bool v4 = true;
};
Result<MetricsAddress> parse_metrics_address(std::string_view text);

// The whole HTTP/1.1 response to one request head (without its blank line):
// 200 with body() for GET or HEAD /metrics (a query string is ignored);
// 404 for another path, 405 for another method, 400 when it is not HTTP/1.x.
// Every response closes the connection.
// `body` failing (the state store could not be read) answers 500 with its sentence.
std::string metrics_http_response(const std::string& head, const std::function<Result<std::string>()>& body);
// 431: a request head longer than the server reads.
std::string metrics_http_too_large();

}  // namespace jg
