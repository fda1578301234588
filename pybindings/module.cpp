// pybindings/module.cpp: millipost._core: the reference server in-process, its store and the
// synthetic population, for the Python package; and _core.contracts, the protocol-contract
// engine (properties/contracts) for millipost.contracts. Long calls release the GIL.
#include "auth/password.h"
#include "config/config.h"
#include "contracts/contract.h"
#include "engine.h"
#include "message_gen.h"
#include "net/tls.h"
#include "population.h"
#include "service.h"

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <memory>
#include <mutex>

namespace py = pybind11;
using namespace millipost;

namespace {

config::Config make_config(const py::dict& opts) {
    config::Config c;
    c.smtp_port = 0;  // in-process servers take ephemeral ports unless told otherwise
    c.pop3_port = 0;
    c.imap_port = 0;
    c.submission_port = 0;  // the TLS listeners open only with tls_cert/tls_key
    c.submissions_port = 0;
    c.imaps_port = 0;
    c.pop3s_port = 0;
    // Nor do they ask DNS where mail for other domains goes: without a route or relayhost such
    // mail stays deferred (outbound_mx_lookup=True turns MX lookups on).
    c.outbound.mx_lookup = false;
    for (auto [k, v] : opts) {
        auto key = k.cast<std::string>();
        if (v.is_none()) continue;
        if (key == "data_dir")
            c.data_dir = v.cast<std::string>();
        else if (key == "store")
            c.store = v.cast<std::string>();
        else if (key == "hostname")
            c.hostname = v.cast<std::string>();
        else if (key == "listen")
            c.listen = v.cast<std::string>();
        else if (key == "domains")
            c.domains = v.cast<std::vector<std::string>>();
        else if (key == "smtp_port")
            c.smtp_port = v.cast<int>();
        else if (key == "pop3_port")
            c.pop3_port = v.cast<int>();
        else if (key == "imap_port")
            c.imap_port = v.cast<int>();
        else if (key == "tls_cert")
            c.tls_cert = v.cast<std::string>();
        else if (key == "tls_key")
            c.tls_key = v.cast<std::string>();
        else if (key == "submission_port")
            c.submission_port = v.cast<int>();
        else if (key == "submissions_port")
            c.submissions_port = v.cast<int>();
        else if (key == "imaps_port")
            c.imaps_port = v.cast<int>();
        else if (key == "pop3s_port")
            c.pop3s_port = v.cast<int>();
        else if (key == "io_threads")
            c.io_threads = v.cast<unsigned>();
        else if (key == "store_threads")
            c.store_threads = v.cast<unsigned>();
        else if (key == "max_connections")
            c.max_connections = v.cast<std::size_t>();
        else if (key == "max_connections_per_address")
            c.max_connections_per_address = v.cast<std::size_t>();
        else if (key == "max_message_size")
            c.max_message_size = v.cast<std::size_t>();
        else if (key == "max_recipients")
            c.max_recipients = v.cast<std::size_t>();
        else if (key == "smtp_timeout")
            c.smtp_timeout = std::chrono::seconds(v.cast<long>());
        else if (key == "pop3_timeout")
            c.pop3_timeout = std::chrono::seconds(v.cast<long>());
        else if (key == "imap_timeout")
            c.imap_timeout = std::chrono::seconds(v.cast<long>());
        else if (key == "pop3_login_timeout")
            c.pop3_login_timeout = std::chrono::seconds(v.cast<long>());
        else if (key == "imap_login_timeout")
            c.imap_login_timeout = std::chrono::seconds(v.cast<long>());
        else if (key == "smtp_login_timeout")
            c.smtp_login_timeout = std::chrono::seconds(v.cast<long>());
        else if (key == "prelogin_max_time")
            c.prelogin_max_time = std::chrono::seconds(v.cast<long>());
        else if (key == "special_use_mailboxes")
            c.special_use_mailboxes = v.cast<bool>();
        else if (key == "quota_storage")
            c.quota_storage = v.cast<std::uint64_t>();
        else if (key == "quota_messages")
            c.quota_messages = v.cast<std::uint64_t>();
        else if (key == "log_level")
            c.log_level = v.cast<std::string>();
        else if (key == "plaintext_auth") {
            auto p = config::parse_plaintext_auth(v.cast<std::string>());
            if (!p)
                throw py::value_error(
                    "plaintext_auth must be \"never\", \"loopback\" or \"always\"");
            c.plaintext_auth = *p;
        } else if (key == "directory") {
            auto d = config::parse_directory(v.cast<std::string>());
            if (!d) throw py::value_error("directory must be \"store\" or \"ldap\"");
            c.directory = *d;
        } else if (key == "ldap") {
            for (auto [lk, lv] : v.cast<py::dict>()) {
                auto name = lk.cast<std::string>();
                auto& l = c.ldap;
                if (name == "uri")
                    l.uri = lv.cast<std::string>();
                else if (name == "base_dn")
                    l.base_dn = lv.cast<std::string>();
                else if (name == "user_filter")
                    l.user_filter = lv.cast<std::string>();
                else if (name == "bind_dn")
                    l.bind_dn = lv.cast<std::string>();
                else if (name == "bind_password")
                    l.bind_password = lv.cast<std::string>();
                else if (name == "starttls")
                    l.starttls = lv.cast<bool>();
                else if (name == "ca_file")
                    l.ca_file = lv.cast<std::string>();
                else if (name == "timeout")
                    l.timeout = std::chrono::seconds(lv.cast<long>());
                else if (name == "login_attribute")
                    l.login_attribute = lv.cast<std::string>();
                else if (name == "mail_attribute")
                    l.mail_attribute = lv.cast<std::string>();
                else
                    throw py::type_error("unknown ldap option: " + name);
            }
        } else if (key == "auth_fail_delay")  // seconds, fractions allowed
            c.auth_fail_delay = std::chrono::milliseconds(std::lround(v.cast<double>() * 1000));
        else if (key == "auth_fail_max_delay")
            c.auth_fail_max_delay = std::chrono::milliseconds(std::lround(v.cast<double>() * 1000));
        else if (key == "auth_fail_limit")
            c.auth_fail_limit = v.cast<unsigned>();
        else if (key == "auth_lockout")
            c.auth_lockout = std::chrono::seconds(v.cast<long>());
        else if (key == "auth_fail_window")
            c.auth_fail_window = std::chrono::seconds(v.cast<long>());
        else if (key == "auth_throttle_entries")
            c.auth_throttle_entries = v.cast<std::size_t>();
        else if (key == "sender_aliases")
            c.sender_aliases = v.cast<std::map<std::string, std::vector<std::string>>>();
        else if (key == "inbound_auth_relay")
            c.inbound_auth_relay = v.cast<bool>();
        else if (key == "outbound_delivery")
            c.outbound.enabled = v.cast<bool>();
        else if (key == "outbound_mx_lookup")
            c.outbound.mx_lookup = v.cast<bool>();
        else if (key == "outbound_nameserver") {
            auto ns = v.cast<std::string>();
            if (!ns.empty() && !config::valid_nameserver(ns))
                throw py::value_error("outbound_nameserver: expected \"IPv4\" or \"IPv4:port\"");
            c.outbound.nameserver = ns;
        } else if (key == "outbound_mx_port") {
            auto port = v.cast<long>();
            if (port < 1 || port > 65535) throw py::value_error("outbound_mx_port: 1-65535");
            c.outbound.mx_port = static_cast<unsigned short>(port);
        } else if (key == "outbound_routes") {
            c.outbound.routes.clear();
            for (auto& [d, target] : v.cast<std::map<std::string, std::string>>()) {
                std::string lower(d);
                for (auto& ch : lower)
                    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                c.outbound.routes[lower] = target;
            }
        } else if (key == "relayhost")
            c.outbound.relayhost = v.cast<std::string>();
        else if (key == "relay_user")
            c.outbound.relay_user = v.cast<std::string>();
        else if (key == "relay_password")
            c.outbound.relay_password = v.cast<std::string>();
        else if (key == "outbound_tls" || key == "outbound_tls_policy") {
            auto level = [](const std::string& x) {
                auto p = config::parse_tls_policy(x);
                if (!p)
                    throw py::value_error(
                        "TLS policy must be \"none\", \"may\", \"encrypt\" or \"verify\"");
                return *p;
            };
            if (key == "outbound_tls")
                c.outbound.tls = level(v.cast<std::string>());
            else
                for (auto& [d, l] : v.cast<std::map<std::string, std::string>>())
                    c.outbound.tls_policy[d] = level(l);
        } else if (key == "outbound_tls_ca_file")
            c.outbound.tls_ca_file = v.cast<std::string>();
        else if (key == "retry_min")
            c.outbound.retry_min = std::chrono::seconds(v.cast<long>());
        else if (key == "retry_max")
            c.outbound.retry_max = std::chrono::seconds(v.cast<long>());
        else if (key == "max_queue_lifetime")
            c.outbound.max_queue_lifetime = std::chrono::seconds(v.cast<long>());
        else if (key == "outbound_timeout")
            c.outbound.cap_timeouts(std::chrono::seconds(v.cast<long>()));
        else if (key == "outbound_max_concurrent")
            c.outbound.max_concurrent = std::max<std::size_t>(1, v.cast<std::size_t>());
        else
            throw py::type_error("unknown server option: " + key);
    }
    return c;
}

py::dict user_dict(const sim::SimUser& u) {
    py::dict d;
    d["index"] = u.index;
    d["login"] = u.login;
    d["address"] = u.address;
    d["password"] = u.password;
    d["name"] = u.name;
    return d;
}

// A Checker with what it needs to be safe from Python: it keeps its contract alive (the C++
// checker holds a reference), and a mutex serializes calls, because feeding releases the GIL (a
// long reply is matched without holding up the proxy's other connections).
struct PyChecker {
    explicit PyChecker(std::shared_ptr<const contracts::Contract> c)
        : contract(std::move(c)), checker(*contract) {}
    std::shared_ptr<const contracts::Contract> contract;
    contracts::Checker checker;
    std::mutex mu;

