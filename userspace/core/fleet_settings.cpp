// The fleet's parts of a policy (design.md §7): a node's [fleet] table, a
// port's hosts and fleet_mode, and the fleet policy document itself.
#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>

#include "core/ed25519.h"
#include "core/policy.h"
#include "core/toml_checker.h"

namespace jg {

namespace policy_detail {

namespace {

// A table of label = "value" pairs (labels, hosts), each name and value a fleet name.
Labels label_table(const toml::table& t, Checker& c, std::string_view key, const std::string& where) {
    Labels out;
    const toml::node* n = t.get(key);
    if (!n) return out;
    const toml::table* lt = n->as_table();
    if (!lt) {
        c.fail(n, Checker::line_of(t),
               fmt::format("{}.{} must be a table such as {{ role = \"db\" }}", where, key));
        return out;
    }
    for (const auto& [k, v] : *lt) {
        const std::string name(k.str());
        auto value = v.value<std::string>();
        if (!valid_fleet_name(name) || !value || !valid_fleet_name(*value)) {
            c.fail(&v, Checker::line_of(t),
                   fmt::format("{}.{}: each label is name = \"value\", both 1-63 letters, digits, '.', '_' "
                               "or '-'",
                               where, key));
            continue;
        }
        out[name] = *value;
    }
    return out;
}

bool http_url(const std::string& u) { return u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0; }

}  // namespace

void parse_fleet(const toml::table& t, Checker& c, FleetSettings& f) {
    c.only(t,
           {"etcd", "node", "labels", "prefix", "grace", "ca_file", "cert_file", "key_file", "user",
            "password_file", "signers"},
           "[fleet]");
    const int line = Checker::line_of(t);
    for (auto& u : c.strings(t, "etcd", "fleet")) {
        if (!http_url(u) || u.size() > 512)
            c.fail(t.get("etcd"), line,
                   fmt::format(
                       "fleet.etcd: '{}' is not an etcd endpoint (http://HOST:PORT or https://HOST:PORT)",
                       u.substr(0, 80)));
        else
            f.etcd.push_back(u);
    }
    if (auto n = c.str(t, "node", "fleet")) {
        if (!valid_fleet_name(*n))
            c.fail(
                t.get("node"), line,
                "fleet.node must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit");
        else
            f.node = *n;
    }
    f.labels = label_table(t, c, "labels", "fleet");
    if (auto p = c.str(t, "prefix", "fleet")) {
        bool ok = p->size() >= 2 && p->size() <= 128 && (*p)[0] == '/' && p->back() != '/';
        for (char ch : *p)
            ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '-' || ch == '_' ||
                        ch == '.');
        if (!ok)
            c.fail(
                t.get("prefix"), line,
                "fleet.prefix must be a path such as \"/jitgate/v1\" (letters, digits, '/', '-', '_', '.'; "
                "no trailing '/')");
        else
            f.prefix = *p;
    }
    if (auto g = c.duration(t, "grace", "fleet")) {
        if (*g > 24 * 3600)
            c.fail(t.get("grace"), line, "fleet.grace must be at most 24h");
        else
            f.grace_s = *g;
    }
    if (auto v = c.str(t, "ca_file", "fleet")) f.ca_file = *v;
    if (auto v = c.str(t, "cert_file", "fleet")) f.cert_file = *v;
    if (auto v = c.str(t, "key_file", "fleet")) f.key_file = *v;
    if (auto v = c.str(t, "user", "fleet")) f.user = *v;
    if (auto v = c.str(t, "password_file", "fleet")) f.password_file = *v;
    if (f.cert_file.empty() != f.key_file.empty())
        c.fail(nullptr, line, "fleet.cert_file and fleet.key_file go together: give both or neither");
    if (!f.user.empty() && f.password_file.empty())
        c.fail(nullptr, line, "fleet.user needs fleet.password_file (a file holding the password)");
    // design.md §7.3: each "NODE:BASE64KEY", as jitgated --print-key prints it.
    for (auto& e : c.strings(t, "signers", "fleet")) {
        const auto colon = e.find(':');
        const bool ok = colon != std::string::npos && valid_fleet_name(e.substr(0, colon)) &&
                        parse_ed25519_public(std::string_view(e).substr(colon + 1));
        if (!ok)
            c.fail(t.get("signers"), line,
                   fmt::format("fleet.signers: '{}' is not NODE:BASE64KEY (a node name, ':', and the 32-byte "
                               "public key in standard base64, as `jitgated --print-key` prints it)",
                               e.substr(0, 120)));
        else if (std::find(f.signers.begin(), f.signers.end(), e) == f.signers.end())
            f.signers.push_back(e);
    }
}

void parse_port_fleet(const toml::table& t, Checker& c, PortPolicy& p, const std::string& where) {
    p.hosts = label_table(t, c, "hosts", where);
    if (auto m = c.str(t, "fleet_mode", where)) {
        if (*m == "strict")
            p.strict = true;
        else if (*m != "best_effort")
            c.fail(t.get("fleet_mode"), Checker::line_of(t),
                   fmt::format("{}: fleet_mode must be \"best_effort\" or \"strict\"", where));
    }
}

}  // namespace policy_detail

PolicyLoad parse_fleet_policy(std::string_view text, std::string_view file) {
    PolicyLoad out = parse_policy(text, file);
    if (!out.ok()) return out;
    toml::table root = toml::parse(text, file);  // parsed once already: cannot fail
    for (const auto& [k, v] : root)
        if (k.str() != "port")
            out.errors.push_back(fmt::format(
                "{}:{}: a fleet policy holds [[port]] tables only; [{}] belongs in each node's own file",
                file, v.source().begin.line, std::string_view(k.str())));
    if (out.ok() && out.policy.ports.empty())
        out.errors.push_back(
            fmt::format("{}:1: the fleet policy protects no port: add [[port]] tables", file));
    return out;
}

}  // namespace jg
