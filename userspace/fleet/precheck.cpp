#include "fleet/precheck.h"

#include <algorithm>
#include <thread>

namespace jg::fleet {

std::vector<std::optional<CheckedDoc>> check_documents(const Trust& trust, const char* kind,
                                                       const std::vector<const KeyValue*>& kvs,
                                                       unsigned threads, const std::vector<bool>& known) {
    std::vector<std::optional<CheckedDoc>> out(kvs.size());
    // Slice i takes every threads-th entry from i: the slices are disjoint,
    // so the workers share nothing they write.
    auto work = [&](std::size_t first, std::size_t step) {
        for (std::size_t i = first; i < kvs.size(); i += step) {
            try {
                auto j = parse_object(kvs[i]->value, "grant document");
                std::optional<std::string> untrusted;
                if (j && !(i < known.size() && known[i])) untrusted = trust.refusal(kind, *j);
                out[i].emplace(CheckedDoc{std::move(j), std::move(untrusted)});
            } catch (...) {
                out[i].reset();
            }
        }
    };
    const std::size_t n = std::clamp<std::size_t>(threads, 1, std::max<std::size_t>(kvs.size(), 1));
    std::vector<std::thread> workers;
    try {
        for (std::size_t t = 1; t < n; ++t) workers.emplace_back(work, t, n);
    } catch (const std::system_error&) {
        // No thread to be had: the slices without one are left empty and
        // checked by the caller, one at a time.
    }
    work(0, n);
    for (auto& w : workers) w.join();
    return out;
}

}  // namespace jg::fleet
