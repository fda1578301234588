// main.cpp: millipost-server: runs the reference mail server, or manages its users.
#include "auth/password.h"
#include "config/config.h"
#include "net/tls.h"
#include "service.h"
#include "store/mail_store.h"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <pthread.h>
#include <csignal>
#include <iostream>

namespace {

int run_server(millipost::config::Config cfg) {
    // Signals are taken by sigwait in this thread only; every server thread inherits the mask.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    millipost::Service service(cfg);
    try {
        service.start();
    } catch (const std::exception& e) {
        spdlog::critical("cannot start: {}", e.what());
        return 1;
    }
    while (true) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGHUP) {
            spdlog::info("SIGHUP: reloading the TLS certificate");
            service.reload_tls();
            continue;
        }
        spdlog::info("signal {}: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    service.stop();
    return 0;
}

std::string read_password() {
    std::string pw;
    std::getline(std::cin, pw);
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    return pw;
}

}  // namespace

int main(int argc, char** argv) {
    millipost::config::Config cfg;
    CLI::App app{
        "millipost-server: the millipost reference mail server (SMTP, POP3, IMAP; STARTTLS and\n"
        "implicit TLS) on SQLite.\n"
        "With no subcommand it serves until SIGINT/SIGTERM; SIGHUP reloads the TLS certificate."};
    app.set_version_flag("--version", "millipost-server 0.1.0");
    std::string config_file;
    std::string log_level;
    // Flags are parsed after the config file is read, so flags win.
    app.add_option("-c,--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
    auto* data = app.add_option("-d,--data", cfg.data_dir, "data directory (holds millipost.db)");
    auto* store = app.add_option("--store", cfg.store, "store backend spec, e.g. sqlite:/path/db");
    auto* smtp = app.add_option("--smtp", cfg.smtp_port, "SMTP port (0 = any free port, -1 = off)");
    auto* pop3 = app.add_option("--pop3", cfg.pop3_port, "POP3 port (0 = any free port, -1 = off)");
    auto* imap = app.add_option("--imap", cfg.imap_port, "IMAP port (0 = any free port, -1 = off)");
    auto* host =
        app.add_option("--hostname", cfg.hostname, "name in greetings and Received: headers");
    auto* postmaster =
        app.add_option("--postmaster", cfg.postmaster, "login that receives mail for <postmaster>");
    auto* listen = app.add_option("--listen", cfg.listen, "address to listen on");
    auto* domains = app.add_option("--domain", cfg.domains, "extra local mail domain (repeatable)");
    auto* tls_cert =
        app.add_option("--tls-cert", cfg.tls_cert,
                       "TLS certificate chain (PEM); enables STARTTLS and the TLS ports");
    auto* tls_key = app.add_option("--tls-key", cfg.tls_key, "TLS private key (PEM)");
    auto* submission = app.add_option("--submission", cfg.submission_port,
                                      "submission port, plain + STARTTLS (needs TLS; -1 = off)");
    auto* submissions = app.add_option("--submissions", cfg.submissions_port,
                                       "submission port over implicit TLS (needs TLS; -1 = off)");
    auto* imaps =
        app.add_option("--imaps", cfg.imaps_port, "IMAP over implicit TLS (needs TLS; -1 = off)");
    auto* pop3s =
        app.add_option("--pop3s", cfg.pop3s_port, "POP3 over implicit TLS (needs TLS; -1 = off)");
    auto* threads =
        app.add_option("--threads", cfg.io_threads, "network threads (0 = one per core)");
    auto* maxsize =
        app.add_option("--max-message-size", cfg.max_message_size, "largest message in bytes");
    auto* maxconn =
        app.add_option("--max-connections", cfg.max_connections, "connections in total");
    auto* maxconn_addr =
        app.add_option("--max-connections-per-address", cfg.max_connections_per_address,
                       "connections from one client address (0 = no limit)");
    std::int64_t smtp_timeout = 0, pop3_timeout = 0, imap_timeout = 0;
    app.add_option("--smtp-timeout", smtp_timeout, "SMTP idle timeout in seconds");
    app.add_option("--pop3-timeout", pop3_timeout, "POP3 idle timeout in seconds");
    app.add_option("--imap-timeout", imap_timeout, "IMAP idle timeout after login in seconds");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

    auto* user = app.add_subcommand("user", "manage users");
    auto* add =
        user->add_subcommand("add", "add a user; the password is read from stdin unless given");
    std::string login, password;
    add->add_option("login", login, "login name (or a full address)")->required();
    add->add_option("-p,--password", password, "password (prefer stdin)");
    auto* passwd =
        user->add_subcommand("passwd", "set a user's password (read from stdin unless given)");
    passwd->add_option("login", login, "login name")->required();
    passwd->add_option("-p,--password", password, "password (prefer stdin)");
    auto* count = user->add_subcommand("count", "print the number of users");
    user->require_subcommand(1);

    auto* cert = app.add_subcommand("cert", "make TLS certificates");
    bool self_signed = false;
    std::string cert_out = ".", cert_cn = "localhost";
    cert->add_flag("--self-signed", self_signed,
                   "write a self-signed development key and certificate (EC P-256; SAN localhost, "
                   "127.0.0.1, ::1) as cert.pem and key.pem")
        ->required();
    cert->add_option("--out", cert_out, "directory to write them to (default: .)");
    cert->add_option("--cn", cert_cn, "common name, also added as a DNS name (default: localhost)");

    CLI11_PARSE(app, argc, argv);

    if (!config_file.empty()) {
        // Re-apply: file first, then any flag given on the command line.
        millipost::config::Config from_file;
        try {
            millipost::config::load_toml(from_file, config_file);
        } catch (const std::exception& e) {
            std::cerr << "millipost-server: " << e.what() << "\n";
            return 2;
        }
        // Every key comes from the file, except where a flag was given on the command line
        // (listing the flags, not the keys, so that no new key can be dropped on the way).
        auto flag_wins = [](CLI::Option* o, const auto& from_flag, auto& dst) {
            if (o->count() > 0) dst = from_flag;
        };
        flag_wins(data, cfg.data_dir, from_file.data_dir);
        flag_wins(store, cfg.store, from_file.store);
        flag_wins(smtp, cfg.smtp_port, from_file.smtp_port);
        flag_wins(pop3, cfg.pop3_port, from_file.pop3_port);
        flag_wins(imap, cfg.imap_port, from_file.imap_port);
        flag_wins(host, cfg.hostname, from_file.hostname);
        flag_wins(listen, cfg.listen, from_file.listen);
        flag_wins(postmaster, cfg.postmaster, from_file.postmaster);
        flag_wins(domains, cfg.domains, from_file.domains);
        flag_wins(threads, cfg.io_threads, from_file.io_threads);
        flag_wins(tls_cert, cfg.tls_cert, from_file.tls_cert);
        flag_wins(tls_key, cfg.tls_key, from_file.tls_key);
        flag_wins(submission, cfg.submission_port, from_file.submission_port);
        flag_wins(submissions, cfg.submissions_port, from_file.submissions_port);
        flag_wins(imaps, cfg.imaps_port, from_file.imaps_port);
        flag_wins(pop3s, cfg.pop3s_port, from_file.pop3s_port);
        flag_wins(maxsize, cfg.max_message_size, from_file.max_message_size);
        flag_wins(maxconn, cfg.max_connections, from_file.max_connections);
        flag_wins(maxconn_addr, cfg.max_connections_per_address,
                  from_file.max_connections_per_address);
        cfg = std::move(from_file);
    }
    if (smtp_timeout > 0) cfg.smtp_timeout = std::chrono::seconds(smtp_timeout);
    if (pop3_timeout > 0) cfg.pop3_timeout = std::chrono::seconds(pop3_timeout);
    if (imap_timeout > 0) cfg.imap_timeout = std::chrono::seconds(imap_timeout);
    if (log_level.empty()) log_level = cfg.log_level;
    spdlog::set_level(spdlog::level::from_str(log_level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

    if (cert->parsed()) {
        try {
            auto made = millipost::net::write_self_signed(cert_out, cert_cn);
            std::cout << "wrote " << made.cert << " and " << made.key << "\n";
        } catch (const std::exception& e) {
            std::cerr << "millipost-server: " << e.what() << "\n";
            return 1;
        }
        return 0;
    }
    if (cfg.tls_cert.empty() != cfg.tls_key.empty()) {
        std::cerr << "millipost-server: TLS needs both --tls-cert and --tls-key\n";
        return 2;
    }
    if (add->parsed() || passwd->parsed()) {
        bool adding = add->parsed();
        if (!(adding ? add : passwd)->get_option("--password")->count()) password = read_password();
        if (password.empty()) {
            std::cerr << "millipost-server: empty password\n";
            return 2;
        }
        try {
            auto st = millipost::store::open_store(cfg.store_spec());
            auto secret = millipost::auth::make_secret(password);
            if (adding) {
                auto id = st->add_user(login, secret);
                std::cout << "added user " << login << " (id " << id << ")\n";
            } else {
                st->set_secret(login, secret);
                std::cout << "password set for " << login << "\n";
            }
        } catch (const std::exception& e) {
            std::cerr << "millipost-server: " << e.what() << "\n";
            return 1;
        }
        return 0;
    }
    if (count->parsed()) {
        auto st = millipost::store::open_store(cfg.store_spec());
        std::cout << st->user_count() << "\n";
        return 0;
    }
    return run_server(cfg);
}
