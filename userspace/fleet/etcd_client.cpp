// etcd v3 through its JSON gateway with libcurl.  What the gateway (etcd
// 3.4) sends, as found against a real one:
//  - bytes (keys, values) are base64; int64 fields are decimal strings;
//    fields at their zero value are left out ("more", "succeeded", "kvs",
//    a keepalive's "TTL" when the lease is gone);
//  - a refused call: an HTTP 4xx/5xx whose body is
//    {"error": TEXT, "message": TEXT, "code": GRPC_CODE};
//  - streams (/v3/watch, /v3/lease/keepalive): one JSON object per line,
//    {"result": {...}} or {"error": {"grpc_code", "http_code", "message",
//    "http_status"}}; a watch from a compacted revision answers "created"
//    then {"canceled": true, "compact_revision": R}.
// Everything it sends is untrusted: every field's type is checked.
#include "fleet/etcd_client.h"
#include "fleet/etcd_session.h"

#include <unistd.h>
#include "fleet/gateway_json.h"
#include "util/curl_api.h"

#include <charconv>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/protocol.h"
#include "core/text.h"

namespace jg::fleet {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

}  // namespace

// etcd's own message for a refused call, in either of the gateway's shapes;
// empty when the body is not an error.
std::string detail::error_text(const nlohmann::json& j, std::int64_t& code) {
    code = 0;
    auto it = j.find("error");
    if (it == j.end() || it->is_null()) return {};
    if (it->is_string()) {
        if (!read_i64(j, "code", code)) code = 0;
        std::string s = it->get<std::string>();
        return s.empty() ? std::string() : s;
    }
    if (it->is_object()) {
        if (!read_i64(*it, "grpc_code", code)) code = 0;
        auto m = it->find("message");
        return m != it->end() && m->is_string() ? m->get<std::string>() : std::string("(no message)");
    }
    return "(an error of an unexpected type)";
}

bool detail::is_token_error(const std::string& msg) {
    return msg.find("invalid auth token") != std::string::npos ||
           msg.find("revision of auth store is old") != std::string::npos ||
           msg.find("user name is empty") != std::string::npos;
}

// etcd's text, quoted and escaped for a terminal.  (Appended, not written
// as "\"" + x + "\"": GCC 12's -Wrestrict misfires on that at -O3.)
std::string detail::shown(const std::string& s) {
    std::string out(1, '"');
    out += escape_terminal(s, true);
    out += '"';
    return out;
}

namespace {

size_t collect(char* p, size_t size, size_t n, void* user) {
    auto* body = static_cast<std::string*>(user);
    if (body->size() + size * n > detail::kMaxResponse)
        return 0;  // CURLE_WRITE_ERROR: refused, not truncated
    body->append(p, size * n);
    return size * n;
}

bool readable(const std::string& path) { return path.empty() || ::access(path.c_str(), R_OK) == 0; }

}  // namespace

// What to check after every endpoint failed: TLS settings when the
// failures were TLS ones, else the endpoints themselves.
std::string detail::unreachable_hint(const std::string& failures) {
    bool tls = failures.find("SSL") != std::string::npos || failures.find("TLS") != std::string::npos;
    if (tls) return "; check [fleet] ca_file, cert_file and key_file.";
    if (failures.find("https://") != std::string::npos) {
        return "; check [fleet] etcd, that etcd runs, and [fleet] ca_file, cert_file and key_file.";
    }
    return "; check [fleet] etcd and that etcd runs.";
}

// --- one HTTP exchange

std::string EtcdClient::Impl::curl_error(CURLcode rc) const {
    return errbuf[0] ? std::string(errbuf) : curl_fns().easy_strerror(rc);
}

EtcdClient::Impl::~Impl() {
    if (headers) curl_fns().slist_free_all(headers);
    if (curl) curl_fns().easy_cleanup(curl);
}

