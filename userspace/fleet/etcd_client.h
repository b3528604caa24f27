#pragma once
// etcd v3 through its JSON gateway (POST /v3/kv/range, /v3/kv/txn, ...)
// with libcurl: the one place jitgate speaks HTTP to etcd (design.md §7).
// Keys and values are bytes on our side; the gateway's base64 and its
// int64-as-string fields stay in here.  Every call is bounded by the
// options' timeouts, so an unreachable etcd is a clear error within
// seconds, never a hang.  A client is used by one thread at a time.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace jg::fleet {

struct EtcdOptions {
    std::vector<std::string> endpoints;        // "http://127.0.0.1:2379", "https://..."; tried in order
    std::string ca_file, cert_file, key_file;  // TLS (https endpoints); empty: system CAs, no client cert
    std::string user, password;                // auth; empty user: none
    long connect_timeout_ms = 1000;
    long timeout_ms = 3000;  // whole request (not the watch stream)
};

struct KeyValue {
    std::string key, value;
    std::int64_t create_revision = 0, mod_revision = 0, version = 0, lease = 0;
};

struct RangeResult {
    std::int64_t revision = 0;  // the store's revision the read saw
    std::vector<KeyValue> kvs;
};

// One comparison of a transaction: the key's target (EQUAL) the number or value.
struct Compare {
    enum class Target { Mod, Create, Version, Value };
    std::string key;
    Target target = Target::Mod;
    std::int64_t number = 0;  // Mod, Create, Version
    std::string value;        // Value
};

struct TxnOp {
    enum class Kind { Put, Delete };
    Kind kind = Kind::Put;
    std::string key, value;
    std::int64_t lease = 0;  // Put: bind the key to this lease (0: none)
};

struct TxnResult {
    bool succeeded = false;
    std::int64_t revision = 0;  // the header's revision after the transaction
};

struct WatchEvent {
    bool deleted = false;
    KeyValue kv;  // deleted: key and mod_revision only
};

// Why a watch stopped.  compact_revision > 0: the start revision was
// compacted away; read everything again at a newer revision.
struct WatchEnd {
    std::string error;  // empty: stop was asked
    std::int64_t compact_revision = 0;
};

class EtcdClient {
public:
    // Checks the options (each endpoint an http:// or https:// URL, files
    // readable) and, with a user, authenticates; does not otherwise connect.
    static Result<std::unique_ptr<EtcdClient>> open(const EtcdOptions& o);
    ~EtcdClient();

    // One key; nullopt when absent.  revision: the store's revision.
    Result<std::optional<KeyValue>> get(const std::string& key, std::int64_t* revision = nullptr);
    // Every key under `prefix` at one revision (0: the newest), read in
    // pages of `page` keys (all pages at the same revision).
    Result<RangeResult> get_prefix(const std::string& prefix, std::int64_t revision = 0, int page = 1000);
    // Returns the revision of the write.
    Result<std::int64_t> put(const std::string& key, const std::string& value, std::int64_t lease = 0);
    Result<std::int64_t> del(const std::string& key);
    Result<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                          const std::vector<TxnOp>& failure = {});
    // A lease of ttl_s seconds; its id.
    Result<std::int64_t> lease_grant(std::int64_t ttl_s);
    // Renews the lease; false when it no longer exists (expired): grant a new one.
    Result<bool> lease_keepalive(std::int64_t id);
    Result<bool> lease_revoke(std::int64_t id);

    // Watches every key under `prefix` from `start_revision`, calling
    // on_events(header revision, events) for each response, until `stop`
    // becomes true (checked at least every 200 ms), the stream fails, or
    // the start revision was compacted.  Blocks: run it on its own thread
    // with its own client.  A stream that sends nothing for `idle_ms`
    // (etcd's progress notifications are asked for) counts as failed.
    WatchEnd watch(const std::string& prefix, std::int64_t start_revision,
                   const std::function<void(std::int64_t, std::vector<WatchEvent>&)>& on_events,
                   const std::atomic<bool>& stop, long idle_ms = 15000);

    // The endpoint the last successful call used (for messages).
    const std::string& endpoint() const;

private:
    struct Impl;
    explicit EtcdClient(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The end of the range that holds every key starting with `prefix` (etcd's
// range_end: the prefix with its last byte incremented).
std::string prefix_end(const std::string& prefix);

}  // namespace jg::fleet
