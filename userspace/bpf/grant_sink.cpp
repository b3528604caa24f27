#include "bpf/grant_sink.h"

#include <fmt/format.h>

#include <cstring>

#include "util/log.h"

namespace jg {

Result<bool> BpfGrantSink::put(const KernelGrant& g) {
    if (!k) return err("the BPF maps are not loaded");
    return k->grants().put(g);
}

void BpfGrantSink::remove(const KernelGrant& g) {
    if (k) k->grants().remove(g);
}

std::vector<CutConnection> BpfGrantSink::cut_connections() {
    std::vector<CutConnection> out;
    if (!k || !k->can_cut()) return out;
    auto recs = k->cut_connections();
    if (!recs) {
        log(recs.error());
        return out;
    }
    for (const jg_cut_rec& r : *recs) {
        Addr16 peer;
        std::memcpy(peer.data(), r.peer, 16);
        const int e = -static_cast<std::int32_t>(r.result);
        if (e) {  // the kernel still refuses its packets; it was not reset
            log(fmt::format("could not end the TCP connection {} port {} -> port {}: {}", format_addr(peer),
                            r.pport, r.lport, std::strerror(e)));
            continue;
        }
        CutConnection c;
        c.grant_id = static_cast<std::int64_t>(r.grant_id);
        c.local = r.kind == JG_CUT_LOCAL;
        c.uid = r.uid;
        c.peer = peer;
        c.port = c.local ? r.pport : r.lport;
        out.push_back(c);
    }
    connections_cut += out.size();
    return out;
}

}  // namespace jg
