#pragma once
// Reading a policy's TOML tables: each problem becomes one "FILE:LINE:
// message" of the load's errors, and parsing goes on to report the rest.
// Shared by the policy's parts (core/policy.cpp, core/fleet_settings.cpp).
#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/duration.h"
#include "core/policy.h"

namespace jg::policy_detail {

// "0s", "0m", "0h0m": a well-formed duration of zero, which parse_duration refuses.
inline bool zero_duration(const std::string& s) {
    if (s.find('0') == std::string::npos || s.find_first_of("123456789") != std::string::npos) return false;
    std::string form = s;
    std::replace(form.begin(), form.end(), '0', '1');
    return parse_duration(form).ok();
}

class Checker {
public:
    Checker(std::string_view file, std::vector<std::string>& errors) : file_(file), errors_(errors) {}

    void fail(const toml::node* n, int fallback_line, const std::string& msg) {
        int line = fallback_line;
        if (n && n->source().begin.line) line = static_cast<int>(n->source().begin.line);
        errors_.push_back(fmt::format("{}:{}: {}", file_, line, msg));
    }

    // Reports every key of `t` not in `known`.
    void only(const toml::table& t, std::initializer_list<std::string_view> known, std::string_view where) {
        for (const auto& [k, v] : t) {
            bool found = false;
            for (auto kn : known) found = found || kn == k.str();
            if (!found)
                fail(&v, line_of(t), fmt::format("unknown key '{}' in {}", std::string_view(k.str()), where));
        }
    }

    static int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

    std::optional<std::string> str(const toml::table& t, std::string_view key, std::string_view where) {
        const toml::node* n = t.get(key);
        if (!n) return std::nullopt;
        if (auto v = n->value<std::string>()) return *v;
        fail(n, line_of(t), fmt::format("{}.{} must be a string", where, key));
        return std::nullopt;
    }

    std::optional<bool> boolean(const toml::table& t, std::string_view key, std::string_view where) {
        const toml::node* n = t.get(key);
        if (!n) return std::nullopt;
        if (n->is_boolean()) return n->as_boolean()->get();
        fail(n, line_of(t), fmt::format("{}.{} must be true or false", where, key));
        return std::nullopt;
    }

    // With allow_zero, "0s" (any unit) is 0: a limit of zero that switches a feature off.
    std::optional<std::int64_t> duration(const toml::table& t, std::string_view key, std::string_view where,
                                         bool allow_zero = false) {
        auto s = str(t, key, where);
        if (!s) return std::nullopt;
        if (allow_zero && zero_duration(*s)) return 0;
        auto d = parse_duration(*s);
        if (!d) {
            fail(t.get(key), line_of(t), fmt::format("{}.{}: {}", where, key, d.error()));
            return std::nullopt;
        }
        return *d;
    }

    std::vector<std::string> strings(const toml::table& t, std::string_view key, std::string_view where) {
        std::vector<std::string> out;
        const toml::node* n = t.get(key);
        if (!n) return out;
        const toml::array* a = n->as_array();
        if (!a) {
            fail(n, line_of(t), fmt::format("{}.{} must be a list of strings", where, key));
            return out;
        }
        for (const auto& e : *a) {
            if (auto v = e.value<std::string>())
                out.push_back(*v);
            else
                fail(&e, line_of(t), fmt::format("{}.{} must be a list of strings", where, key));
        }
        return out;
    }

    std::optional<Principal> principal(const std::string& s, const toml::node* n, int line,
                                       std::string_view where) {
        Principal p;
        std::string_view name = s;
        if (!name.empty() && name[0] == '@') {
            p.is_group = true;
            name.remove_prefix(1);
        }
        bool valid = !name.empty() && name.size() <= 32;
        for (char c : name)
            valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                              c == '.' || c == '$');
        if (!valid) {
            fail(n, line, fmt::format("{}: '{}' is not a user name or @group", where, s));
            return std::nullopt;
        }
        p.name = std::string(name);
        return p;
    }

private:
    std::string_view file_;
    std::vector<std::string>& errors_;
};

// A TOML integer from lo to hi.  Only an integer: value<int64_t>() would also
// convert a float, and one out of range (port = 5e61) is undefined behaviour.
inline std::optional<std::int64_t> whole_in(const toml::node& n, std::int64_t lo, std::int64_t hi) {
    auto v = n.value_exact<std::int64_t>();
    if (!v || *v < lo || *v > hi) return std::nullopt;
    return v;
}

// [fleet] into f (core/fleet_settings.cpp).
void parse_fleet(const toml::table& t, Checker& c, FleetSettings& f);
// [identity] into o (core/oidc_settings.cpp).
void parse_identity(const toml::table& t, Checker& c, OidcSettings& o);
// A port's hosts and fleet_mode.
void parse_port_fleet(const toml::table& t, Checker& c, PortPolicy& p, const std::string& where);

}  // namespace jg::policy_detail
