#pragma once
// Keeps the kernel's maps in step with what the daemon knows: the grants
// with the state store, the local addresses and routes with the host, and
// the rate-limit windows closed into records.  The verbs are userspace/bpf's;
// this is where the daemon decides when and what to tell about them.
#include <cstdint>
#include <functional>

#include "bpf/grant_sink.h"
#include "bpf/loader.h"
#include "core/store.h"
#include "daemon/kernel_records.h"

namespace jg {

class KernelSync {
public:
    // `tamper` writes a tamper_detected record from the fields it is given.
    KernelSync(KernelRecords& records, std::function<void(json)> tamper)
        : records_(records), tamper_(std::move(tamper)) {}

    // The loaded programs' maps, from here on (before the grants go in).
    void attach(Kernel& k) {
        k_ = &k;
        sink_.k = &k;
    }
    // What the workflow writes grants through.
    BpfGrantSink& sink() { return sink_; }
    std::uint64_t connections_cut() const { return sink_.connections_cut; }

    // Local addresses and the prefixes routed here.  An incomplete route
    // dump keeps the last known prefixes and is tried again (routes_retry).
    void sync_local_addrs();
    bool routes_retry() const { return routes_retry_; }
    // The store is the truth: every active grant in the maps and nothing
    // else; an entry it does not know is removed and told as tamper.
    Result<bool> reconcile_grants(Store& store);
    // Rate-limit windows idle for a second, closed into records.
    void close_idle_windows();
    // A new bloom filter in front of the remote grants once removals left
    // the old one stale (paced by what a rebuild costs).
    void refresh_bloom();

private:
    KernelRecords& records_;
    std::function<void(json)> tamper_;
    Kernel* k_ = nullptr;
    BpfGrantSink sink_;
    bool routes_retry_ = false;
};

}  // namespace jg
