#include "notify/payload.h"

#include <fmt/format.h>

#include "core/clock.h"
#include "core/duration.h"
#include "core/text.h"

namespace jg::notify {

namespace {

std::string text_of(const json& r, const char* key) {
    auto it = r.find(key);
    if (it == r.end() || it->is_null()) return {};
    if (it->is_string()) return it->get<std::string>();
    if (it->is_array()) {
        std::string out;
        for (const auto& e : *it)
            out += (out.empty() ? "" : ", ") + (e.is_string() ? e.get<std::string>() : e.dump());
        return out;
    }
    return it->dump();
}

// What happened, in a few words, for the message's first line.
std::string headline(const json& r) {
    const std::string type = text_of(r, "type");
    const std::string who = text_of(r, "requester").empty() ? text_of(r, "user") : text_of(r, "requester");
    const std::string port = text_of(r, "port");
    const std::string where = port.empty() ? "" : fmt::format(" port {}/{}", port, text_of(r, "proto"));
    if (type == "request")
        return fmt::format("{} asks for{} (request {})", who, where, text_of(r, "request_id"));
    if (type == "approve")
        return fmt::format("{} approved request {}", text_of(r, "user"), text_of(r, "request_id"));
    if (type == "reject") return fmt::format("request {} was rejected", text_of(r, "request_id"));
    if (type == "grant")
        return fmt::format("{} was granted{} (grant {})", who, where, text_of(r, "grant_id"));
    if (type == "expire")
        return fmt::format("{}{} expired", r.contains("grant_id") ? "grant " : "request ",
                           text_of(r, r.contains("grant_id") ? "grant_id" : "request_id"));
    if (type == "revoke") return fmt::format("grant {} was revoked", text_of(r, "grant_id"));
    if (type == "expiry_warning") return fmt::format("grant {} of {} ends soon", text_of(r, "grant_id"), who);
    if (type == "break_glass") return fmt::format("BREAK-GLASS: {} opened{} without approval", who, where);
    return fmt::format("jitgate: {}", type);
}

// "12m left", from the record's expires_at and now; "" when it has none.
std::string time_left(const json& r, std::int64_t now_us) {
    const std::string at = text_of(r, "expires_at");
    if (at.empty()) return {};
    auto us = parse_rfc3339_us(at);
    if (!us) return {};
    const std::int64_t left = (*us - now_us) / 1000000;
    return left > 0 ? format_duration(left) + " left" : "ended";
}

}  // namespace

std::string slack_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '&')
            out += "&amp;";
        else if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else
            out += c;
    }
    return out;
}

std::string slack_clip(std::string escaped, std::size_t max_bytes) {
    if (escaped.size() <= max_bytes) return escaped;
    const std::string_view kMore = "\u2026";  // …
    std::size_t cut = max_bytes > kMore.size() ? max_bytes - kMore.size() : 0;
    // Not inside a UTF-8 sequence, nor inside an entity slack_escape wrote.
    while (cut > 0 && (static_cast<unsigned char>(escaped[cut]) & 0xC0) == 0x80) --cut;
    if (auto amp = escaped.rfind('&', cut == 0 ? 0 : cut - 1);
        amp != std::string::npos && cut - amp < 5 && escaped.find(';', amp) >= cut)
        cut = amp;
    escaped.resize(cut);
    return escaped + std::string(kMore);
}

std::string web_link(const json& r, const std::string& web_url) {
    if (web_url.empty()) return {};
    if (auto g = r.find("grant_id"); g != r.end() && g->is_number_integer())
        return fmt::format("{}/grants#grant-{}", web_url, g->get<std::int64_t>());
    if (auto q = r.find("request_id"); q != r.end() && q->is_number_integer())
        return fmt::format("{}/requests#request-{}", web_url, q->get<std::int64_t>());
    return web_url + "/";
}

json json_payload(const json& record, const std::string& web_url) {
    json out = record;
    if (const std::string link = web_link(record, web_url); !link.empty()) out["links"] = {{"web", link}};
    return out;
}

json slack_payload(const json& r, const std::string& web_url, std::int64_t now_us) {
    const std::string head = headline(r);
    json fields = json::array();
    auto field = [&](const char* label, const std::string& value) {
        if (!value.empty())
            fields.push_back({{"type", "mrkdwn"},
                              {"text", fmt::format("*{}:*\n{}", label,
                                                   slack_clip(slack_escape(value), kSlackFieldBytes))}});
    };
    field("Requester", text_of(r, "requester").empty() ? text_of(r, "user") : text_of(r, "requester"));
    if (r.contains("port")) field("Port", fmt::format("{}/{}", text_of(r, "port"), text_of(r, "proto")));
    field("Nodes", text_of(r, "on").empty() ? text_of(r, "node") : text_of(r, "on"));
    field("Reason", text_of(r, "reason"));
    field("Ticket", text_of(r, "ticket"));
    if (auto d = r.find("duration_s"); d != r.end() && d->is_number_integer())
        field("Duration", format_duration(d->get<std::int64_t>()));
    field("Time left", time_left(r, now_us));
    json blocks = json::array();
    blocks.push_back({{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", slack_escape(head)}}}});
    if (!fields.empty()) blocks.push_back({{"type", "section"}, {"fields", fields}});
    std::string text = slack_escape(head);
    if (const std::string link = web_link(r, web_url); !link.empty()) {
        // The link's address is ours; its label is fixed text.
        const std::string label = text_of(r, "type") == "request" ? "Approve or deny" : "Open in jitgate";
        const std::string anchor = fmt::format("<{}|{}>", slack_escape(link), label);
        blocks.push_back({{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", anchor}}}});
        text += " " + anchor;
    }
    blocks.push_back({{"type", "context"},
                      {"elements", json::array({{{"type", "mrkdwn"},
                                                 {"text", fmt::format("seq {} · {}", text_of(r, "seq"),
                                                                      slack_escape(text_of(r, "ts")))}}})}});
    return {{"text", text}, {"blocks", blocks}};
}

}  // namespace jg::notify
