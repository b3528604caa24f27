#include "fleet/watcher.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>

#include <algorithm>
#include <cstring>

#include "core/audit_witness.h"
#include "core/protocol.h"
#include "fleet/docs.h"

namespace jg::fleet {

namespace {

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// How often the keeper renews the lease and looks for an ack to write.
constexpr int kKeepTickMs = 50;
constexpr std::int64_t kRenewEveryMs = 2000;
// After a failure, the watch tries again this much later.
constexpr int kRetryMs = 250;
// A watch that brings nothing this long is read again from scratch: etcd
// sends progress notifications only every 10 minutes by default
// (--experimental-watch-progress-notify-interval), so a quiet fleet's
// stream is not taken as dead sooner.
constexpr long kWatchIdleMs = 60000;

}  // namespace

Result<std::unique_ptr<Watcher>> Watcher::start(Config c) {
    std::unique_ptr<Watcher> w(new Watcher(std::move(c)));
    auto a = EtcdClient::open(w->c_.etcd);
    if (!a) return err(a.error());
    auto b = EtcdClient::open(w->c_.etcd);
    if (!b) return err(b.error());
    w->watch_etcd_ = std::move(*a);
    w->keep_etcd_ = std::move(*b);
    w->efd_ = unique_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!w->efd_) return err(fmt::format("eventfd: {}", std::strerror(errno)));
    w->watch_thread_ = std::thread([p = w.get()] { p->watch_loop(); });
    w->keep_thread_ = std::thread([p = w.get()] { p->keep_loop(); });
    return w;
}

Watcher::~Watcher() {
    {
        std::lock_guard<std::mutex> l(mu_);
        stop_ = true;
    }
    ack_ready_.notify_all();
    ack_written_.notify_all();
    watch_stop_ = true;
    if (watch_thread_.joinable()) watch_thread_.join();
    if (keep_thread_.joinable()) keep_thread_.join();
}

bool Watcher::nap(int ms) {
    for (int slept = 0; slept < ms && !stop_; slept += 20)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return !stop_;
}

void Watcher::push(Batch b) {
    {
        std::lock_guard<std::mutex> l(mu_);
        queue_.push_back(std::move(b));
    }
    const std::uint64_t one = 1;
    (void)!write(efd_.get(), &one, sizeof(one));
}

std::vector<Batch> Watcher::take() {
    std::uint64_t n = 0;
    (void)!read(efd_.get(), &n, sizeof(n));
    std::lock_guard<std::mutex> l(mu_);
    return std::exchange(queue_, {});
}

void Watcher::set_error(const std::string& e) {
    std::lock_guard<std::mutex> l(mu_);
    error_ = e;
}

void Watcher::set_link(std::atomic<bool>& flag, bool ok) {
    std::lock_guard<std::mutex> l(link_mu_);
    const bool up = ok && (&flag == &watch_ok_ ? keep_ok_ : watch_ok_);
    if (was_up_ && !up) ++outages_;  // counted before the flag shows it down
    flag = ok;
    was_up_ = up;
}

std::string Watcher::last_error() const {
    std::lock_guard<std::mutex> l(mu_);
    return error_;
}

void Watcher::publish_ack(std::string value, std::optional<HeadWrite> head) {
    {
        std::lock_guard<std::mutex> l(mu_);
        ack_ = std::move(value);
        ++ack_ticket_;
        // A newer head supersedes one not written yet: the ack carries the newest.
        if (head) head_ = std::move(head);
    }
    ack_ready_.notify_one();
}

bool Watcher::publish_ack_and_wait(std::string value, std::optional<HeadWrite> head,
                                   std::chrono::milliseconds timeout) {
    publish_ack(std::move(value), std::move(head));
    std::unique_lock<std::mutex> l(mu_);
    const std::uint64_t mine = ack_ticket_;
    return ack_written_.wait_for(l, timeout, [&] { return written_ticket_ >= mine || stop_; }) &&
           written_ticket_ >= mine;
}

