#include "web/page_frame.h"

#include <fmt/format.h>

#include "web/html.h"

namespace jg::web {

std::string csrf_input(const PageContext& c) {
    return fmt::format(R"(<input type="hidden" name="csrf" value="{}">)", html_escape(c.csrf));
}

std::string page_frame(const PageContext& c, const std::string& title, const std::string& body) {
    std::string nav;
    if (!c.user.empty()) {
        nav = fmt::format(
            R"(<nav aria-label="Pages"><a href="/requests">Pending requests</a> <a href="/grants">Active grants</a> )"
            R"(<a href="/audit">Audit</a></nav>)"
            R"(<form class="signout" method="post" action="/logout"><span>Signed in as <b>{}</b></span> {})"
            R"(<button type="submit">Sign out</button></form>)",
            html_escape(c.user), csrf_input(c));
    }
    std::string notice;
    if (!c.notice.empty())
        notice = fmt::format(R"(<p class="notice{}" role="status">{}</p>)", c.notice_is_error ? " error" : "",
                             html_escape(c.notice));
    return fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} - jitgate</title>
<link rel="stylesheet" href="/static/jitgate.css">
<script src="/static/countdown.js" defer></script>
</head><body>
<header><span class="brand">jitgate</span> {}</header>
<main id="main">
<h1>{}</h1>
{}{}
</main></body></html>
)",
                       html_escape(title), nav, html_escape(title), notice, body);
}

}  // namespace jg::web
