#include "fleet/verified.h"

#include <utility>

#include "core/audit_chain.h"

namespace jg::fleet {

std::string VerifiedDocs::key_of(const Trust& trust, std::string_view kind, std::string_view bytes) {
    // The version and the kind are constants without a newline and the
    // fingerprint is 64 hex digits: the newlines cannot be confused with any.
    std::string text(kCheckVersion);
    text.reserve(text.size() + trust.fingerprint().size() + kind.size() + bytes.size() + 3);
    text.append("\n").append(trust.fingerprint()).append("\n").append(kind).append("\n").append(bytes);
    return sha256_hex(text);
}

void VerifiedDocs::add(const std::string& key) {
    if (in_full_read_) {
        if (next_.size() < kMaxKept) next_.insert(key);
        return;
    }
    if (known_.size() < kMaxKept && known_.insert(key).second) added_.push_back(key);
}

void VerifiedDocs::begin_full_read() {
    in_full_read_ = true;
    next_.clear();
}

void VerifiedDocs::end_full_read() {
    if (!in_full_read_) return;
    in_full_read_ = false;
    for (const auto& k : known_)
        if (!next_.count(k)) removed_.push_back(k);
    for (const auto& k : next_)
        if (!known_.count(k)) added_.push_back(k);
    known_ = std::exchange(next_, {});
}

Result<bool> VerifiedDocs::load(Store& store) {
    if (loaded_) return true;
    loaded_ = true;
    return store.each_verified_key([&](std::string k) {
        if (known_.size() < kMaxKept) known_.insert(std::move(k));
    });
}

Result<bool> VerifiedDocs::save(Store& store) {
    if (added_.empty() && removed_.empty()) return true;
    if (auto began = store.begin(); !began) return began;
    // A key both added and dropped since the last save ends up dropped: at
    // worst a restart checks that document again.  Every key written is one
    // whose bytes verified under its signers, so none can be wrong.
    Result<bool> done = true;
    for (auto it = added_.begin(); done && it != added_.end(); ++it) done = store.put_verified_key(*it);
    for (auto it = removed_.begin(); done && it != removed_.end(); ++it)
        done = store.delete_verified_key(*it);
    if (done) done = store.commit();
    if (!done) {
        store.abandon();
        return done;
    }
    added_.clear();
    removed_.clear();
    return true;
}

}  // namespace jg::fleet
