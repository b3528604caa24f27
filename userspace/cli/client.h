#pragma once
// Talking to jitgated over the control socket: one request and its reply, or
// one request and a stream of reply lines (audit).
#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/result.h"

namespace jg {

// Makes the signals named set the returned flag instead of ending the CLI
// (no SA_RESTART: a blocked poll, read or write returns), so that a long
// command (audit --follow, request --wait) can stop cleanly.
const std::atomic<bool>& stop_on_signals(std::initializer_list<int> signals);

// Where operations go: jitgated's control socket, or, with `web` set
// (jitgate --web URL), jitgate-web's HTTP API with the token of `jitgate
// login URL` (cli/web_transport.h). A socket path converts to one.
struct Endpoint {
    Endpoint(std::string socket_path) : socket(std::move(socket_path)) {}
    Endpoint(const char* socket_path) : socket(socket_path) {}
    Endpoint(std::string socket_path, std::string web_url)
        : socket(std::move(socket_path)), web(std::move(web_url)) {}
    std::string socket;
    std::string web;  // a jitgate-web base URL; empty: the socket
};

// Err when the daemon cannot be reached (the CLI's exit code 4) or does not
// reply within reply_timeout_ms; otherwise the daemon's reply object, ok or not.
Result<nlohmann::json> call_daemon(const Endpoint& to, const std::string& op, const nlohmann::json& args,
                                   int reply_timeout_ms = 30000);

// How a stream ended.
enum StreamEnd : int {
    kStreamStopped = 0,      // on_line returned false
    kStreamClosed = 1,       // jitgated closed the connection
    kStreamInterrupted = 2,  // *stop became true
};

// The longest reply line accepted.
inline constexpr std::size_t kMaxReplyLineBytes = 4 * 1024 * 1024;

// Sends one request and hands each reply line (a JSON object) to on_line
// until it returns false, the daemon closes the connection, or *stop is set
// (checked at least every 200 ms; set it from a signal handler). Until the
// first line holding "result" or "error", each wait is limited to 30
// seconds; after it the stream may stay quiet for ever (a follower).
// Err when the daemon cannot be reached, or sends a line that is not a JSON
// object or is longer than kMaxReplyLineBytes. Over jitgate-web the stream
// is the one reply's lines, then kStreamClosed (no follower: *stop unused).
Result<int> stream_daemon(const Endpoint& to, const std::string& op, const nlohmann::json& args,
                          const std::function<bool(const nlohmann::json& line)>& on_line,
                          const std::atomic<bool>* stop = nullptr);

}  // namespace jg