std::vector<Watcher::HeadConflict> Watcher::take_head_conflicts() {
    std::lock_guard<std::mutex> l(mu_);
    return std::exchange(conflicts_, {});
}

void Watcher::set_head_keys(std::vector<Ed25519Public> keys) {
    std::lock_guard<std::mutex> l(mu_);
    head_keys_ = std::move(keys);
}

bool Watcher::own_head(const std::string& value, std::uint64_t seq) {
    auto h = parse_head(parse_json_bounded(value));
    std::lock_guard<std::mutex> l(mu_);
    return h && h->node == c_.node && h->seq == seq && verify_head(head_keys_, *h);
}

bool Watcher::write_ack(const std::string& ack, const std::optional<HeadWrite>& head) {
    const std::string key = ack_key(c_.prefix, c_.node);
    if (!head) {
        auto put = keep_etcd_->put(key, ack);
        if (!put) set_error(put.error());
        return bool(put);
    }
    // The history entry is written once: a head already there is evidence
    // (the same one, or another hash for that seq), never written over.
    auto txn =
        keep_etcd_->txn({{head->key, Compare::Target::Create, 0, {}}},
                        {{TxnOp::Kind::Put, head->key, head->value, 0}, {TxnOp::Kind::Put, key, ack, 0}},
                        {{TxnOp::Kind::Put, key, ack, 0}});
    if (!txn) {
        set_error(txn.error());
        return false;
    }
    if (!txn->succeeded) {
        // The same seq and hash published again (another time) is no conflict.
        auto hash_of = [](const std::string& v) {
            const json j = parse_json_bounded(v);
            return j.is_object() && j.contains("hash") && j["hash"].is_string() ? j["hash"].get<std::string>()
                                                                                : std::string();
        };
        auto there = keep_etcd_->get(head->key);
        if (there && *there && hash_of((*there)->value) != hash_of(head->value)) {
            // Judged only once its signature is checked: what this node did
            // not sign is someone else's writing, not this log going back.
            const bool forged = !own_head((*there)->value, parse_key(c_.prefix, head->key).seq);
            std::lock_guard<std::mutex> l(mu_);
            if (conflicts_.size() < 16) conflicts_.push_back({head->key, forged});
        }
        return true;
    }
    prune_heads();
    return true;
}

// Keeps the kKeepHeads highest seqs: a head that went backwards is lower
// than those before it, so the evidence is what stays.
void Watcher::prune_heads() {
    auto all = keep_etcd_->get_prefix(heads_prefix(c_.prefix, c_.node));
    if (!all || all->kvs.size() <= kKeepHeads) return;
    // Only this node's signed heads count and go: entries someone else wrote
    // (high seqs, say) must not push the evidence out; they stay for
    // `audit verify --fleet` to name.
    std::vector<std::string> own;
    for (const auto& kv : all->kvs)
        if (own_head(kv.value, parse_key(c_.prefix, kv.key).seq)) own.push_back(kv.key);
    std::vector<TxnOp> dels;
    // Keys sort by seq (20 digits): the first ones are the oldest.
    for (std::size_t i = 0; i + kKeepHeads < own.size(); ++i)
        dels.push_back({TxnOp::Kind::Delete, own[i], {}, 0});
    if (dels.empty()) return;
    if (auto t = keep_etcd_->txn({}, dels); !t) set_error(t.error());
}

