#pragma once
// The HTTP API (design.md §8) as control-socket operations: which operation
// and arguments a method, path and body ask for. jitgated checks the
// arguments and decides; this only translates.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

namespace jg::web {

using json = nlohmann::json;

inline constexpr std::size_t kMaxApiBodyBytes = 16 * 1024;
// Connections read at once (cpp-httplib's worker threads).
inline constexpr std::size_t kWorkers = 64;

struct ApiCall {
    std::string op;
    json args = json::object();
};
struct ApiError {
    int status = 400;
    std::string code;  // protocol.h code::
    std::string message;
};

struct ApiInput {
    std::string_view method;  // GET, POST
    std::string_view path;    // without the query
    const std::map<std::string, std::string>* query = nullptr;
    std::string_view body;  // JSON for POST; may be empty
    std::string client;     // the caller's address (peer.h), for "from_me"
};

std::variant<ApiCall, ApiError> route_api(const ApiInput& in);

// POST /api/v1/op, the CLI's way in (jitgate --web URL): the body is the
// socket's operation, {"op": NAME, "args": {...}}, and nothing else (the
// token comes from the Authorization header only). For op "request",
// "from_me": true becomes "from": the caller's address; "from" and
// "from_me" together are refused. A following audit stream is refused.
std::variant<ApiCall, ApiError> route_op(std::string_view body, const std::string& client);

// The HTTP status of a jitgated reply: 200 when ok, else by its error code
// (a refused token 401, forbidden or refused 403, and so on).
int status_for_reply(const json& reply);

}  // namespace jg::web
