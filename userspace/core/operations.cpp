#include "core/operations.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/duration.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg {

namespace {

// list's page size: the default, and at most.
constexpr std::int64_t kListDefault = 100;
constexpr std::int64_t kListMax = 1000;
// audit's past records: at most.
constexpr std::int64_t kAuditLimitMax = 10000;

ParsedArgs invalid(std::string message) { return OpError{code::kInvalid, std::move(message)}; }

// Free text a user gives (a reason, a ticket) reaches approvers' and
// auditors' terminals: one line of printable UTF-8 at most `max` bytes long,
// or the refusal.
std::optional<OpError> free_text_refusal(std::string_view field, const std::string& text, std::size_t max) {
    if (text.size() > max)
        return OpError{code::kInvalid,
                       fmt::format("the {} must be one line of at most {} bytes", field, max)};
    if (auto why = text_refusal(field, text)) return OpError{code::kRefused, *why};
    return std::nullopt;
}

// What request and break-glass both ask for, each checked: port, protocol,
// duration and reason.
std::variant<AskArgs, OpError> parse_ask(const json& a) {
    AskArgs ask;
    const std::int64_t port = a.at("port").get<std::int64_t>();
    if (port < 1 || port > 65535) return OpError{code::kInvalid, "port must be from 1 to 65535"};
    auto proto = parse_proto(a.at("proto").get<std::string>());
    if (!proto) return OpError{code::kInvalid, proto.error()};
    ask.duration_s = a.at("duration_s").get<std::int64_t>();
    if (ask.duration_s <= 0 || ask.duration_s > kMaxDurationSeconds)
        return OpError{code::kInvalid, "the duration must be longer than zero and at most a year"};
    ask.reason = a.value("reason", "");
    if (auto refused = free_text_refusal("reason", ask.reason, kMaxReasonBytes)) return *refused;
    ask.port = static_cast<std::uint16_t>(port);
    ask.proto = *proto;
    return ask;
}

ParsedArgs parse_request_args(const json& a) {
    RequestArgs r;
    auto ask = parse_ask(a);
    if (auto* e = std::get_if<OpError>(&ask)) return *e;
    r.ask = std::get<AskArgs>(ask);
    r.ticket = a.value("ticket", "");
    if (auto refused = free_text_refusal("ticket", r.ticket, kMaxTicketBytes)) return *refused;
    if (auto f = a.find("from"); f != a.end()) {
        auto net = parse_source(f->get<std::string>());
        if (!net) return invalid(net.error());
        r.from = *net;
    }
    if (auto on = a.find("on"); on != a.end()) {
        auto sel = parse_selector(on->get<std::string>());
        if (!sel) return invalid(sel.error());
        r.on = *sel;
    }
    return r;
}

ParsedArgs parse_break_glass_args(const json& a) {
    auto ask = parse_ask(a);
    if (auto* e = std::get_if<OpError>(&ask)) return *e;
    BreakGlassArgs b{std::get<AskArgs>(ask), std::nullopt};
    if (b.ask.reason.find_first_not_of(' ') == std::string::npos)
        return invalid("break-glass needs a reason (--reason TEXT): it is reviewed after the fact");
    if (auto on = a.find("on"); on != a.end()) {
        auto sel = parse_selector(on->get<std::string>());
        if (!sel) return invalid(sel.error());
        b.on = *sel;
    }
    return b;
}

std::int64_t id_of(const json& a) { return a.at("id").get<std::int64_t>(); }

ParsedArgs parse_approve_args(const json& a) {
    ApproveArgs r{id_of(a), std::nullopt};
    if (auto d = a.find("duration_s"); d != a.end()) r.duration_s = d->get<std::int64_t>();
    return r;
}

ParsedArgs parse_deny_args(const json& a) {
    DenyArgs r{id_of(a), a.value("reason", "")};
    if (auto refused = free_text_refusal("reason", r.reason, kMaxReasonBytes)) return *refused;
    return r;
}

ParsedArgs parse_list_args(const json& a) {
    ListArgs r;
    r.filter = a.value("filter", "default");
    if (r.filter != "pending" && r.filter != "active" && r.filter != "all" && r.filter != "default")
        return invalid("list filter must be pending, active or all");
    r.limit = a.value("limit", kListDefault);
    if (r.limit < 1 || r.limit > kListMax)
        return invalid(fmt::format("list --limit must be from 1 to {}", kListMax));
    r.after = a.value("after", std::int64_t(0));
    if (r.after < 0) return invalid("list --after must be an id (a positive number)");
    return r;
}

ParsedArgs parse_audit_args(const json& a) {
    auto filter = audit_filter_from_args(a);
    if (!filter) return invalid(filter.error());
    AuditArgs r{*filter, a.value("follow", false), 0, std::nullopt};
    r.limit = r.follow && !r.filter.since_us ? 0 : 50;
    if (auto l = a.find("limit"); l != a.end()) {
        r.limit = l->get<std::int64_t>();
        if (r.limit < 0 || r.limit > kAuditLimitMax) return invalid("limit must be 0-10000");
    }
    if (auto s = a.find("after_seq"); s != a.end()) {
        const std::int64_t after = s->get<std::int64_t>();
        if (after < 0) return invalid("after_seq must be a record's seq (0 or more)");
        r.after_seq = std::uint64_t(after);
        if (!a.contains("limit")) r.limit = 1000;
        if (r.limit < 1) return invalid("with after_seq, limit is 1-10000");
        if (r.filter.since_us) return invalid("give after_seq or since, not both");
    }
    return r;
}

// notify_failed's texts reach auditors' terminals and the status.
constexpr std::size_t kNotifyTargetMax = 64;
constexpr std::size_t kNotifyUrlMax = 300;
constexpr std::size_t kNotifyErrorMax = 300;

// Only scheme://host[:port]: no user, password, path or query (where a
// webhook's secret would be).
bool bare_origin(const std::string& url) {
    std::string_view rest = url;
    if (rest.rfind("https://", 0) == 0)
        rest.remove_prefix(8);
    else if (rest.rfind("http://", 0) == 0)
        rest.remove_prefix(7);
    else
        return false;
    if (rest.empty()) return false;
    return std::all_of(rest.begin(), rest.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' ||
               c == ']';
    });
}

