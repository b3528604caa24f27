#pragma once
// Private to userspace/bpf: one owner of a bpf_link, and the pin helpers
// the cgroup links, the XDP links and the map pins share.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstdint>
#include <string>

namespace jg {

class Link {
public:
    Link() = default;
    explicit Link(bpf_link* l) : l_(l) {}
    Link(Link&& o) noexcept : l_(o.release()) {}
    Link& operator=(Link&& o) noexcept {
        if (this != &o) {
            reset();
            l_ = o.release();
        }
        return *this;
    }
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;
    ~Link() { reset(); }
    void reset() {
        if (l_) bpf_link__destroy(l_);
        l_ = nullptr;
    }
    bpf_link* get() const { return l_; }
    int fd() const { return bpf_link__fd(l_); }
    explicit operator bool() const { return l_ != nullptr; }

private:
    bpf_link* release() {
        bpf_link* l = l_;
        l_ = nullptr;
        return l;
    }
    bpf_link* l_ = nullptr;
};

// strerror of an errno, positive or negative.
std::string errstr(int e);

// Where the link of the program `prog` is pinned: <dir>/link_<prog>.
std::string link_pin(const std::string& dir, const char* prog);

// A link an earlier run pinned, now running `prog`: the swap leaves no moment
// without enforcement.  0, or -errno with *what saying which step failed.
int adopt_pinned(const std::string& pin, bpf_program* prog, Link* out, std::string* what);

// The kernel's id of a BPF object (link or map) behind fd, 0 if unknown.
std::uint32_t obj_id(int fd);

// Makes `pin` name the object behind fd (removing a missing or foreign pin
// first): "" when it already did, else what was repaired or why it failed.
std::string repin(const std::string& pin, int fd);

}  // namespace jg
