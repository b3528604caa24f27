#include "cli/token_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "cli/http_post.h"
#include "core/protocol.h"
#include "core/text.h"
#include "identity/jwk.h"
#include "util/unique_fd.h"

namespace jg {

namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxTokenFileBytes = 64 * 1024;

// "https://web.example.com:8443/jg" -> "web-https_web.example.com_8443_jg.json"
std::string file_name(const std::string& url) {
    std::string out = "web-";
    for (char c : url) {
        const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '.' || c == '-';
        if (keep)
            out += c;
        else if (out.back() != '_')
            out += '_';
    }
    return out + ".json";
}

// The directory, made 0700 (and its parent ~/.config when missing).
Result<std::string> make_dir() {
    auto dir = token_dir();
    if (!dir) return dir;
    const std::string parent = dir->substr(0, dir->rfind('/'));
    if (mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST)
        return err(fmt::format("cannot create {}: {}", parent, std::strerror(errno)));
    if (mkdir(dir->c_str(), 0700) != 0 && errno != EEXIST)
        return err(fmt::format("cannot create {}: {}", *dir, std::strerror(errno)));
    struct stat st {};
    if (lstat(dir->c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return err(
            fmt::format("{} is not a directory of yours: remove it, then run jitgate login again", *dir));
    if ((st.st_mode & 077) != 0 && chmod(dir->c_str(), 0700) != 0)
        return err(fmt::format("cannot make {} private (mode 0700): {}", *dir, std::strerror(errno)));
    return dir;
}

Result<StoredToken> parse_token_file(const std::string& text, const std::string& path) {
    json j = parse_json_bounded(text);
    auto str = [&j](const char* k) {
        auto v = j.find(k);
        return v != j.end() && v->is_string() ? v->get<std::string>() : std::string();
    };
    if (j.is_discarded() || !j.is_object() || str("id_token").empty() || str("issuer").empty())
        return err(fmt::format(
            "{} is not a token file jitgate wrote: remove it, then run jitgate login again", path));
    StoredToken t{str("url"),
                  str("issuer"),
                  str("client_id"),
                  str("token_endpoint"),
                  str("id_token"),
                  str("refresh_token"),
                  0,
                  str("user")};
    if (auto e = j.find("expires_at"); e != j.end() && e->is_number_integer()) t.expires_at = *e;
    return t;
}

}  // namespace

Result<std::string> normalise_web_url(const std::string& url) {
    std::string u = url;
    while (!u.empty() && u.back() == '/') u.pop_back();
    if (auto ok = check_http_url(u, "the jitgate-web URL"); !ok) return err(ok.error());
    if (u.find_first_of("?#") != std::string::npos)
        return err(fmt::format("the jitgate-web URL {} must not hold a query or fragment", url));
    return u;
}

Result<std::string> token_dir() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    if (xdg && xdg[0] == '/') return std::string(xdg) + "/jitgate";
    const char* home = std::getenv("HOME");
    std::string h = home && home[0] == '/' ? home : "";
    if (h.empty())
        if (const passwd* pw = getpwuid(geteuid()); pw && pw->pw_dir && pw->pw_dir[0] == '/') h = pw->pw_dir;
    if (h.empty()) return err("cannot tell where to keep tokens: set HOME or XDG_CONFIG_HOME");
    return h + "/.config/jitgate";
}

Result<std::string> token_path(const std::string& url) {
    auto dir = token_dir();
    if (!dir) return dir;
    return *dir + "/" + file_name(url);
}

Result<std::optional<StoredToken>> load_token(const std::string& url) {
    auto path = token_path(url);
    if (!path) return err(path.error());
    unique_fd fd(open(path->c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd && errno == ENOENT) return std::optional<StoredToken>();
    if (!fd)
        return err(fmt::format("cannot read the token file {}: {}; remove it, then run jitgate login {}",
                               *path, std::strerror(errno), url));
    struct stat st {};
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
        return err(
            fmt::format("the token file {} is not a file of yours, so it is not used: remove it, then "
                        "run jitgate login {}",
                        *path, url));
    if ((st.st_mode & 077) != 0)
        return err(
            fmt::format("the token file {} may be read by others (mode {:04o}), so it is not used: "
                        "remove it, then run jitgate login {}",
                        *path, st.st_mode & 07777, url));
    std::string text(std::min<std::size_t>(static_cast<std::size_t>(st.st_size), kMaxTokenFileBytes + 1),
                     '\0');
    const ssize_t n = read(fd.get(), text.data(), text.size());
    if (n < 0 || static_cast<std::size_t>(n) > kMaxTokenFileBytes)
        return err(
            fmt::format("cannot read the token file {}: remove it, then run jitgate login {}", *path, url));
    text.resize(static_cast<std::size_t>(n));
    auto t = parse_token_file(text, *path);
    if (!t) return err(t.error());
    if (t->url != url) return std::optional<StoredToken>();  // another URL's file of the same name
    return std::optional<StoredToken>(std::move(*t));
}

Result<int> lock_token(const std::string& url) {
    auto dir = make_dir();
    if (!dir) return err(dir.error());
    const std::string path = *dir + "/" + file_name(url) + ".lock";
    unique_fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return err(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    // Another command renewing holds it for one bounded exchange with the
    // provider; one stopped (Ctrl-Z) would hold it for ever: 30 s at most.
    for (int tries = 0; flock(fd.get(), LOCK_EX | LOCK_NB) != 0; ++tries) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return err(fmt::format("cannot lock {}: {}", path, std::strerror(errno)));
        if (tries >= 300)
            return err(
                fmt::format("another jitgate command has been renewing the sign-in for 30 s ({} is "
                            "locked); end it, or run jitgate login again",
                            path));
        usleep(100 * 1000);
    }
    return fd.release();
}

Result<std::string> save_token(const StoredToken& t) {
    auto dir = make_dir();
    if (!dir) return dir;
    const std::string path = *dir + "/" + file_name(t.url);
    const std::string tmp = fmt::format("{}.tmp-{}", path, getpid());
    const std::string text = json_text({{"url", t.url},
                                        {"issuer", t.issuer},
                                        {"client_id", t.client_id},
                                        {"token_endpoint", t.token_endpoint},
                                        {"id_token", t.id_token},
                                        {"refresh_token", t.refresh_token},
                                        {"expires_at", t.expires_at},
                                        {"user", t.user}}) +
                             "\n";
    unlink(tmp.c_str());
    unique_fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    bool ok = fd && fchmod(fd.get(), 0600) == 0;
    for (std::size_t off = 0; ok && off < text.size();) {
        const ssize_t n = write(fd.get(), text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        off += ok ? static_cast<std::size_t>(n) : 0;
    }
    ok = ok && fsync(fd.get()) == 0;
    const int saved = errno;
    fd.reset();
    if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = ok ? errno : saved;
        unlink(tmp.c_str());
        return err(fmt::format("cannot write the token file {}: {}", path, std::strerror(e)));
    }
    return path;
}

Result<bool> forget_token(const std::string& url) {
    auto path = token_path(url);
    if (!path) return err(path.error());
    if (unlink(path->c_str()) == 0) return true;
    if (errno == ENOENT) return false;
    return err(fmt::format("cannot remove the token file {}: {}", *path, std::strerror(errno)));
}

Result<bool> read_token_claims(const std::string& id_token, std::int64_t& exp, std::string& user) {
    const auto a = id_token.find('.');
    const auto b = a == std::string::npos ? a : id_token.find('.', a + 1);
    std::string payload;
    if (b == std::string::npos ||
        !base64url_decode(std::string_view(id_token).substr(a + 1, b - a - 1), payload))
        return err("the identity provider's ID token is not a JWT");
    json j = parse_json_bounded(payload);
    if (j.is_discarded() || !j.is_object() || !j.contains("exp") || !j["exp"].is_number_integer())
        return err("the identity provider's ID token has no expiry (exp)");
    exp = j["exp"].get<std::int64_t>();
    if (auto u = j.find("preferred_username"); u != j.end() && u->is_string()) user = u->get<std::string>();
    return true;
}

}  // namespace jg
