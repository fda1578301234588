// imap/search_bench.cpp: IMAP SEARCH over a large mailbox, end to end. Starts a Service on a
// scratch directory, stores N generated messages (default 100,000) in one INBOX through the
// store, then logs in over TCP and times SEARCH commands as a client sees them: the first
// indexed search (which builds the full-text index), the same search again, a few other
// indexed searches, a search the index cannot answer (a two-character needle: every message is
// read), which is what every text search cost before the index, then SORT and THREAD.
// Usage: imap_search_bench [messages] [directory]; the directory is removed afterwards.
#include "auth/password.h"
#include "service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string word(std::mt19937& rng) {
    const char* syl[] = {"ba", "ko", "ri", "tu", "me", "sa", "lo", "ne", "pi", "da", "gü", "ré"};
    std::string w;
    for (unsigned i = 0, n = 1 + rng() % 3; i < n; ++i)
        w += syl[rng() % std::size(syl)];
    return w;
}

std::string text(std::mt19937& rng, unsigned words) {
    std::string s;
    for (unsigned i = 0; i < words; ++i) {
        s += word(rng);
        s += (i % 12 == 11) ? "\r\n" : " ";
    }
    return s;
}

// A blocking IMAP client: one command at a time, reads up to its tagged reply.
class Client {
  public:
    explicit Client(unsigned short port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("connect failed");
        read_until({});  // greeting
    }
    ~Client() { ::close(fd_); }

    // Sends "t<n> <cmd>" and returns everything up to and including the tagged line.
    std::string command(const std::string& cmd) {
        std::string tag = "t" + std::to_string(++n_);
        std::string line = tag + " " + cmd + "\r\n";
        if (::send(fd_, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()))
            throw std::runtime_error("send failed");
        std::string reply = read_until(tag);
        if (reply.find(tag + " OK") == std::string::npos)
            throw std::runtime_error("command failed: " + cmd + ": " + reply.substr(0, 300));
        return reply;
    }

  private:
    // Reads lines until one starts with `tag` (or, without a tag, one line); returns them all.
    std::string read_until(const std::string& tag) {
        std::string out;
        for (;;) {
            std::size_t eol;
            while ((eol = buf_.find("\r\n")) != std::string::npos) {
                std::string line = buf_.substr(0, eol + 2);
                buf_.erase(0, eol + 2);
                out += line;
                if (tag.empty() || line.compare(0, tag.size() + 1, tag + " ") == 0) return out;
            }
            char tmp[65536];
            ssize_t got = ::recv(fd_, tmp, sizeof tmp, 0);
            if (got <= 0) throw std::runtime_error("connection closed");
            buf_.append(tmp, static_cast<std::size_t>(got));
        }
    }
    int fd_ = -1;
    unsigned n_ = 0;
    std::string buf_;
};

// The message numbers in the first untagged line (SEARCH, SORT or THREAD).
std::size_t hits(const std::string& reply) {
    if (reply.rfind("* ", 0) != 0) return 0;
    std::size_t n = 0;
    bool in_number = false;
    for (std::size_t i = 0; i < reply.size() && reply[i] != '\r'; ++i) {
        bool digit = reply[i] >= '0' && reply[i] <= '9';
        if (digit && !in_number) ++n;
        in_number = digit;
    }
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t n = argc > 1 ? std::stoul(argv[1]) : 100000;
    fs::path dir =
        argc > 2 ? fs::path(argv[2])
                 : fs::temp_directory_path() / ("imap_search_bench." + std::to_string(::getpid()));
    fs::create_directories(dir);
    int rc = 0;
    try {
        millipost::config::Config cfg;
        cfg.data_dir = dir.string();
        cfg.smtp_port = -1;
        cfg.pop3_port = -1;
        cfg.imap_port = 0;
        cfg.log_level = "warn";
        millipost::Service svc(cfg);
        svc.start();
        auto& store = svc.store();
        auto user = store.add_user("bench", millipost::auth::make_secret("pw"));
        std::vector<millipost::store::UserId> to{user};
        std::mt19937 rng(1);
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
            std::string msg = "From: " + word(rng) + " <" + word(rng) + "@example.org>\r\n";
            msg += "To: bench@localhost\r\nSubject: " + text(rng, 5) + "\r\n";
            msg += "Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n";
            msg += "Message-ID: <" + std::to_string(i) + "@bench>\r\n";
            if (i % 3 != 0) msg += "In-Reply-To: <" + std::to_string(i - 1) + "@bench>\r\n";
            msg += "\r\n";
            msg += text(rng, 150);
            if (i % 1000 == 7) msg += "\r\nquokka sighting number " + std::to_string(i) + "\r\n";
            store.deliver(to, "INBOX", msg, 1700000000 + static_cast<std::int64_t>(i));
        }
        std::printf("stored %zu messages in %.1f s\n", n, ms_since(t0) / 1000);
        // The background indexer follows deliveries; wait for what it still has queued.
        auto t1 = Clock::now();
        svc.drain_index();
        std::printf("index caught up %.1f s after the last delivery\n", ms_since(t1) / 1000);
        Client c(svc.imap_port());
        c.command("LOGIN bench pw");
        c.command("SELECT INBOX");
        auto timed = [&](const char* label, const std::string& cmd) {
            auto t = Clock::now();
            auto reply = c.command(cmd);
            std::printf("%-44s %9.1f ms  %zu hits\n", label, ms_since(t), hits(reply));
        };
        timed("SEARCH BODY quokka (first search)", "SEARCH BODY quokka");
        timed("SEARCH BODY quokka (again)", "SEARCH BODY quokka");
        timed("SEARCH BODY \"sighting number 5\"", "SEARCH BODY \"sighting number 5\"");
        timed("SEARCH SUBJECT ribako", "SEARCH SUBJECT ribako");
        timed("SEARCH TEXT quokka UNSEEN", "SEARCH TEXT quokka UNSEEN");
        timed("SEARCH FROM example.org (matches all)", "SEARCH FROM example.org");
        timed("SEARCH BODY qu (too short: reads all)", "SEARCH BODY qu");
        timed("SORT (DATE) BODY quokka", "SORT (DATE) UTF-8 BODY quokka");
        timed("SORT (SUBJECT) ALL (reads every header)", "SORT (SUBJECT) UTF-8 ALL");
        timed("THREAD REFERENCES ALL", "THREAD REFERENCES UTF-8 ALL");
        svc.stop();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "imap_search_bench: %s\n", e.what());
        rc = 1;
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    return rc;
}
