#pragma once
// What a target receives for one audit record (design.md §9): the record
// itself plus links (format "json"), or a Slack incoming-webhook message
// (format "slack", which Mattermost and other Slack-compatible receivers
// read too).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace jg::notify {

using json = nlohmann::json;

// Slack's escaping of text it shows: & < > as entities (a user's "<!here>"
// or "<http://x|label>" stays text, never a mention or a link).
std::string slack_escape(std::string_view text);
// Slack refuses a message whose section field holds more than 2000
// characters (HTTP 400, invalid_blocks), and escaping makes a 1024-byte
// reason up to 5 KiB: each field's text is cut to this many bytes.
inline constexpr std::size_t kSlackFieldBytes = 1900;
// `escaped` (slack_escape's) cut to max_bytes, "…" included, never inside a
// UTF-8 sequence or an entity; unchanged when it fits.
std::string slack_clip(std::string escaped, std::size_t max_bytes);

// The approval page's address for the record: its request or grant, when
// web_url is set; "" otherwise.
std::string web_link(const json& record, const std::string& web_url);

// The record plus "links": {"web": URL} when the page is configured.
json json_payload(const json& record, const std::string& web_url);
// {"text": ..., "blocks": [...]}: what happened, requester, port, nodes,
// reason, ticket, duration, time left (at now_us), and the page's link.
json slack_payload(const json& record, const std::string& web_url, std::int64_t now_us);

}  // namespace jg::notify