void EtcdClient::Impl::prepare(const std::string& url, const std::string& body, long timeout_ms) {
    curl_fns().easy_reset(curl);
    if (headers) curl_fns().slist_free_all(headers);
    headers = curl_fns().slist_append(nullptr, "Content-Type: application/json");
    headers = curl_fns().slist_append(headers, "Expect:");  // no 100-continue round trip
    if (!token.empty()) headers = curl_fns().slist_append(headers, ("Authorization: " + token).c_str());
    curl_fns().easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_fns().easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_fns().easy_setopt(curl, CURLOPT_POST, 1L);
    curl_fns().easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_fns().easy_setopt(curl, CURLOPT_POSTFIELDSIZE, long(body.size()));
    curl_fns().easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    errbuf[0] = 0;
    curl_fns().easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_fns().easy_setopt(curl, CURLOPT_PROXY, "");  // etcd is reached directly, never via $http_proxy
    curl_fns().easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, o.connect_timeout_ms);
    curl_fns().easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_fns().easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_fns().easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(detail::kMaxResponse));
    if (!o.ca_file.empty()) curl_fns().easy_setopt(curl, CURLOPT_CAINFO, o.ca_file.c_str());
    if (!o.cert_file.empty()) curl_fns().easy_setopt(curl, CURLOPT_SSLCERT, o.cert_file.c_str());
    if (!o.key_file.empty()) curl_fns().easy_setopt(curl, CURLOPT_SSLKEY, o.key_file.c_str());
}

Result<json> EtcdClient::Impl::post_one(const std::string& ep, const std::string& path,
                                        const std::string& body, bool& reached) {
    std::string resp;
    prepare(ep + path, body, o.timeout_ms);
    curl_fns().easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_fns().easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    CURLcode rc = curl_fns().easy_perform(curl);
    reached = false;
    if (rc == CURLE_WRITE_ERROR || rc == CURLE_FILESIZE_EXCEEDED) {
        reached = true;
        return err("etcd at " + ep + " sent a response to " + path + " larger than 64 MiB; refused.");
    }
    if (rc != CURLE_OK) return err(curl_error(rc));
    reached = true;
    long status = 0;
    curl_fns().easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    json j = parse_json_bounded(resp);
    if (j.is_discarded() || !j.is_object()) {
        return err("etcd at " + ep + " answered " + path + " with HTTP " + std::to_string(status) +
                   " and a body that is not a JSON object; check that the endpoint is etcd's client URL.");
    }
    std::int64_t code = 0;
    if (status != 200 && detail::error_text(j, code).empty()) {
        return err("etcd at " + ep + " answered " + path + " with HTTP " + std::to_string(status) +
                   " and no error message; check that the endpoint is etcd's client URL.");
    }
    return j;
}

Result<json> EtcdClient::Impl::post(const std::string& path, const json& req) {
    const std::string body = req.dump();
    std::string failures;
    for (std::size_t i = 0; i < o.endpoints.size(); ++i) {
        const std::string& ep = o.endpoints[i];
        bool reached = false;
        auto r = post_one(ep, path, body, reached);
        if (!reached) {
            failures += (failures.empty() ? "" : "; ") + ep + " is unreachable: " + r.error();
            continue;
        }
        if (!r) return r;
        std::int64_t code = 0;
        std::string e = detail::error_text(*r, code);
        if (e.empty()) {
            last_endpoint = ep;
            return r;
        }
        if (code == 14 &&
            i + 1 < o.endpoints.size()) {  // Unavailable (no leader...): another member may serve
            failures += (failures.empty() ? "" : "; ") + ep + " is unavailable: " + detail::shown(e);
            continue;
        }
        return err("etcd at " + ep + " refused " + path + ": " + detail::shown(e) + " (code " +
                   std::to_string(code) + ").");
    }
    return err("etcd at " + failures + detail::unreachable_hint(failures));
}

Result<bool> EtcdClient::Impl::authenticate() {
    token.clear();
    auto r = post("/v3/auth/authenticate", {{"name", o.user}, {"password", o.password}});
    if (!r && r.error().find(" refused ") != std::string::npos) {
        return err(r.error().substr(0, r.error().size() - 1) + "; check [fleet] user and password_file.");
    }
    if (!r) return err(r.error());
    auto t = r->find("token");
    if (t == r->end() || !t->is_string() || t->get_ref<const std::string&>().empty()) {
        return err("etcd at " + last_endpoint + " answered the authentication of user " +
                   detail::shown(o.user) + " without a token; check that auth is enabled there.");
    }
    token = t->get<std::string>();
    return true;
}

Result<json> EtcdClient::Impl::call(const std::string& path, const json& req) {
    if (!o.user.empty() && token.empty()) {
        auto a = authenticate();
        if (!a) return err(a.error());
    }
    auto r = post(path, req);
    if (!r && !o.user.empty() && detail::is_token_error(r.error())) {
        auto a = authenticate();
        if (!a) return err(a.error());
        r = post(path, req);
    }
    return r;
}