    template <class F>
    contracts::Verdict call(F&& f) {
        py::gil_scoped_release release;
        std::lock_guard lock(mu);
        return f(checker);
    }
};

std::string who_name(const contracts::Breach& b) {
    return b.who == contracts::Breach::Who::client ? "client" : "server";
}

// Loading errors of either layer (ABNF or state table) reach Python as one ContractError.
template <class F>
std::shared_ptr<contracts::Contract> load_contract(F&& f) {
    try {
        return std::make_shared<contracts::Contract>(f());
    } catch (const contracts::AbnfError& e) {
        throw contracts::ContractError(e.what());
    }
}

void bind_contracts(py::module_& m) {
    namespace ct = contracts;
    m.doc() =
        "protocol contracts: ABNF types, a state table, and the streaming checker "
        "(properties/contracts/README.md)";
    m.attr("MAX_LINE_BYTES") = ct::kMaxLineBytes;
    m.attr("MAX_REPLY_BYTES") = ct::kMaxReplyBytes;
    m.attr("MAX_PENDING") = ct::kMaxPending;
    m.attr("MAX_BREACH_BYTES") = ct::kMaxBreachBytes;

    // A contract that does not load is a ValueError naming the file, line and reason.
    py::register_exception<ct::ContractError>(m, "ContractError", PyExc_ValueError);

    py::class_<ct::Breach>(m, "Breach",
                           "How one side broke the contract: who (client or server), the rule "
                           "the bytes should have matched, the checker's state, the offending "
                           "bytes (truncated to MAX_BREACH_BYTES) and a reason.")
        .def_property_readonly("who", &who_name)
        .def_readonly("rule", &ct::Breach::rule)
        .def_readonly("state", &ct::Breach::state)
        .def_property_readonly("bytes", [](const ct::Breach& b) { return py::bytes(b.bytes); })
        .def_readonly("reason", &ct::Breach::reason)
        .def("__str__", [](const ct::Breach& b) { return ct::to_string(b); })
        .def("__repr__",
             [](const ct::Breach& b) {
                 return "<Breach " + who_name(b) + " in " + b.state + ": " + b.reason + ">";
             })
        .def("__eq__",
             [](const ct::Breach& a, const ct::Breach& b) {
                 return a.who == b.who && a.rule == b.rule && a.state == b.state &&
                        a.bytes == b.bytes && a.reason == b.reason;
             })
        .def("__hash__", [](const ct::Breach& b) {
            return py::hash(
                py::make_tuple(who_name(b), b.rule, b.state, py::bytes(b.bytes), b.reason));
        });

    py::class_<ct::Contract, std::shared_ptr<ct::Contract>>(
        m, "Contract", "A protocol contract: ABNF types and a state table (one .contract file).")
        .def_static(
            "parse",
            [](std::string_view text, std::string name) {
                return load_contract([&] { return ct::Contract::parse(text, std::move(name)); });
            },
            py::arg("text"), py::arg("name") = "contract",
            "Parses contract text; raises ContractError with the line and reason.")
        .def_static(
            "load",
            [](const std::string& path) {
                return load_contract([&] { return ct::Contract::load(path); });
            },
            py::arg("path"), "Loads a .contract file (its name is the path).")
        .def_readonly("name", &ct::Contract::name)
        .def_readonly("initial", &ct::Contract::initial)
        .def_readonly("requests", &ct::Contract::requests)
        .def_readonly("states", &ct::Contract::states)
        .def_readonly("final_states", &ct::Contract::final_states)
        .def(
            "alternatives",
            [](const ct::Contract& c, const std::string& state, const std::string& request) {
                std::vector<std::pair<std::string, std::string>> out;
                for (auto& t : c.alternatives(state, request))
                    out.emplace_back(t.reply, t.next);
                return out;
            },
            py::arg("state"), py::arg("request"),
            "The (reply rule, next state) pairs that may answer request in state.")
        .def(
            "checker",
            [](std::shared_ptr<ct::Contract> self) { return std::make_unique<PyChecker>(self); },
            "A new streaming checker for one connection.")
        .def("__repr__", [](const ct::Contract& c) {
            return "<Contract " + c.name + ": " + std::to_string(c.states.size()) + " states, " +
                   std::to_string(c.requests.size()) + " request types>";
        });

    py::class_<PyChecker>(
        m, "Checker",
        "Holds one connection's bytes to a contract. Feed both directions in wire order, in any "
        "split; each call returns None (fine so far) or the Breach, which is sticky.")
        .def(py::init(
                 [](std::shared_ptr<ct::Contract> c) { return std::make_unique<PyChecker>(c); }),
             py::arg("contract"))
        .def(
            "on_client",
            [](PyChecker& k, py::bytes data) {
                auto bytes = static_cast<std::string_view>(data);  // immutable, held by `data`
                return k.call([&](ct::Checker& c) { return c.on_client(bytes); });
            },
            py::arg("data"), "Bytes the client sent.")
        .def(
            "on_server",
            [](PyChecker& k, py::bytes data) {
                auto bytes = static_cast<std::string_view>(data);
                return k.call([&](ct::Checker& c) { return c.on_server(bytes); });
            },
            py::arg("data"), "Bytes the server sent.")
        .def(
            "on_close",
            [](PyChecker& k) { return k.call([](ct::Checker& c) { return c.on_close(); }); },
            "Both directions ended: unanswered requests and cut lines are breaches.")
        .def_property_readonly(
            "contract",
            [](const PyChecker& k) { return std::const_pointer_cast<ct::Contract>(k.contract); })
        .def_property_readonly("state",
                               [](PyChecker& k) {
                                   std::lock_guard lock(k.mu);
                                   return k.checker.state();
                               })
        .def_property_readonly("pending",
                               [](PyChecker& k) {
                                   std::lock_guard lock(k.mu);
                                   return k.checker.pending();
                               })
        .def(
            "resume_tls",
            [](PyChecker& k) {
                std::lock_guard lock(k.mu);
                return k.checker.resume_tls();
            },
            "After the TLS handshake, for a caller that feeds the decrypted stream: a line-framed "
            "checker made opaque by its contract's `tls` state judges on in the contract's resume "
            "state (STARTTLS/STLS no longer advertised). False when there is nothing to resume.")
        .def_property_readonly(
            "opaque",
            [](PyChecker& k) {
                std::lock_guard lock(k.mu);
                return k.checker.opaque();
            },
            "True once a line-framed contract's `tls` state was entered: the checker no longer "
            "judges the connection (SMTP, POP3). IMAP goes on judging the decrypted stream.");
}

// _core.run_load: the configuration crosses as JSON text (json.dumps), the results come back
// the same way, so the C++ engine never touches Python objects off the GIL.
py::object run_load(const py::dict& config, const py::object& progress) {
    auto pyjson = py::module_::import("json");
    auto cfg = boost::json::parse(pyjson.attr("dumps")(config).cast<std::string>()).as_object();
    if (!cfg.contains("contracts_dir")) {
        // The contract files ship in the package (millipost/contracts/); the engine falls back
        // on the source tree's when they are absent.
        auto dir = std::filesystem::path(
                       py::module_::import("millipost").attr("__file__").cast<std::string>())
                       .parent_path() /
                   "contracts";
        if (std::filesystem::exists(dir / "imap.contract")) cfg["contracts_dir"] = dir.string();
    }
    // Ctrl-C: Python's handler only sets a flag while the GIL is released; checking signals at
    // each progress call turns it into KeyboardInterrupt here, which stops the run cleanly.
    std::optional<py::error_already_set> failure;
    sim::ProgressFn fn = [&](const boost::json::object& live) {
        py::gil_scoped_acquire gil;
        try {
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            if (!progress.is_none()) progress(pyjson.attr("loads")(boost::json::serialize(live)));
            return true;
        } catch (py::error_already_set& e) {
            if (!e.matches(PyExc_KeyboardInterrupt) && !failure) failure = std::move(e);
            return false;
        }
    };
    boost::json::object results;
    {
        py::gil_scoped_release release;
        results = sim::run_load(cfg, fn);
    }
    if (failure) throw std::move(*failure);  // a bug in the callback is not an interruption
    return pyjson.attr("loads")(boost::json::serialize(results));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "millipost native core";
    std::signal(SIGPIPE, SIG_IGN);

    py::class_<Service>(m, "Service")
        .def(py::init([](const py::dict& opts) {
                 auto cfg = make_config(opts);
                 spdlog::set_level(spdlog::level::from_str(cfg.log_level));
                 return std::make_unique<Service>(cfg);
             }),
             py::arg("options"))
        .def("start", &Service::start, py::call_guard<py::gil_scoped_release>())
        .def("stop", &Service::stop, py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("running", &Service::running)
        .def_property_readonly("smtp_port", &Service::smtp_port)
        .def_property_readonly("pop3_port", &Service::pop3_port)
        .def_property_readonly("imap_port", &Service::imap_port)
        .def_property_readonly("submission_port", &Service::submission_port)
        .def_property_readonly("submissions_port", &Service::submissions_port)
        .def_property_readonly("imaps_port", &Service::imaps_port)
        .def_property_readonly("pop3s_port", &Service::pop3s_port)
        .def("reload_tls", &Service::reload_tls, py::call_guard<py::gil_scoped_release>())
        .def("outbound_queue",
             [](Service& s) {
                 if (!s.running()) throw py::value_error("the server is not running");
                 std::vector<store::OutboundMessage> q;
                 {
                     py::gil_scoped_release release;
                     q = s.store().outbound_queue();
                 }
                 py::list out;
                 for (auto& m : q) {
                     py::dict d;
                     d["id"] = m.id;
                     d["sender"] = m.sender;
                     d["recipients"] = m.recipients;
                     d["bytes"] = py::bytes(m.bytes);
                     d["queued_at"] = m.queued_at;
                     d["attempts"] = m.attempts;
                     d["next_attempt_at"] = m.next_attempt_at;
                     d["last_error"] = m.last_error;
                     out.append(d);
                 }
                 return out;
             })
        .def_property_readonly("store_spec", [](Service& s) { return s.config().store_spec(); })
        .def_property_readonly("hostname", [](Service& s) { return s.config().hostname; })
        .def("add_user",
             [](Service& s, const std::string& login, const std::string& password) {
                 py::gil_scoped_release release;
                 return s.store().add_user(login, auth::make_secret(password));
             })
        .def("user_count",
             [](Service& s) {
                 py::gil_scoped_release release;
                 return s.store().user_count();
             })
        .def(
            "provision",
            [](Service& s, const sim::Population& p, std::uint64_t first, std::uint64_t last,
               std::function<void(std::uint64_t)> progress) {
                std::function<void(std::uint64_t)> cb;
                if (progress)
                    cb = [progress](std::uint64_t n) {
                        py::gil_scoped_acquire gil;
                        progress(n);
                    };
                py::gil_scoped_release release;
                return p.provision(s.store(), first, last, 0, cb);
            },
            py::arg("population"), py::arg("first"), py::arg("last"), py::arg("progress") = nullptr)
        .def(
            "populate_mailboxes",
            [](Service& s, const sim::Population& p, std::uint64_t first, std::uint64_t last,
               std::uint32_t messages, bool vary, std::size_t max_message_size,
               std::function<void(std::uint64_t, std::uint64_t)> progress) {
                std::function<void(std::uint64_t, std::uint64_t)> cb;
                if (progress)
                    cb = [progress](std::uint64_t users, std::uint64_t added) {
                        py::gil_scoped_acquire gil;
                        progress(users, added);
                    };
                sim::MailboxPlan plan{messages, vary, max_message_size};
                py::gil_scoped_release release;
                return p.populate_mailboxes(s.store(), first, last, plan, 0, cb);
            },
            py::arg("population"), py::arg("first"), py::arg("last"), py::arg("messages"),
            py::arg("vary") = false, py::arg("max_message_size") = 0, py::arg("progress") = nullptr)
        .def(
            "mailbox_uids",
            [](Service& s, const std::string& login, const std::string& mailbox) {
                py::gil_scoped_release release;
                std::vector<std::uint32_t> uids;
                auto u = s.store().find_user(login);
                if (!u) throw py::key_error("no such user: " + login);
                auto mb = s.store().find_mailbox(u->id, mailbox);
                if (!mb) throw py::key_error("no such mailbox: " + mailbox);
                for (auto& msg : s.store().messages(u->id, mb->id))
                    uids.push_back(msg.uid);
                return uids;
            },
            py::arg("login"), py::arg("mailbox") = "INBOX")
        .def("counters", [](Service& s) {
            auto& c = s.counters();
            py::dict d;
            d["smtp_sessions"] = c.smtp_sessions.load();
            d["pop3_sessions"] = c.pop3_sessions.load();
            d["imap_sessions"] = c.imap_sessions.load();
            d["messages_accepted"] = c.messages_accepted.load();
            d["messages_rejected"] = c.messages_rejected.load();
            d["deliveries"] = c.deliveries.load();
            d["pop3_retrieved"] = c.pop3_retrieved.load();
            d["pop3_deleted"] = c.pop3_deleted.load();
            d["auth_failures"] = c.auth_failures.load();
            d["auth_successes"] = c.auth_successes.load();
            d["auth_delayed"] = c.auth_delayed.load();
            d["auth_refused"] = c.auth_refused.load();
            d["auth_lockouts"] = c.auth_lockouts.load();
            d["connections_refused"] = c.connections_refused.load();
            d["connections_refused_address"] = c.connections_refused_address.load();
            d["idle_timeouts"] = c.idle_timeouts.load();
            d["prelogin_timeouts"] = c.prelogin_timeouts.load();
            d["outbound_connections"] = c.outbound_connections.load();
            d["outbound_sent"] = c.outbound_sent.load();
            d["outbound_deferred"] = c.outbound_deferred.load();
            d["outbound_bounced"] = c.outbound_bounced.load();
            d["outbound_dsn"] = c.outbound_dsn.load();
            return d;
        });

    py::class_<sim::Population>(m, "Population")
        .def(py::init<std::uint64_t, std::uint64_t, std::optional<std::string>, std::string>(),
             py::arg("seed"), py::arg("size"), py::arg("password") = py::none(),
             py::arg("domain") = "localhost")
        .def_property_readonly("seed", &sim::Population::seed)
        .def_property_readonly("size", &sim::Population::size)
        .def_property_readonly("domain", &sim::Population::domain)
        .def("user", [](const sim::Population& p, std::uint64_t i) { return user_dict(p.user(i)); })
        .def(
            "mailbox_messages",
            [](const sim::Population& p, std::uint64_t i, std::uint32_t messages, bool vary) {
                return p.mailbox_messages(i, sim::MailboxPlan{messages, vary, 0});
            },
            py::arg("index"), py::arg("messages"), py::arg("vary") = false)
        .def_static("message_index", &sim::Population::message_index, py::arg("user"),
                    py::arg("k"));

    m.def("run_load", &run_load, py::arg("config"), py::arg("progress") = py::none(),
          "Runs the load engine (sim/engine.h) with a configuration dict; progress(dict) is "
          "called about once a second. Returns the results dict (load-schema.md). "
          "KeyboardInterrupt in progress (or Ctrl-C) stops it with \"interrupted\": true; a bad "
          "configuration is a ValueError.");
    m.def("verify_password", &auth::verify_password, py::arg("stored"), py::arg("password"));
    m.def(
        "write_self_signed",
        [](const std::string& dir, const std::string& cn) {
            auto made = net::write_self_signed(dir, cn);
            return py::make_tuple(made.cert, made.key);
        },
        py::arg("dir"), py::arg("cn") = "localhost",
        "Writes a self-signed development cert.pem and key.pem into dir; returns their paths.");

    // The load simulator's message generator (sim/message_gen.h), for tests and Python tools.
    m.def(
        "generate_message",
        [](std::uint64_t seed, std::uint64_t index, std::string from, std::string to,
           std::optional<std::string> in_reply_to) {
            sim::MessageSpec spec{seed, index, std::move(from), std::move(to),
                                  std::move(in_reply_to)};
            sim::GeneratedMessage g;
            {
                py::gil_scoped_release release;
                g = sim::generate_message(spec);
            }
            return py::make_tuple(py::bytes(g.bytes), g.id, g.message_id);
        },
        py::arg("seed"), py::arg("index"), py::arg("from_addr"), py::arg("to_addr"),
        py::arg("in_reply_to") = py::none(),
        "(bytes, X-Millipost-Id, Message-ID) of message (seed, index), deterministic");
    m.def("message_size", py::overload_cast<std::uint64_t, std::uint64_t>(&sim::message_size),
          py::arg("seed"), py::arg("index"));
    m.def("message_uid", &sim::message_uid, py::arg("seed"), py::arg("index"));
    m.def("message_id", &sim::message_id, py::arg("seed"), py::arg("index"));

    auto contracts = m.def_submodule("contracts");
    bind_contracts(contracts);
}
