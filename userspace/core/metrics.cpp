#include "core/metrics.h"

#include <fmt/format.h>

#include <cmath>

namespace jg {

using nlohmann::json;

MetricsBuilder& MetricsBuilder::family(std::string name, std::string type, std::string help) {
    out_["metrics"].push_back({{"name", std::move(name)},
                               {"type", std::move(type)},
                               {"help", std::move(help)},
                               {"samples", json::array()}});
    return *this;
}

MetricsBuilder& MetricsBuilder::sample(double value, json labels) {
    out_["metrics"].back()["samples"].push_back({{"labels", std::move(labels)}, {"value", value}});
    return *this;
}

namespace {

bool valid_name(const std::string& n, bool label) {
    if (n.empty()) return false;
    for (std::size_t i = 0; i < n.size(); ++i) {
        const char c = n[i];
        const bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return !(label && n.rfind("__", 0) == 0);
}

// HELP text escapes \ and newline; label values also ".
std::string escape(const std::string& s, bool quote) {
    std::string out;
    for (char c : s) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quote)
            out += "\\\"";
        else
            out += c;
    }
    return out;
}

std::string number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) return fmt::format("{}", std::int64_t(v));
    return fmt::format("{}", v);
}

std::string response(int status, const char* reason, const std::string& type, const std::string& body,
                     bool head_only = false, const char* extra = "") {
    return fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}", status,
        reason, type, body.size(), extra, head_only ? std::string() : body);
}

}  // namespace

std::string metrics_http_response(const std::string& head, const std::function<Result<std::string>()>& body) {
    const std::string line = head.substr(0, head.find("\r\n"));
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
    const std::string version = sp2 == std::string::npos ? std::string() : line.substr(sp2 + 1);
    if (version != "HTTP/1.0" && version != "HTTP/1.1")
        return response(400, "Bad Request", "text/plain; charset=utf-8", "bad request\n");
    const std::string method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string path = target.substr(0, target.find('?'));
    if (method != "GET" && method != "HEAD")
        return response(405, "Method Not Allowed", "text/plain; charset=utf-8", "only GET\n", false,
                        "Allow: GET, HEAD\r\n");
    if (path != "/metrics")
        return response(404, "Not Found", "text/plain; charset=utf-8", "jitgated serves /metrics only\n",
                        method == "HEAD");
    const auto text = body();
    if (!text)
        return response(500, "Internal Server Error", "text/plain; charset=utf-8", text.error() + "\n",
                        method == "HEAD");
    return response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", *text, method == "HEAD");
}

std::string metrics_http_too_large() {
    return response(431, "Request Header Fields Too Large", "text/plain; charset=utf-8",
                    "request too large\n");
}

std::string render_prometheus(const json& m) {
    std::string out;
    if (!m.is_object() || !m.contains("metrics") || !m["metrics"].is_array()) return out;
    for (const auto& f : m["metrics"]) {
        if (!f.is_object()) continue;
        const std::string name = f.value("name", ""), type = f.value("type", "");
        if (!valid_name(name, false) || (type != "counter" && type != "gauge")) continue;
        out +=
            fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape(f.value("help", ""), false), name, type);
        if (!f.contains("samples") || !f["samples"].is_array()) continue;
        for (const auto& s : f["samples"]) {
            if (!s.is_object() || !s.contains("value") || !s["value"].is_number()) continue;
            std::string labels;
            if (s.contains("labels") && s["labels"].is_object())
                for (const auto& [k, v] : s["labels"].items()) {
                    if (!valid_name(k, true)) continue;
                    const std::string text = v.is_string() ? v.get<std::string>() : v.dump();
                    labels += fmt::format("{}{}=\"{}\"", labels.empty() ? "" : ",", k, escape(text, true));
                }
            out += labels.empty() ? name : fmt::format("{}{{{}}}", name, labels);
            out += " " + number(s["value"].get<double>()) + "\n";
        }
    }
    return out;
}

Result<MetricsAddress> parse_metrics_address(std::string_view text) {
    const auto usage = [&](const std::string& why) {
        return err(
            fmt::format("metrics address '{}': {}; write it as 127.0.0.1:9464 or [::1]:9464", text, why));
    };
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return usage("no port");
    std::string_view host = text.substr(0, colon);
    const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) host = host.substr(1, host.size() - 2);
    if (!bracketed && host.find(':') != std::string_view::npos)
        return usage("put an IPv6 address in brackets");
    auto port = parse_port(text.substr(colon + 1));
    if (!port) return usage("the port is not a number from 1 to 65535");
    auto addr = parse_addr(host);
    if (!addr) return usage("not an IP address (names are not looked up)");
    MetricsAddress m;
    m.addr = *addr;
    m.port = *port;
    m.v4 = is_v4_mapped(*addr);
    if (bracketed == m.v4)
        return usage(m.v4 ? "an IPv4 address goes without brackets" : "put an IPv6 address in brackets");
    const Addr16 v6_loopback = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const bool loopback = m.v4 ? (*addr)[12] == 127 : *addr == v6_loopback;
    if (!loopback)
        return err(fmt::format(
            "metrics address '{}' is not a loopback address (127.0.0.0/8 or ::1): the metrics name protected "
            "ports and nothing authenticates a scraper; serve them on loopback and let a local agent or a "
            "proxy with TLS and authentication forward them",
            text));
    return m;
}

}  // namespace jg
