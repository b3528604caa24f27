#include "notify/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/audit_query.h"
#include "core/toml_checker.h"
#include "core/url.h"
#include "notify/signature.h"

namespace jg::notify {

namespace {

using policy_detail::Checker;

// https, or http to this host only (tests, a local relay): a webhook's
// body names users and reasons.
std::string url_refusal(const std::string& url) {
    const bool https = url.rfind("https://", 0) == 0;
    const bool http = url.rfind("http://", 0) == 0;
    if (!https && !http) return "must start with https://";
    const std::string authority =
        url.substr(https ? 8 : 7, url.find_first_of("/?#", https ? 8 : 7) - (https ? 8 : 7));
    if (authority.find('@') != std::string::npos)
        return "must not hold a user or password (put the secret in secret_file)";
    if (authority.empty()) return "has no host";
    for (char c : url)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return "must not hold spaces or control characters";
    if (http) {
        if (!is_loopback_host(url_host(url)))
            return "must be https:// (http:// only to an address in 127.0.0.0/8, [::1] or localhost)";
    }
    return {};
}

void parse_types(const toml::table& t, Checker& c, Target& out, const std::string& where) {
    const toml::node* n = t.get("types");
    if (!n) {
        out.types = {default_types().begin(), default_types().end()};
        return;
    }
    const toml::array* a = n->as_array();
    if (!a) {
        c.fail(n, out.line, fmt::format("{}.types must be a list of record types", where));
        return;
    }
    for (const auto& e : *a) {
        auto v = e.value<std::string>();
        if (!v || !is_audit_type(*v)) {
            c.fail(&e, out.line,
                   fmt::format("{}.types: unknown record type '{}'; the types are: {}", where,
                               v ? *v : std::string("(not a string)"), audit_types_text()));
            continue;
        }
        out.types.insert(*v);
    }
    if (out.types.empty() && a->empty())
        c.fail(n, out.line, fmt::format("{}.types is empty: name at least one type", where));
}

void parse_ports(const toml::table& t, Checker& c, Target& out, const std::string& where) {
    const toml::node* n = t.get("ports");
    if (!n) return;
    const toml::array* a = n->as_array();
    if (!a) {
        c.fail(n, out.line, fmt::format("{}.ports must be a list of port numbers", where));
        return;
    }
    for (const auto& e : *a) {
        auto v = policy_detail::whole_in(e, 1, 65535);
        if (!v)
            c.fail(&e, out.line, fmt::format("{}.ports: give port numbers from 1 to 65535", where));
        else
            out.ports.insert(int(*v));
    }
}

void parse_secret(const toml::table& t, Checker& c, Target& out, const std::string& where,
                  std::string (*read_file)(const std::string&, std::string*)) {
    auto path = c.str(t, "secret_file", where);
    if (!path) return;
    std::string error;
    std::string text = read_file(*path, &error);
    if (!error.empty()) {
        c.fail(t.get("secret_file"), out.line, fmt::format("{}.secret_file: {}", where, error));
        return;
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    auto key = decode_secret(text);
    if (!key) {
        c.fail(t.get("secret_file"), out.line,
               fmt::format("{}.secret_file {}: {}", where, *path, key.error()));
        return;
    }
    out.secret = *key;
}

void parse_target(const toml::table& t, Checker& c, Target& out, std::size_t index,
                  std::string (*read_file)(const std::string&, std::string*)) {
    out.line = Checker::line_of(t);
    const std::string where = fmt::format("[[notify]] #{}", index + 1);
    c.only(t, {"name", "url", "format", "secret_file", "types", "ports", "give_up_after", "timeout"}, where);
    auto url = c.str(t, "url", where);
    if (!url)
        c.fail(&t, out.line, fmt::format("{} needs url = \"https://...\"", where));
    else if (auto why = url_refusal(*url); !why.empty())
        c.fail(t.get("url"), out.line, fmt::format("{}.url {}", where, why));
    else
        out.url = *url;
    if (auto f = c.str(t, "format", where)) {
        if (*f == "json")
            out.format = Format::Json;
        else if (*f == "slack")
            out.format = Format::Slack;
        else
            c.fail(t.get("format"), out.line, fmt::format("{}.format must be \"json\" or \"slack\"", where));
    }
    auto name = c.str(t, "name", where);
    bool name_ok = true;
    if (name)
        for (char ch : *name)
            name_ok = name_ok &&
                      (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.');
    if (name && (!name_ok || name->empty() || name->size() > 64 || (*name)[0] == '.'))
        c.fail(t.get("name"), out.line,
               fmt::format("{}.name must be 1-64 letters, digits, '-', '_' or '.' (it names a state file)",
                           where));
    out.name = name ? *name : fmt::format("notify-{}", index + 1);
    parse_types(t, c, out, where);
    parse_ports(t, c, out, where);
    parse_secret(t, c, out, where, read_file);
    if (auto g = c.duration(t, "give_up_after", where)) out.give_up_after_s = *g;
    if (auto d = c.duration(t, "timeout", where)) {
        if (*d > 300)
            c.fail(t.get("timeout"), out.line, fmt::format("{}.timeout is at most 5m", where));
        else
            out.timeout_s = *d;
    }
}

std::string read_whole(const std::string& path, std::string* error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        *error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
        return {};
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

const std::vector<std::string>& default_types() {
    static const std::vector<std::string> t = {"request",        "approve",        "reject", "grant",
                                               "expiry_warning", "expire",         "revoke", "break_glass",
                                               "events_lost",    "tamper_detected"};
    return t;
}

std::string origin_of(const std::string& url) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) return {};
    const auto start = scheme + 3;
    std::string authority = url.substr(start, url.find_first_of("/?#", start) - start);
    if (auto at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
    return url.substr(0, start) + authority;
}

ConfigLoad parse_config(std::string_view text, std::string_view file,
                        std::string (*read_file)(const std::string& path, std::string* error)) {
    ConfigLoad out;
    Checker c(file, out.errors);
    toml::table root;
    try {
        root = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
        out.errors.push_back(fmt::format("{}:{}: {}", file, e.source().begin.line, e.description()));
        return out;
    }
    if (const toml::node* w = root.get("web"); w && w->as_table()) {
        if (const toml::node* u = w->as_table()->get("public_url")) {
            auto v = u->value<std::string>();
            if (!v || (v->rfind("https://", 0) != 0 && v->rfind("http://", 0) != 0))
                c.fail(u, 1, "web.public_url must be the approval page's address, https://...");
            else
                out.config.web_url = v->back() == '/' ? v->substr(0, v->size() - 1) : *v;
        }
    }
    const toml::node* n = root.get("notify");
    const toml::array* arr = n ? n->as_array() : nullptr;
    if (n && !arr) {
        c.fail(n, 1, "notification targets are declared as [[notify]] tables");
        return out;
    }
    if (!arr || arr->empty()) {
        out.errors.push_back(
            fmt::format("{}:1: no [[notify]] table: name at least one target (url = ...)", file));
        return out;
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::table* t = (*arr)[i].as_table();
        if (!t) {
            c.fail(&(*arr)[i], 1, "notification targets are declared as [[notify]] tables");
            continue;
        }
        Target target;
        parse_target(*t, c, target, i, read_file);
        if (!names.insert(target.name).second)
            c.fail(t->get("name"), target.line, fmt::format("notify name '{}' is used twice", target.name));
        out.config.targets.push_back(std::move(target));
    }
    return out;
}

ConfigLoad load_config(const std::string& path) {
    std::string error;
    const std::string text = read_whole(path, &error);
    if (!error.empty()) {
        ConfigLoad out;
        out.errors.push_back(fmt::format("{}: {}", path, error));
        return out;
    }
    return parse_config(text, path, read_whole);
}

}  // namespace jg::notify
