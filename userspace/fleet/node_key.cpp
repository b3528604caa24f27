#include "fleet/node_key.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/selector.h"
#include "util/unique_fd.h"

namespace jg::fleet {

namespace {

constexpr std::size_t kMaxKeyFile = 256;

std::string dir_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

Result<Ed25519Key> read_key(const std::string& path, int fd) {
    struct stat st {};
    if (fstat(fd, &st) != 0)
        return err(fmt::format("cannot stat the node key {}: {}", path, std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) return err(fmt::format("the node key {} is not a regular file", path));
    if (st.st_uid != geteuid())
        return err(fmt::format("the node key {} belongs to uid {}, not to the daemon's user; fix its owner",
                               path, st.st_uid));
    if (st.st_mode & 077)
        return err(fmt::format("the node key {} is readable or writable by others (mode {:o}); chmod 0600 it",
                               path, st.st_mode & 07777));
    char buf[kMaxKeyFile + 1];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    if (n < 0) return err(fmt::format("cannot read the node key {}: {}", path, std::strerror(errno)));
    std::string_view text(buf, static_cast<std::size_t>(n));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    auto seed = base64_decode(text);
    if (!seed || seed->size() != 32)
        return err(fmt::format("the node key {} does not hold an Ed25519 key (32 bytes, base64)", path));
    return Ed25519Key::from_seed(*seed);
}

Result<Ed25519Key> create_key(const std::string& path) {
    auto key = Ed25519Key::generate();
    if (!key) return key;
    unique_fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return err(fmt::format("cannot create the node key {}: {}", path, std::strerror(errno)));
    std::string line = base64_encode(key->seed()) + "\n";
    if (write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        fsync(fd.get()) != 0) {
        int e = errno;
        unlink(path.c_str());
        return err(fmt::format("cannot write the node key {}: {}", path, std::strerror(e)));
    }
    unique_fd dir(open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) fsync(dir.get());
    return key;
}

}  // namespace

Result<Ed25519Key> load_key(const std::string& path) {
    unique_fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return err(fmt::format("cannot open the node key {}: {}", path, std::strerror(errno)));
    return read_key(path, fd.get());
}

Result<Ed25519Key> load_or_create_key(const std::string& path) {
    unique_fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd) return read_key(path, fd.get());
    if (errno != ENOENT)
        return err(fmt::format("cannot open the node key {}: {}", path, std::strerror(errno)));
    auto made = create_key(path);
    // Two processes creating it at once: the one that lost reads the winner's.
    if (!made && access(path.c_str(), F_OK) == 0) return load_key(path);
    return made;
}

Result<Signer> parse_signer(std::string_view entry) {
    auto colon = entry.find(':');
    if (colon == std::string_view::npos)
        return err(
            fmt::format("signer \"{}\" is not NODE:BASE64KEY (what jitgated --print-key prints)", entry));
    Signer s;
    s.node = std::string(entry.substr(0, colon));
    if (!valid_fleet_name(s.node)) return err(fmt::format("signer \"{}\" names no valid node", entry));
    auto key = parse_ed25519_public(entry.substr(colon + 1));
    if (!key) return err(fmt::format("signer \"{}\": the key is not 32 bytes of standard base64", entry));
    s.key = *key;
    return s;
}

std::string signer_text(std::string_view node, const Ed25519Key& key) {
    return fmt::format("{}:{}", node, key.public_base64());
}

}  // namespace jg::fleet
