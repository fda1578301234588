// pybindings/module.cpp: millipost._core: the reference server in-process, its store and the
// synthetic population, for the Python package. Long calls release the GIL.
#include "auth/password.h"
#include "config/config.h"
#include "population.h"
#include "service.h"

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <spdlog/spdlog.h>

#include <csignal>

namespace py = pybind11;
using namespace millipost;

namespace {

config::Config make_config(const py::dict& opts) {
    config::Config c;
    c.smtp_port = 0;  // in-process servers take ephemeral ports unless told otherwise
    c.pop3_port = 0;
    c.imap_port = 0;
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
        else if (key == "io_threads")
            c.io_threads = v.cast<unsigned>();
        else if (key == "store_threads")
            c.store_threads = v.cast<unsigned>();
        else if (key == "max_connections")
            c.max_connections = v.cast<std::size_t>();
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
        else if (key == "special_use_mailboxes")
            c.special_use_mailboxes = v.cast<bool>();
        else if (key == "quota_storage")
            c.quota_storage = v.cast<std::uint64_t>();
        else if (key == "quota_messages")
            c.quota_messages = v.cast<std::uint64_t>();
        else if (key == "log_level")
            c.log_level = v.cast<std::string>();
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
            return d;
        });

    py::class_<sim::Population>(m, "Population")
        .def(py::init<std::uint64_t, std::uint64_t, std::optional<std::string>, std::string>(),
             py::arg("seed"), py::arg("size"), py::arg("password") = py::none(),
             py::arg("domain") = "localhost")
        .def_property_readonly("seed", &sim::Population::seed)
        .def_property_readonly("size", &sim::Population::size)
        .def_property_readonly("domain", &sim::Population::domain)
        .def("user",
             [](const sim::Population& p, std::uint64_t i) { return user_dict(p.user(i)); });

    m.def("verify_password", &auth::verify_password, py::arg("stored"), py::arg("password"));
}
