#include "fleet/verified.h"

#include <utility>

#include "core/audit_chain.h"

namespace jg::fleet {

std::string VerifiedDocs::key_of(const Trust& trust, std::string_view kind, std::string_view bytes) {
    // The fingerprint is 64 hex digits and the kind one of fleet/docs.h's
    // names: the newlines cannot be confused with either.
    std::string text;
    text.reserve(trust.fingerprint().size() + kind.size() + bytes.size() + 2);
    text.append(trust.fingerprint()).append("\n").append(kind).append("\n").append(bytes);
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
    known_ = std::exchange(next_, {});
    added_.clear();
    replace_ = true;
}

Result<bool> VerifiedDocs::load(Store& store) {
    if (loaded_) return true;
    loaded_ = true;
    return store.each_verified_key([&](std::string k) {
        if (known_.size() < kMaxKept) known_.insert(std::move(k));
    });
}

Result<bool> VerifiedDocs::save(Store& store) {
    if (!replace_ && added_.empty()) return true;
    Result<bool> done = store.begin();
    if (done && replace_) done = store.clear_verified_keys();
    if (replace_)
        for (auto it = known_.begin(); done && it != known_.end(); ++it) done = store.put_verified_key(*it);
    else
        for (auto it = added_.begin(); done && it != added_.end(); ++it) done = store.put_verified_key(*it);
    if (done) done = store.commit();
    if (!done) {
        store.abandon();
        return done;
    }
    replace_ = false;
    added_.clear();
    return true;
}

}  // namespace jg::fleet
