#include "web/assets.h"

namespace jg::web {

const char* const kStylesheet =
    R"(body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{display:flex;gap:1.5em;align-items:center;flex-wrap:wrap;padding:.6em 1em;background:#21324a;color:#fff}
header a{color:#fff}.brand{font-weight:700}.signout{margin-left:auto}
main{padding:1em}table{border-collapse:collapse;width:100%;background:#fff}
caption{text-align:left;font-weight:600;padding:.4em 0}
th,td{border:1px solid #ccc;padding:.35em .5em;text-align:left;vertical-align:top}
td.reason{white-space:pre-wrap;word-break:break-word}
form{display:inline-block;margin:.15em .3em .15em 0}
.notice{padding:.5em;background:#e6f4ea;border:1px solid #7cb98a}.notice.error,.error{background:#fdecea;border-color:#e0837a}
a:focus,button:focus,input:focus{outline:3px solid #f5a623;outline-offset:1px}
.button{display:inline-block;padding:.4em 1em;background:#21324a;color:#fff;text-decoration:none}
.countdown{font-variant-numeric:tabular-nums}
)";

// Counts down every .countdown from its data-left seconds. The page works
// without it (the server writes the time left when it renders).
const char* const kCountdownScript = R"('use strict';
(function () {
  function fmt(s) {
    if (s <= 0) return '0s';
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    if (h > 0) return h + 'h' + pad(m) + 'm' + pad(r) + 's';
    if (m > 0) return m + 'm' + pad(r) + 's';
    return r + 's';
  }
  function start() {
    var loaded = Date.now();
    var els = Array.prototype.slice.call(document.querySelectorAll('.countdown'));
    els.forEach(function (el) { el.setAttribute('data-live', '1'); });
    setInterval(function () {
      var gone = Math.floor((Date.now() - loaded) / 1000);
      els.forEach(function (el) {
        var left = parseInt(el.getAttribute('data-left'), 10) - gone;
        el.textContent = fmt(left);
      });
    }, 1000);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
)";

}  // namespace jg::web
