#pragma once
// The workflow's GrantSink (core/workflow.h) on the real kernel: grants go
// to GrantMaps, and a grant's end cuts the connections no grant covers any more.
#include <cstdint>
#include <vector>

#include "bpf/loader.h"
#include "core/workflow.h"

namespace jg {

class BpfGrantSink : public GrantSink {
public:
    Kernel* k = nullptr;                // set once the programs are loaded
    std::uint64_t connections_cut = 0;  // since start

    Result<bool> put(const KernelGrant& g) override;
    void remove(const KernelGrant& g) override;
    // Logs the connections the kernel could not end (it still refuses their packets).
    std::vector<CutConnection> cut_connections() override;
};

}  // namespace jg