Result<RangeResult> EtcdClient::Impl::range(const json& req, bool* more) {
    auto r = call("/v3/kv/range", req);
    if (!r) return err(r.error());
    RangeResult out;
    bool m = false;
    bool ok = read_header_revision(*r, out.revision) && read_bool(*r, "more", m);
    auto kvs = r->find("kvs");
    if (ok && kvs != r->end() && !kvs->is_null()) {
        ok = kvs->is_array();
        if (ok) out.kvs.reserve(kvs->size());
        for (std::size_t i = 0; ok && i < kvs->size(); ++i) {
            KeyValue kv;
            ok = read_kv((*kvs)[i], kv);
            out.kvs.push_back(std::move(kv));
        }
    }
    if (!ok)
        return err("etcd at " + last_endpoint + " answered a range read with malformed fields; refused.");
    if (more) *more = m;
    return out;
}

// --- the public calls

EtcdClient::EtcdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdClient::~EtcdClient() = default;

Result<std::unique_ptr<EtcdClient>> EtcdClient::open(const EtcdOptions& o) {
    if (o.endpoints.empty()) return err("no etcd endpoint is configured; set [fleet] etcd or --etcd.");
    for (const auto& ep : o.endpoints) {
        if (ep.rfind("http://", 0) != 0 && ep.rfind("https://", 0) != 0) {
            return err("the etcd endpoint " + detail::shown(ep) +
                       " is not an http:// or https:// URL; fix [fleet] etcd.");
        }
    }
    for (const auto* f : {&o.ca_file, &o.cert_file, &o.key_file}) {
        if (!readable(*f))
            return err("cannot read the etcd TLS file " + detail::shown(*f) + "; check its path and mode.");
    }
    if (o.connect_timeout_ms <= 0 || o.timeout_ms <= 0) return err("the etcd timeouts must be positive.");
    if (auto api = curl_api(); !api) return err(api.error() + ".");
    auto impl = std::make_unique<Impl>();
    impl->o = o;
    for (auto& ep : impl->o.endpoints) {
        while (!ep.empty() && ep.back() == '/') ep.pop_back();
    }
    impl->curl = curl_fns().easy_init();
    if (!impl->curl) return err("libcurl could not create a handle (out of memory?).");
    if (!o.user.empty()) {
        // A refused password fails here; an unreachable etcd does not (the
        // first call authenticates then), so a node starts while etcd is down.
        auto a = impl->authenticate();
        if (!a && a.error().find("unreachable") == std::string::npos) return err(a.error());
    }
    return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(impl)));
}

const std::string& EtcdClient::endpoint() const { return impl_->last_endpoint; }

Result<std::optional<KeyValue>> EtcdClient::get(const std::string& key, std::int64_t* revision) {
    auto r = impl_->range({{"key", b64_encode(key)}}, nullptr);
    if (!r) return err(r.error());
    if (revision) *revision = r->revision;
    if (r->kvs.empty()) return std::optional<KeyValue>();
    return std::optional<KeyValue>(std::move(r->kvs.front()));
}

Result<RangeResult> EtcdClient::get_prefix(const std::string& prefix, std::int64_t revision, int page) {
    if (page <= 0) page = 1000;
    const std::string end = b64_encode(prefix_end(prefix));
    RangeResult all;
    all.revision = revision;
    std::string from = prefix;
    for (;;) {
        json req = {{"key", b64_encode(from)}, {"range_end", end}, {"limit", std::to_string(page)}};
        // Every page at the first page's revision: one consistent snapshot.
        if (all.revision > 0) req["revision"] = std::to_string(all.revision);
        bool more = false;
        auto r = impl_->range(req, &more);
        if (!r) return err(r.error());
        if (all.revision == 0) all.revision = r->revision;
        if (r->kvs.empty()) break;
        if (r->kvs.front().key < from) {  // a page must move forward, or a broken server loops us forever
            return err("etcd at " + impl_->last_endpoint +
                       " answered a paged read with keys before the page's start; refused.");
        }
        from = r->kvs.back().key + std::string(1, '\0');  // the next key after the last one read
        for (auto& kv : r->kvs) all.kvs.push_back(std::move(kv));
        if (!more) break;
    }
    return all;
}

