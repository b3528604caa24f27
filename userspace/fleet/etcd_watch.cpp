// The etcd client's watch (etcd_client.h): one streaming POST to
// /v3/watch, read line by line.  The request/response calls and the shared
// session (EtcdClient::Impl, etcd_session.h) are in etcd_client.cpp.
#include <atomic>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/protocol.h"
#include "core/text.h"
#include "fleet/etcd_client.h"
#include "fleet/etcd_session.h"
#include "fleet/gateway_json.h"
#include "util/curl_api.h"

namespace jg::fleet {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

}  // namespace

// --- watch: one streaming POST, read with curl's multi interface so that
// `stop` and the idle bound are checked every 100 ms whatever arrives.

namespace {

struct WatchState {
    const std::function<void(std::int64_t, std::vector<WatchEvent>&)>* on_events;
    std::string pending;
    bool created = false, done = false;
    WatchEnd end;
    SteadyClock::time_point last_data;
};

// One line of the stream.  Sets st.done with st.end when the watch is over.
void watch_line(WatchState& st, const std::string& line, const std::string& ep) {
    json j = parse_json_bounded(line);
    std::int64_t code = 0;
    std::string e = j.is_object() ? detail::error_text(j, code) : std::string();
    auto res = j.is_object() ? j.find("result") : j.end();
    if (!e.empty() || res == j.end() || !res->is_object()) {
        st.done = true;
        st.end.error = !e.empty()
                           ? "etcd at " + ep + " ended the watch: " + detail::shown(e) + "."
                           : "etcd at " + ep + " sent a watch message that is not {\"result\": {...}}.";
        return;
    }
    std::int64_t rev = 0, compact = 0;
    bool created = false, canceled = false;
    if (!read_header_revision(*res, rev) || !read_i64(*res, "compact_revision", compact) ||
        !read_bool(*res, "created", created) || !read_bool(*res, "canceled", canceled)) {
        st.done = true;
        st.end.error = "etcd at " + ep + " sent a watch message with malformed fields.";
        return;
    }
    // A refused create (a bad token, no permission) answers created and
    // canceled at once: only a watch that is not canceled is confirmed.
    if (created && !canceled) st.created = true;
    if (compact > 0) {
        st.done = true;
        st.end.compact_revision = compact;
        return;
    }
    if (canceled) {
        auto reason = res->find("cancel_reason");
        st.done = true;
        st.end.error =
            "etcd at " + ep + " canceled the watch" +
            (reason != res->end() && reason->is_string() ? ": " + detail::shown(reason->get<std::string>())
                                                         : "") +
            ".";
        return;
    }
    auto evs = res->find("events");
    if (evs == res->end() || evs->is_null()) return;  // created, or a progress notification
    std::vector<WatchEvent> events;
    bool ok = evs->is_array();
    for (std::size_t i = 0; ok && i < evs->size(); ++i) {
        const json& ev = (*evs)[i];
        WatchEvent we;
        ok = ev.is_object();
        if (!ok) break;
        auto type = ev.find("type");
        if (type != ev.end() && !type->is_null()) {
            ok = type->is_string() && (*type == "DELETE" || *type == "PUT");
            we.deleted = ok && *type == "DELETE";
        }
        auto kv = ev.find("kv");
        ok = ok && kv != ev.end() && read_kv(*kv, we.kv);
        events.push_back(std::move(we));
    }
    if (!ok) {
        st.done = true;
        st.end.error = "etcd at " + ep + " sent watch events with malformed fields.";
        return;
    }
    if (!events.empty()) (*st.on_events)(rev, events);
}

size_t watch_write(char* p, size_t size, size_t n, void* user) {
    auto* st = static_cast<WatchState*>(user);
    st->last_data = SteadyClock::now();
    if (st->pending.size() + size * n > detail::kMaxResponse) {
        st->done = true;
        st->end.error = "etcd sent a watch message larger than 64 MiB; refused.";
        return 0;
    }
    st->pending.append(p, size * n);
    return size * n;
}

}  // namespace

