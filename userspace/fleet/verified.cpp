#include "fleet/verified.h"

#include <fmt/format.h>

#include <utility>

#include "core/audit_chain.h"
#include "jitgate/version.h"
#include "util/crypto_api.h"

namespace jg::fleet {

namespace {

// What checks a signature, as one line: a release or a libcrypto that checks
// differently must not trust what this one kept.
const std::string& checker() {
    static const std::string line = fmt::format("{} jitgate {} {}", VerifiedDocs::kCheckVersion,
                                                JITGATE_VERSION, crypto().OpenSSL_version(OPENSSL_VERSION));
    return line;
}

}  // namespace

std::string VerifiedDocs::key_of(const Trust& trust, std::string_view kind, std::string_view bytes) {
    // The checker and the kind are text without a newline and the
    // fingerprint is 64 hex digits: the newlines cannot be confused with any.
    const std::string& who = checker();
    std::string text;
    text.reserve(who.size() + trust.fingerprint().size() + kind.size() + bytes.size() + 3);
    text.append(who)
        .append("\n")
        .append(trust.fingerprint())
        .append("\n")
        .append(kind)
        .append("\n")
        .append(bytes);
    return sha256_hex(text);
}

void VerifiedDocs::add(const std::string& key) {
    if (in_full_read_) {
        if (next_.size() < kMaxKept) next_.insert(key);
        return;
    }
    removed_.erase(key);
    if (known_.size() < kMaxKept && known_.insert(key).second) added_.insert(key);
}

void VerifiedDocs::begin_full_read() {
    in_full_read_ = true;
    next_.clear();
}

void VerifiedDocs::end_full_read() {
    if (!in_full_read_) return;
    in_full_read_ = false;
    for (const auto& k : known_)
        if (!next_.count(k)) {
            added_.erase(k);
            removed_.insert(k);
        }
    for (const auto& k : next_)
        if (!known_.count(k)) {
            removed_.erase(k);
            added_.insert(k);
        }
    known_ = std::exchange(next_, {});
}

Result<bool> VerifiedDocs::load(Store& store) {
    if (loaded_) return true;
    loaded_ = true;
    auto read = store.each_verified_key([&](std::string k) {
        if (known_.size() < kMaxKept)
            known_.insert(std::move(k));
        else
            rewrite_ = true;
    });
    if (!read) rewrite_ = true;
    return read;
}

Result<bool> VerifiedDocs::save(Store& store) {
    if (added_.empty() && removed_.empty() && !rewrite_) return true;
    if (auto began = store.begin(); !began) return began;
    // Every key written is one whose bytes verified under its signers, so
    // the table never holds a wrong one; what it may miss is checked again.
    Result<bool> done = true;
    if (rewrite_) {
        done = store.clear_verified_keys();
        for (auto it = known_.begin(); done && it != known_.end(); ++it) done = store.put_verified_key(*it);
    } else {
        for (auto it = added_.begin(); done && it != added_.end(); ++it) done = store.put_verified_key(*it);
        for (auto it = removed_.begin(); done && it != removed_.end(); ++it)
            done = store.delete_verified_key(*it);
    }
    if (done) done = store.commit();
    if (!done) {
        store.abandon();
        return done;
    }
    added_.clear();
    removed_.clear();
    rewrite_ = false;
    return true;
}

}  // namespace jg::fleet