Result<std::int64_t> EtcdClient::put(const std::string& key, const std::string& value, std::int64_t lease) {
    json req = {{"key", b64_encode(key)}, {"value", b64_encode(value)}};
    if (lease != 0) req["lease"] = std::to_string(lease);
    auto r = impl_->call("/v3/kv/put", req);
    if (!r) return err(r.error());
    std::int64_t rev = 0;
    if (!read_header_revision(*r, rev))
        return err("etcd at " + impl_->last_endpoint + " answered a put malformed.");
    return rev;
}

Result<std::int64_t> EtcdClient::del(const std::string& key) {
    auto r = impl_->call("/v3/kv/deleterange", {{"key", b64_encode(key)}});
    if (!r) return err(r.error());
    std::int64_t rev = 0;
    if (!read_header_revision(*r, rev))
        return err("etcd at " + impl_->last_endpoint + " answered a delete malformed.");
    return rev;
}

namespace {

json compare_json(const Compare& c) {
    json j = {{"key", b64_encode(c.key)}, {"result", "EQUAL"}};
    switch (c.target) {
        case Compare::Target::Mod: j["target"] = "MOD", j["mod_revision"] = std::to_string(c.number); break;
        case Compare::Target::Create:
            j["target"] = "CREATE", j["create_revision"] = std::to_string(c.number);
            break;
        case Compare::Target::Version:
            j["target"] = "VERSION", j["version"] = std::to_string(c.number);
            break;
        case Compare::Target::Value: j["target"] = "VALUE", j["value"] = b64_encode(c.value); break;
    }
    return j;
}

json ops_json(const std::vector<TxnOp>& ops) {
    json a = json::array();
    for (const auto& op : ops) {
        if (op.kind == TxnOp::Kind::Delete) {
            a.push_back({{"request_delete_range", {{"key", b64_encode(op.key)}}}});
            continue;
        }
        json put = {{"key", b64_encode(op.key)}, {"value", b64_encode(op.value)}};
        if (op.lease != 0) put["lease"] = std::to_string(op.lease);
        a.push_back({{"request_put", put}});
    }
    return a;
}

}  // namespace

Result<TxnResult> EtcdClient::txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                                  const std::vector<TxnOp>& failure) {
    json cmp = json::array();
    for (const auto& c : compares) cmp.push_back(compare_json(c));
    auto r = impl_->call("/v3/kv/txn",
                         {{"compare", cmp}, {"success", ops_json(success)}, {"failure", ops_json(failure)}});
    if (!r) return err(r.error());
    TxnResult out;
    if (!read_header_revision(*r, out.revision) || !read_bool(*r, "succeeded", out.succeeded)) {
        return err("etcd at " + impl_->last_endpoint + " answered a transaction malformed; refused.");
    }
    return out;
}

Result<std::int64_t> EtcdClient::lease_grant(std::int64_t ttl_s) {
    auto r = impl_->call("/v3/lease/grant", {{"TTL", std::to_string(ttl_s)}, {"ID", "0"}});
    if (!r) return err(r.error());
    std::int64_t id = 0;
    if (!read_i64(*r, "ID", id) || id == 0) {
        return err("etcd at " + impl_->last_endpoint + " granted a lease without a valid ID; refused.");
    }
    return id;
}

Result<bool> EtcdClient::lease_keepalive(std::int64_t id) {
    // A stream on the gateway: our body is one request, so etcd answers it
    // once ({"result": ...}) and ends the stream when the body ends.
    auto r = impl_->call("/v3/lease/keepalive", {{"ID", std::to_string(id)}});
    if (!r) return err(r.error());
    auto res = r->find("result");
    std::int64_t ttl = 0;
    if (res == r->end() || !res->is_object() || !read_i64(*res, "TTL", ttl)) {
        return err("etcd at " + impl_->last_endpoint + " answered a lease renewal malformed; refused.");
    }
    return ttl > 0;  // TTL left out (0): the lease no longer exists
}

Result<bool> EtcdClient::lease_revoke(std::int64_t id) {
    auto r = impl_->call("/v3/lease/revoke", {{"ID", std::to_string(id)}});
    if (!r) {
        if (r.error().find("requested lease not found") != std::string::npos) return false;
        return err(r.error());
    }
    return true;
}

std::string prefix_end(const std::string& prefix) {
    std::string end = prefix;
    while (!end.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(end.back());
        if (last < 0xff) {
            ++last;
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // no byte to increment: every key from the start
}

}  // namespace jg::fleet
