#pragma once
// The systemd notification protocol (sd_notify(3)): one datagram of
// "KEY=VALUE\n" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path,
// or "@name" in the abstract namespace).  Without $NOTIFY_SOCKET (not run by
// systemd with Type=notify) nothing is sent.
#include <string>

#include "core/result.h"

namespace jg {

// Sends `state` ("READY=1\nSTATUS=..."); true when sent, false when there is
// no $NOTIFY_SOCKET; an error when the socket cannot be reached.
Result<bool> sd_notify_send(const std::string& state);

}  // namespace jg
