#include "bpf/link.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/unique_fd.h"

namespace jg {

std::string errstr(int e) { return std::strerror(e < 0 ? -e : e); }

std::string link_pin(const std::string& dir, const char* prog) { return dir + "/link_" + prog; }

int adopt_pinned(const std::string& pin, bpf_program* prog, Link* out, std::string* what) {
    Link link(bpf_link__open(pin.c_str()));
    if (!link) {
        *what = "open pinned link";
        return -errno;
    }
    if (int e = bpf_link__update_program(link.get(), prog)) {
        *what = "update program in pinned link";
        return e;
    }
    *out = std::move(link);
    return 0;
}

std::uint32_t obj_id(int fd) {
    bpf_link_info info{};  // the id is the first field of link, map and prog info alike
    std::uint32_t len = sizeof(info);
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

namespace {

// Whether `pin` names the object with id `id`; false when missing or another.
bool pin_holds(const std::string& pin, std::uint32_t id) {
    const unique_fd fd(bpf_obj_get(pin.c_str()));
    return fd && obj_id(fd.get()) == id;
}

}  // namespace

std::string repin(const std::string& pin, int fd) {
    const std::uint32_t id = obj_id(fd);
    if (id && pin_holds(pin, id)) return "";
    const bool existed = access(pin.c_str(), F_OK) == 0;
    if (existed) unlink(pin.c_str());
    if (bpf_obj_pin(fd, pin.c_str()) != 0)
        return fmt::format("its pin {} was {} and could not be made again: {}", pin,
                           existed ? "replaced" : "removed", errstr(errno));
    return fmt::format("its pin {} was {}; pinned again", pin,
                       existed ? "replaced by another object" : "removed");
}

}  // namespace jg