WatchEnd EtcdClient::Impl::watch_one(
    const std::string& ep, const json& req,
    const std::function<void(std::int64_t, std::vector<WatchEvent>&)>& on_events,
    const std::atomic<bool>& stop, long idle_ms, bool& created) {
    const std::string body = req.dump();
    prepare(ep + "/v3/watch", body, 0);
    WatchState st{&on_events, {}, false, false, {}, SteadyClock::now()};
    curl_fns().easy_setopt(curl, CURLOPT_WRITEFUNCTION, watch_write);
    curl_fns().easy_setopt(curl, CURLOPT_WRITEDATA, &st);
    CURLM* multi = curl_fns().multi_init();
    curl_fns().multi_add_handle(multi, curl);
    int running = 1;
    while (running && !st.done) {
        curl_fns().multi_perform(multi, &running);
        // Messages are whole lines; one may arrive split across chunks.
        for (std::size_t nl; !st.done && (nl = st.pending.find('\n')) != std::string::npos;) {
            std::string line = st.pending.substr(0, nl);
            st.pending.erase(0, nl + 1);
            if (line.find_first_not_of(" \r\t") != std::string::npos) watch_line(st, line, ep);
        }
        if (stop.load()) {
            st.done = true;
            st.end = WatchEnd{};
            break;
        }
        auto quiet =
            std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - st.last_data).count();
        if (!st.done && quiet > idle_ms) {
            st.done = true;
            st.end.error = "etcd at " + ep + " sent nothing on the watch for " + std::to_string(quiet) +
                           " ms; the stream is considered failed.";
        }
        if (running && !st.done) curl_fns().multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    if (!st.done) {  // the transfer ended by itself
        CURLcode rc = CURLE_OK;
        int left = 0;
        while (CURLMsg* m = curl_fns().multi_info_read(multi, &left)) {
            if (m->msg == CURLMSG_DONE) rc = m->data.result;
        }
        if (!st.pending.empty() && !st.done) watch_line(st, st.pending, ep);
        if (!st.done) {
            st.end.error = rc != CURLE_OK ? "etcd at " + ep + " is unreachable: " + curl_error(rc)
                                          : "etcd at " + ep + " closed the watch stream.";
        }
    }
    curl_fns().multi_remove_handle(multi, curl);
    curl_fns().multi_cleanup(multi);
    created = st.created;
    if (st.end.error.empty() && st.end.compact_revision == 0 && !stop.load())
        st.end.error = "the watch ended.";
    return st.end;
}

WatchEnd EtcdClient::watch(const std::string& prefix, std::int64_t start_revision,
                           const std::function<void(std::int64_t, std::vector<WatchEvent>&)>& on_events,
                           const std::atomic<bool>& stop, long idle_ms) {
    json create = {{"key", b64_encode(prefix)},
                   {"range_end", b64_encode(prefix_end(prefix))},
                   {"progress_notify", true}};
    if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
    const json req = {{"create_request", create}};
    if (!impl_->o.user.empty() && impl_->token.empty()) {
        auto a = impl_->authenticate();
        if (!a) return WatchEnd{a.error(), 0};
    }
    std::string failures;
    bool reauthed = false;
    for (std::size_t i = 0; i < impl_->o.endpoints.size(); ++i) {
        const std::string& ep = impl_->o.endpoints[i];
        bool created = false;
        WatchEnd end = impl_->watch_one(ep, req, on_events, stop, idle_ms, created);
        if (created || end.compact_revision > 0 || stop.load()) {
            if (created) impl_->last_endpoint = ep;
            return end;
        }
        if (!impl_->o.user.empty() && !reauthed && detail::is_token_error(end.error)) {
            reauthed = true;
            auto a = impl_->authenticate();
            if (!a) return WatchEnd{a.error(), 0};
            --i;  // the same endpoint again, with the new token
            continue;
        }
        if (end.error.find(" is unreachable: ") == std::string::npos) return end;
        failures += (failures.empty() ? "" : "; ") + end.error.substr(std::string("etcd at ").size());
    }
    return WatchEnd{"etcd at " + failures + detail::unreachable_hint(failures), 0};
}

}  // namespace jg::fleet
