#pragma once
// The node's line to etcd, off the main loop (design.md §7): one thread
// reads the whole prefix at one revision and then watches it, handing each
// snapshot and each batch of changes to the main loop through a queue and
// an eventfd; another keeps the node's lease-bound registration alive and
// writes its ack when the main loop has a new one.  Level-triggered: a
// failed or compacted watch, and every `resync`, start over with a full
// read.  Nothing here touches the maps or the store.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/ed25519.h"
#include "core/result.h"
#include "fleet/etcd_client.h"
#include "util/unique_fd.h"

namespace jg::fleet {

struct Batch {
    bool snapshot = false;       // puts: every key under the prefix
    std::int64_t revision = 0;   // the store's revision this batch brings the node to
    std::vector<KeyValue> puts;  // created or changed
    std::vector<KeyValue> deletes;
};

class Watcher {
public:
    struct Config {
        EtcdOptions etcd;
        std::string prefix;
        std::string node;
        std::string registration;  // the value of P/nodes/NODE
        std::chrono::milliseconds resync{std::chrono::minutes(5)};
        std::int64_t lease_ttl_s = 10;
    };
    static Result<std::unique_ptr<Watcher>> start(Config c);
    ~Watcher();  // stops both threads; the registration's lease is revoked when etcd answers

    int fd() const { return efd_.get(); }  // readable when batches wait
    std::vector<Batch> take();
    // Whether the watch is up and the last write or renewal succeeded.
    bool connected() const { return watch_ok_ && keep_ok_; }
    // Whether the link is up, and how many times it went from up to down
    // (counted where it changes, not sampled), read together: a look that
    // finds it down can tell whether it came back since an earlier look.
    std::pair<bool, std::uint64_t> link() const {
        std::lock_guard<std::mutex> l(link_mu_);
        return {watch_ok_ && keep_ok_, outages_};
    }
    std::string last_error() const;
    // The ack to write (the keeper writes the newest, once), and with it,
    // when given, an entry of the node's history of audit heads: written
    // once (create-only) in the same transaction, the oldest beyond
    // kKeepHeads deleted after.
    struct HeadWrite {
        std::string key, value;
    };
    void publish_ack(std::string value, std::optional<HeadWrite> head = std::nullopt);
    // The same, then waits up to `timeout` for it to be written (a clean
    // stop's last ack): whether it was.
    bool publish_ack_and_wait(std::string value, std::optional<HeadWrite> head,
                              std::chrono::milliseconds timeout);
    // History entries the node found written already with another value,
    // once each: `forged` when that value is not a head of this node signed
    // by one of its keys (set_head_keys): someone else wrote there; else
    // the node's own head at that seq had another hash (its log went back).
    struct HeadConflict {
        std::string key;
        bool forged = false;
    };
    std::vector<HeadConflict> take_head_conflicts();
    // The keys this node's heads are signed with (its own, and those
    // [fleet] signers lists for it): what a history entry is judged and
    // pruned by (an entry no key of it signed is never counted or pruned).
    void set_head_keys(std::vector<Ed25519Public> keys);
    // A full read now (the signers changed: everything held is verified again).
    // Counted, so that one asked while a full read is under way is not lost
    // when the loop starts its watch after it (it reads again at once).
    void resync() {
        ++resyncs_asked_;
        watch_stop_ = true;
    }
    static constexpr std::size_t kKeepHeads = 64;

private:
    explicit Watcher(Config c) : c_(std::move(c)) {}
    void watch_loop();
    void keep_loop();
    void push(Batch b);
    void set_error(const std::string& e);
    // Writes the ack (and head entry); false on failure (error set).
    bool write_ack(const std::string& ack, const std::optional<HeadWrite>& head);
    void prune_heads();
    // Sleeps up to `ms` unless stopping; false when stopping.
    bool nap(int ms);

    Config c_;
    std::unique_ptr<EtcdClient> watch_etcd_, keep_etcd_;
    unique_fd efd_;
    std::atomic<bool> stop_{false}, watch_stop_{false};
    std::atomic<std::uint64_t> resyncs_asked_{0};
    std::atomic<bool> watch_ok_{false}, keep_ok_{false};
    std::atomic<std::uint64_t> outages_{0};
    mutable std::mutex link_mu_;
    bool was_up_ = false;
    // Sets one of the two flags and counts a change of connected() to down.
    void set_link(std::atomic<bool>& flag, bool ok);
    std::atomic<std::int64_t> watch_started_ms_{0};
    mutable std::mutex mu_;
    std::condition_variable ack_ready_;  // wakes the keeper for a new ack
    std::vector<Batch> queue_;
    std::optional<std::string> ack_;
    std::optional<HeadWrite> head_;
    std::uint64_t ack_ticket_ = 0, written_ticket_ = 0;
    std::condition_variable ack_written_;
    std::vector<HeadConflict> conflicts_;
    std::vector<Ed25519Public> head_keys_;  // under mu_
    // Whether `value` is a head of this node at `seq` signed by one of head_keys_.
    bool own_head(const std::string& value, std::uint64_t seq);
    std::string error_;
    std::thread watch_thread_, keep_thread_;
};

}  // namespace jg::fleet
