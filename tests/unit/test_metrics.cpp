// Metrics: the Prometheus text exposition, the HTTP responses, the address
// the daemon serves them on, its policy key and the CLI sub-command.
#include <doctest/doctest.h>

#include <string>

#include "cli/app.h"
#include "cli/render.h"
#include "core/metrics.h"
#include "core/policy.h"

namespace test_metrics {
using namespace jg;

TEST_SUITE("metrics") {
    TEST_CASE("render_prometheus: HELP, TYPE, then samples with escaped labels") {
        MetricsBuilder m;
        m.family("jitgate_grants_active", "gauge", "active grants\nby port")
            .sample(2, {{"port", "5432"}, {"proto", "tcp"}})
            .sample(0, {{"port", "53"}, {"proto", "udp"}});
        m.family("jitgate_events_lost_total", "counter", "lost back\\slash").sample(12345678901.0);
        m.family("jitgate_odd", "gauge", "odd labels").sample(0.5, {{"v", "a\"b\\c\nd"}});
        CHECK(render_prometheus(m.result()) ==
              "# HELP jitgate_grants_active active grants\\nby port\n"
              "# TYPE jitgate_grants_active gauge\n"
              "jitgate_grants_active{port=\"5432\",proto=\"tcp\"} 2\n"
              "jitgate_grants_active{port=\"53\",proto=\"udp\"} 0\n"
              "# HELP jitgate_events_lost_total lost back\\\\slash\n"
              "# TYPE jitgate_events_lost_total counter\n"
              "jitgate_events_lost_total 12345678901\n"
              "# HELP jitgate_odd odd labels\n"
              "# TYPE jitgate_odd gauge\n"
              "jitgate_odd{v=\"a\\\"b\\\\c\\nd\"} 0.5\n");
    }

    TEST_CASE("render_prometheus: malformed families and labels are left out") {
        nlohmann::json m = {
            {"metrics",
             {{{"name", "bad name"}, {"type", "gauge"}, {"help", ""}, {"samples", nullptr}},
              {{"name", "x"}, {"type", "histogram"}, {"help", ""}},
              {{"name", "ok"},
               {"type", "gauge"},
               {"help", "h"},
               {"samples",
                {{{"labels", {{"__reserved", "1"}, {"9bad", "1"}, {"good", "1"}}}, {"value", 1}},
                 {{"value", "NaN as text"}}}}}}}};
        CHECK(render_prometheus(m) == "# HELP ok h\n# TYPE ok gauge\nok{good=\"1\"} 1\n");
        CHECK(render_prometheus(nlohmann::json::array()).empty());
    }

    TEST_CASE("parse_metrics_address: loopback only, IPv6 in brackets") {
        auto v4 = parse_metrics_address("127.0.0.1:9464");
        REQUIRE(v4);
        CHECK(v4->v4);
        CHECK(v4->port == 9464);
        CHECK(parse_metrics_address("127.0.0.53:1"));
        auto v6 = parse_metrics_address("[::1]:9464");
        REQUIRE(v6);
        CHECK_FALSE(v6->v4);
        for (const char* bad : {"9464", ":9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:9464",
                                "[127.0.0.1]:9464", "localhost:9464", "127.0.0.1:94a"})
            CHECK_MESSAGE(!parse_metrics_address(bad), bad);
        auto wide = parse_metrics_address("0.0.0.0:9464");
        REQUIRE_FALSE(wide);
        CHECK(wide.error().find("is not a loopback address") != std::string::npos);
        CHECK_FALSE(parse_metrics_address("203.0.113.1:9464"));
        CHECK_FALSE(parse_metrics_address("[2001:db8::1]:9464"));
    }

    TEST_CASE("metrics_http_response: GET /metrics, or 404/405/400") {
        int asked = 0;
        auto body = [&] {
            ++asked;
            return std::string("m 1\n");
        };
        const std::string ok = metrics_http_response("GET /metrics HTTP/1.1\r\nHost: x", body);
        CHECK(ok ==
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: "
              "4\r\nConnection: close\r\n\r\nm 1\n");
        CHECK(metrics_http_response("GET /metrics?x=1 HTTP/1.0", body).rfind("HTTP/1.1 200 OK", 0) == 0);
        const std::string head = metrics_http_response("HEAD /metrics HTTP/1.1", body);
        CHECK(head.find("Content-Length: 4\r\n") != std::string::npos);
        CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
        CHECK(asked == 3);
        CHECK(metrics_http_response("GET / HTTP/1.1", body).rfind("HTTP/1.1 404", 0) == 0);
        CHECK(metrics_http_response("POST /metrics HTTP/1.1", body).rfind("HTTP/1.1 405", 0) == 0);
        CHECK(metrics_http_response("GET /metrics", body).rfind("HTTP/1.1 400", 0) == 0);
        CHECK(metrics_http_response("GET /metrics HTTP/2", body).rfind("HTTP/1.1 400", 0) == 0);
        CHECK(metrics_http_response("", body).rfind("HTTP/1.1 400", 0) == 0);
        CHECK(asked == 3);
        CHECK(metrics_http_too_large().rfind("HTTP/1.1 431", 0) == 0);
    }

    TEST_CASE("metrics_http_response: a body that could not be made is a 500 with its sentence") {
        auto broken = []() -> Result<std::string> {
            return err("jitgated could not read its state store: disk I/O error");
        };
        const std::string r = metrics_http_response("GET /metrics HTTP/1.1", broken);
        CHECK(r.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0) == 0);
        CHECK(r.substr(r.size() - 56) == "jitgated could not read its state store: disk I/O error\n");
    }

    TEST_CASE("[daemon] metrics_address: a loopback address, else an error on its line") {
        auto ok = parse_policy("[daemon]\nmetrics_address = \"127.0.0.1:9464\"\n", "p.toml");
        REQUIRE(ok.ok());
        CHECK(ok.policy.daemon.metrics_address == "127.0.0.1:9464");
        auto bad = parse_policy("[daemon]\n\nmetrics_address = \"0.0.0.0:9464\"\n", "p.toml");
        REQUIRE(bad.errors.size() == 1);
        CHECK(bad.errors[0].rfind("p.toml:3: daemon.metrics_address: metrics address '0.0.0.0:9464' is not a "
                                  "loopback address",
                                  0) == 0);
        CHECK(parse_policy("[daemon]\nmetrics_address = 9464\n", "p.toml").errors.size() == 1);
    }

    TEST_CASE("jitgate metrics: op metrics; the human form is the exposition") {
        CliState s;
        auto app = build_app(s);
        const char* argv[] = {"jitgate", "metrics", "--json"};
        app->parse(3, argv);
        CHECK(finish(s).empty());
        CHECK(s.op == "metrics");
        CHECK(s.json);
        MetricsBuilder m;
        m.family("jitgate_requests_pending", "gauge", "pending").sample(3);
        CHECK(render_human("metrics", m.result()) ==
              "# HELP jitgate_requests_pending pending\n# TYPE jitgate_requests_pending gauge\n"
              "jitgate_requests_pending 3\n");
    }
}

}  // namespace test_metrics
