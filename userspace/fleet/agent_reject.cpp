// Documents under the prefix this node refuses (fleet/agent.h): each one
// recorded once, but at most kRejectsPerBatch a batch.  Anyone who can write
// etcd can put any number of keys there, and every full read (every few
// minutes) met them all again: 100000 junk keys were 100000 records per read
// on every node.  The rest of a batch's refusals are counted, and written as
// one record when the batch ends: never dropped without a trace.
#include <fmt/format.h>

#include "core/text.h"
#include "fleet/agent.h"
#include "fleet/docs.h"
#include "util/log.h"

namespace jg::fleet {

void Agent::reject(const char* type, const KeyValue& kv, const std::string& why, const json* doc) {
    if (rejected_.size() >= kMaxRejectedRemembered) rejected_.clear();  // bounded: a record may repeat
    if (!rejected_.insert({kv.key, kv.mod_revision}).second) return;
    ++rejected_count_;
    ack_dirty_ = true;
    if (++batch_rejects_ > kRejectsPerBatch) {
        ++batch_rejects_counted_;
        if (batch_rejects_keys_.size() < 3) batch_rejects_keys_.push_back(printable_key(kv.key));
        return;
    }
    // `why` may quote the document (a fleet policy's names): escaped for the log's readers.
    log(fmt::format("fleet: ignored {} (revision {}): {}", printable_key(kv.key), kv.mod_revision,
                    escape_terminal(why)));
    json ev = {{"type", type},
               {"key", printable_key(kv.key)},
               {"revision", kv.mod_revision},
               {"reason", fmt::format("not applied: {}", why)}};
    // The signer the document names (anyone's text: printable or nothing).
    if (doc && doc->is_object() && doc->value("signer", json()).is_string()) {
        const std::string signer = (*doc)["signer"].get<std::string>();
        ev["signer"] = valid_fleet_name(signer) ? signer : printable_key(signer.substr(0, 64));
    }
    audit_.emit(std::move(ev));
}

void Agent::close_rejects() {
    batch_rejects_ = 0;
    if (batch_rejects_counted_ == 0) return;
    std::string keys;
    for (const auto& k : batch_rejects_keys_) keys += (keys.empty() ? "" : ", ") + k;
    const std::string why = fmt::format(
        "{} more documents under the prefix were refused in this read, counted here rather than recorded one "
        "by one (among them {})",
        batch_rejects_counted_, keys);
    log(fmt::format("fleet: {}", why));
    audit_.emit({{"type", "grant_rejected"}, {"suppressed", batch_rejects_counted_}, {"reason", why}});
    batch_rejects_counted_ = 0;
    batch_rejects_keys_.clear();
}

}  // namespace jg::fleet