ParsedArgs parse_notify_failed_args(const json& a) {
    NotifyFailedArgs r{a.at("target").get<std::string>(), a.at("url").get<std::string>(),
                       a.at("error").get<std::string>(), a.value("failing_s", std::int64_t(0)),
                       a.value("pending_seq", std::int64_t(0))};
    if (r.target.empty()) return invalid("notify_failed needs the target's name");
    if (auto refused = free_text_refusal("target", r.target, kNotifyTargetMax)) return *refused;
    if (r.url.size() > kNotifyUrlMax || !bare_origin(r.url))
        return invalid(
            "notify_failed's url must be only scheme://host[:port] (no credentials, path or query: a "
            "webhook's path may hold its secret)");
    if (auto refused = free_text_refusal("error", r.error, kNotifyErrorMax)) return *refused;
    if (r.failing_s < 0 || r.pending_seq < 0)
        return invalid("notify_failed's failing_s and pending_seq are 0 or more");
    return r;
}

// A fleet policy file is at most this long (it travels in one control line
// and one etcd value).
constexpr std::size_t kPolicyTextMax = 48 * 1024;

ParsedArgs parse_policy_push_args(const json& a) {
    PolicyPushArgs r{a.at("text").get<std::string>(), a.value("file", "policy")};
    if (r.text.size() > kPolicyTextMax)
        return invalid(fmt::format("a fleet policy file must be at most {} KiB", kPolicyTextMax / 1024));
    if (auto refused = free_text_refusal("file name", r.file, 4096)) return *refused;
    return r;
}

