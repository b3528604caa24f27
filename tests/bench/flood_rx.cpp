// The deny flood's receiving end (see flood_gen.h): a veth with GRO and
// threaded NAPI, its NAPI kthread pinned to a CPU of its own, and the
// veth's own counters.
#include <dirent.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "bench.h"
#include "flood_gen.h"

namespace jgbench {

namespace {

// One ethtool ioctl on `ifname`; false if it failed.
bool ethtool(const std::string& ifname, void* data) {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname.c_str());
    ifr.ifr_data = static_cast<char*>(data);
    const bool ok = ioctl(fd, SIOCETHTOOL, &ifr) == 0;
    close(fd);
    return ok;
}

bool set_gro(const std::string& ifname, bool on) {
    ethtool_value v{};
    v.cmd = ETHTOOL_SGRO;
    v.data = on ? 1 : 0;
    return ethtool(ifname, &v);
}

// Writes `value` to /sys/class/net/<ifname>/<attr> of this network
// namespace: /sys shows the namespace of whoever mounted it, so a child
// mounts a sysfs of its own, in a mount namespace of its own, and writes
// there.
bool write_sysfs_net(const std::string& ifname, const std::string& attr, const std::string& value) {
    const std::string path = "/sys/class/net/" + ifname + "/" + attr;
    const pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0)
            _exit(1);
        const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
        _exit(fd >= 0 && write(fd, value.data(), value.size()) == ssize_t(value.size()) ? 0 : 1);
    }
    int status = 0;
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The kthread of the threaded NAPI of `ifname`: its name is
// "napi/<ifname>-<napi id>", cut to 15 characters.
pid_t find_napi_thread(const std::string& ifname) {
    const std::string want = ("napi/" + ifname + "-").substr(0, 15);
    DIR* d = opendir("/proc");
    if (!d) return -1;
    pid_t found = -1;
    while (dirent* e = readdir(d)) {
        const pid_t pid = pid_t(std::atoi(e->d_name));
        if (pid <= 0) continue;
        std::ifstream f(std::string("/proc/") + e->d_name + "/comm");
        std::string comm;
        if (std::getline(f, comm) && comm.compare(0, want.size(), want) == 0) {
            found = pid;
            break;
        }
    }
    closedir(d);
    return found;
}

}  // namespace

std::optional<std::uint64_t> ethtool_stat(const std::string& ifname, const std::string& name) {
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    if (!ethtool(ifname, &info) || info.n_stats == 0 || info.n_stats > 4096) return std::nullopt;
    const std::uint32_t n = info.n_stats;
    std::vector<std::uint8_t> sbuf(sizeof(ethtool_gstrings) + std::size_t(n) * ETH_GSTRING_LEN);
    auto* strings = reinterpret_cast<ethtool_gstrings*>(sbuf.data());
    strings->cmd = ETHTOOL_GSTRINGS;
    strings->string_set = ETH_SS_STATS;
    strings->len = n;
    std::vector<std::uint8_t> vbuf(sizeof(ethtool_stats) + std::size_t(n) * sizeof(std::uint64_t));
    auto* stats = reinterpret_cast<ethtool_stats*>(vbuf.data());
    stats->cmd = ETHTOOL_GSTATS;
    stats->n_stats = n;
    if (!ethtool(ifname, strings) || !ethtool(ifname, stats)) return std::nullopt;
    for (std::uint32_t i = 0; i < n && i < strings->len && i < stats->n_stats; ++i) {
        const char* s = reinterpret_cast<const char*>(strings->data + std::size_t(i) * ETH_GSTRING_LEN);
        if (name == std::string(s, strnlen(s, ETH_GSTRING_LEN))) return stats->data[i];
    }
    return std::nullopt;
}

Receiver::~Receiver() {
    // Gone already when the generator's namespace went (a veth pair goes
    // with either end).
    if (!ifname_.empty() && if_nametoindex(ifname_.c_str()) != 0) run({"ip", "link", "del", ifname_});
}

std::string Receiver::make(const std::string& ifname, const std::string& peer, int cpu) {
    if (run({"ip", "link", "add", ifname, "type", "veth", "peer", "name", peer}) != 0)
        return "cannot make the flood's veth pair";
    ifname_ = ifname;
    cpu_ = cpu;
    if (run({"ip", "link", "set", ifname, "up"}) != 0) return "cannot bring the flood's veth up";
    ifindex_ = int(if_nametoindex(ifname.c_str()));
    // GRO gives the veth its NAPI, without an XDP program (the nftables
    // variant) and across attaching and detaching one (so one kthread).
    if (!set_gro(ifname, true))
        return std::string("cannot turn GRO on for the veth: ") + std::strerror(errno);
    if (!write_sysfs_net(ifname, "threaded", "1")) return "cannot turn threaded NAPI on for the veth";
    if (!pin_napi())
        return napi_pid_ <= 0 ? "cannot find the veth's NAPI kthread"
                              : std::string("cannot pin the veth's NAPI kthread: ") + std::strerror(errno);
    return {};
}

bool Receiver::pin_napi() {
    // Found again each time: a new kthread if the veth's NAPI was remade.
    napi_pid_ = find_napi_thread(ifname_);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu_, &set);
    return napi_pid_ > 0 && sched_setaffinity(napi_pid_, sizeof(set), &set) == 0;
}

std::optional<std::uint64_t> Receiver::napi_runtime_ns() const {
    std::ifstream f("/proc/" + std::to_string(napi_pid_) + "/schedstat");
    std::uint64_t ns = 0;
    if (napi_pid_ > 0 && f >> ns) return ns;
    return std::nullopt;
}

std::optional<std::uint64_t> Receiver::frames_taken() const {
    return ethtool_stat(ifname_, "rx_queue_0_xdp_packets");
}

std::optional<std::uint64_t> Receiver::xdp_drops() const {
    return ethtool_stat(ifname_, "rx_queue_0_xdp_drops");
}

}  // namespace jgbench
