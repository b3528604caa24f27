// The node agent's part of `jitgate extend` in a fleet (design.md §9): a
// grant this node holds whose document's end moved (an extension decided
// in etcd by a node's ledger) gets the new end here too, its map entry
// updated in place so that no connection drops, and an extend record
// saying so.  A grant that has ended here stays ended.
#include <fmt/format.h>

#include <algorithm>

#include "core/clock.h"
#include "core/protocol.h"
#include "fleet/agent.h"
#include "util/log.h"

namespace jg::fleet {

namespace {

// The granted extension of grant `id` that gave it the end `expires_us`:
// the last one decided (nothing when the view does not hold it).
const RequestDoc* extension_of(const FleetView& view, std::int64_t id) {
    const RequestDoc* last = nullptr;
    for (const auto& [rid, h] : view.requests)
        if (h.doc.row.extends == id && h.doc.row.state == "granted" &&
            (!last || h.doc.row.decided_us >= last->row.decided_us))
            last = &h.doc;
    return last;
}

}  // namespace

void Agent::move_end(const GrantRow& here, const Held<GrantDoc>& held) {
    const GrantRow& g = held.doc.row;
    if (auto moved = local_.move_fleet_end(here, g.expires_us); !moved) {
        // Recorded once per document version, as any version not applied here.
        reject("grant_rejected", {grant_key(c_.prefix, g.id), {}, 0, held.mod_revision, 0, 0},
               fmt::format("its new end {} was not applied: {}", rfc3339_us(g.expires_us), moved.error()));
        return;
    }
    ack_dirty_ = true;
    const std::int64_t now = clock_.wall_us();
    json ev = {{"type", "extend"},
               {"grant_id", g.id},
               {"uid", here.uid},
               {"user", here.user},
               {"port", here.port},
               {"proto", proto_name(here.proto)},
               {"old_expires_at", rfc3339_us(here.expires_us)},
               {"expires_at", rfc3339_us(g.expires_us)},
               {"duration_s", (g.expires_us - here.expires_us) / 1000000}};
    if (!here.src.empty()) ev["src"] = here.src;
    if (const RequestDoc* x = extension_of(view_, g.id)) {
        ev.update({{"request_id", x->row.id},
                   {"requester", x->row.user},
                   {"approvers", x->row.approvers},
                   {"reason", x->row.reason},
                   {"latency_ms", std::max<std::int64_t>(0, (now - x->row.decided_us) / 1000)}});
        if (!x->row.ticket.empty()) ev["ticket"] = x->row.ticket;
    }
    audit_.emit(std::move(ev));
    audit_.flush();  // now: after a kill, a restart finds the mirror in step and writes none
}

}  // namespace jg::fleet