void Watcher::watch_loop() {
    const std::string under = c_.prefix + "/";
    while (!stop_) {
        const std::uint64_t asked = resyncs_asked_;
        // Large pages: a full read of 10,000 grants is a few round trips.
        auto snap = watch_etcd_->get_prefix(under, 0, 5000);
        if (!snap) {
            set_error(snap.error());
            set_link(watch_ok_, false);
            if (!nap(kRetryMs)) break;
            continue;
        }
        const std::int64_t rev = snap->revision;
        push(Batch{true, rev, std::move(snap->kvs), {}});
        set_link(watch_ok_, true);
        watch_stop_ = false;
        // A resync asked during this read may have come too late for it.
        if (resyncs_asked_ != asked) watch_stop_ = true;
        if (stop_) break;  // the destructor may have asked between the two
        watch_started_ms_ = steady_ms();
        const WatchEnd end = watch_etcd_->watch(
            under, rev + 1,
            [this](std::int64_t revision, std::vector<WatchEvent>& events) {
                Batch b{false, revision, {}, {}};
                for (auto& e : events) (e.deleted ? b.deletes : b.puts).push_back(std::move(e.kv));
                push(std::move(b));
            },
            watch_stop_, kWatchIdleMs);
        if (stop_) break;
        // Compacted, quiet for kWatchIdleMs, failed, or time for the periodic
        // full read: start over with a full read, which says whether etcd
        // answers (a watch that ends at once waits a little first).
        if (!end.error.empty() && end.compact_revision == 0) set_error(end.error);
        if (steady_ms() - watch_started_ms_ < 1000 && !nap(kRetryMs)) break;
    }
}

void Watcher::keep_loop() {
    std::int64_t lease = 0, renewed_ms = 0;
    std::optional<std::string> writing;
    while (!stop_) {
        {
            // A new ack is written at once: a --wait is waiting for it.
            std::unique_lock<std::mutex> l(mu_);
            ack_ready_.wait_for(l, std::chrono::milliseconds(kKeepTickMs),
                                [this] { return ack_.has_value() || stop_; });
        }
        if (stop_) break;
        // The periodic full read: the watch is ended, its loop reads again.
        if (watch_ok_ && steady_ms() - watch_started_ms_ >= c_.resync.count()) watch_stop_ = true;
        bool ok = true;
        if (lease == 0 || steady_ms() - renewed_ms >= kRenewEveryMs) {
            if (lease != 0) {
                auto alive = keep_etcd_->lease_keepalive(lease);
                if (!alive)
                    ok = false, set_error(alive.error());
                else if (!*alive)
                    lease = 0;  // expired while we were away: register again
                else
                    renewed_ms = steady_ms();
            }
            if (ok && lease == 0) {
                auto id = keep_etcd_->lease_grant(c_.lease_ttl_s);
                if (!id) {
                    ok = false;
                    set_error(id.error());
                } else if (auto put = keep_etcd_->put(node_key(c_.prefix, c_.node), c_.registration, *id);
                           !put) {
                    ok = false;
                    set_error(put.error());
                } else {
                    lease = *id;
                    renewed_ms = steady_ms();
                }
            }
        }
        if (ok) {
            std::optional<HeadWrite> head;
            std::uint64_t ticket = 0;
            {
                std::lock_guard<std::mutex> l(mu_);
                if (ack_) {
                    writing = std::exchange(ack_, std::nullopt);
                    head = std::exchange(head_, std::nullopt);
                    ticket = ack_ticket_;
                }
            }
            if (writing) {
                if (!write_ack(*writing, head)) {
                    ok = false;
                    std::lock_guard<std::mutex> l(mu_);
                    if (!ack_) ack_ = std::move(writing);  // not newer one waiting: write this again
                    if (!head_) head_ = std::move(head);
                } else {
                    std::lock_guard<std::mutex> l(mu_);
                    written_ticket_ = std::max(written_ticket_, ticket);
                }
                ack_written_.notify_all();
                writing.reset();
            }
        }
        set_link(keep_ok_, ok);
        // A failed write is tried again, but not at once.
        if (!ok && !nap(kRetryMs)) break;
    }
    // A clean stop: the node is gone now, not in lease_ttl_s.
    if (lease != 0) (void)keep_etcd_->lease_revoke(lease);
}

}  // namespace jg::fleet