ParsedArgs parse_extend_args(const json& a) {
    ExtendArgs r{id_of(a), a.at("duration_s").get<std::int64_t>(), a.value("reason", "")};
    if (r.id <= 0) return invalid("the id must be a grant id or the id of the request that led to it");
    if (r.duration_s <= 0 || r.duration_s > kMaxDurationSeconds)
        return invalid("the duration must be longer than zero and at most a year");
    if (auto refused = free_text_refusal("reason", r.reason, kMaxReasonBytes)) return *refused;
    return r;
}

using T = ArgType;

}  // namespace

const std::vector<Operation>& operations() {
    static const std::vector<Operation> ops = {
        {Op::Request,
         "request",
         {{"port", T::Int, true},
          {"proto", T::Str, true},
          {"duration_s", T::Int, true},
          {"reason", T::Str, false},
          {"ticket", T::Str, false},
          {"from", T::Str, false},
          {"on", T::Str, false}},
         parse_request_args},
        {Op::Approve, "approve", {{"id", T::Int, true}, {"duration_s", T::Int, false}}, parse_approve_args},
        {Op::Deny, "deny", {{"id", T::Int, true}, {"reason", T::Str, false}}, parse_deny_args},
        {Op::Revoke,
         "revoke",
         {{"id", T::Int, true}},
         [](const json& a) -> ParsedArgs { return RevokeArgs{id_of(a)}; }},
        {Op::List,
         "list",
         {{"filter", T::Str, false}, {"limit", T::Int, false}, {"after", T::Int, false}},
         parse_list_args},
        {Op::BreakGlass,
         "break_glass",
         {{"port", T::Int, true},
          {"proto", T::Str, true},
          {"duration_s", T::Int, true},
          {"reason", T::Str, true},
          {"on", T::Str, false}},
         parse_break_glass_args},
        {Op::Show,
         "show",
         {{"id", T::Int, true}},
         [](const json& a) -> ParsedArgs { return ShowArgs{id_of(a)}; }},
        {Op::Status, "status", {}, [](const json&) -> ParsedArgs { return StatusArgs{}; }},
        {Op::Metrics, "metrics", {}, [](const json&) -> ParsedArgs { return MetricsArgs{}; }},
        {Op::Audit,
         "audit",
         {{"follow", T::Bool, false},
          {"since_us", T::Int, false},
          {"types", T::StrList, false},
          {"port", T::Int, false},
          {"user", T::Str, false},
          {"limit", T::Int, false},
          {"after_seq", T::Int, false}},
         parse_audit_args},
        {Op::Confirm,
         "confirm",
         {{"id", T::Int, true}, {"revision", T::Int, true}},
         [](const json& a) -> ParsedArgs {
             return ConfirmArgs{id_of(a), a.at("revision").get<std::int64_t>()};
         }},
        {Op::Nodes, "nodes", {}, [](const json&) -> ParsedArgs { return NodesArgs{}; }},
        {Op::PolicyPush,
         "policy_push",
         {{"text", T::Str, true}, {"file", T::Str, false}},
         parse_policy_push_args},
        {Op::PolicyShow, "policy_show", {}, [](const json&) -> ParsedArgs { return PolicyShowArgs{}; }},
        {Op::Extend,
         "extend",
         {{"id", T::Int, true}, {"duration_s", T::Int, true}, {"reason", T::Str, false}},
         parse_extend_args},
        {Op::NotifyFailed,
         "notify_failed",
         {{"target", T::Str, true},
          {"url", T::Str, true},
          {"error", T::Str, true},
          {"failing_s", T::Int, false},
          {"pending_seq", T::Int, false}},
         parse_notify_failed_args},
        {Op::AuditFleet, "audit_fleet", {}, [](const json&) -> ParsedArgs { return AuditFleetArgs{}; }},
    };
    return ops;
}

const Operation* find_operation(std::string_view name) {
    const auto& ops = operations();
    auto it = std::find_if(ops.begin(), ops.end(), [&](const Operation& o) { return o.name == name; });
    return it == ops.end() ? nullptr : &*it;
}

const Operation& operation(Op op) {
    const auto& ops = operations();
    return *std::find_if(ops.begin(), ops.end(), [&](const Operation& o) { return o.op == op; });
}

}  // namespace jg
