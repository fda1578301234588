// sim/engine.cpp: the load engine (see engine.h).
#include "engine.h"

#include "message_gen.h"

#include "contracts/contract.h"
#include "histogram.h"
#include "population.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <ctime>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

namespace millipost::sim {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Breaches and violations kept in the results (their counts are exact).
constexpr std::size_t kMaxReported = 100;
// Errors whose session transcript the results keep ("error_samples"): enough to see why a kind
// of error happens, few enough that an overloaded run's results stay small.
constexpr std::size_t kMaxErrorSamples = 20;
// How long sessions still running at the end get to log out before the engine gives up on them.
constexpr auto kDrainGrace = std::chrono::seconds(15);
// Longest server line or literal the engine accepts (a defence against a runaway target).
constexpr std::size_t kMaxLine = 1 << 20;
constexpr std::size_t kMaxLiteral = 64 << 20;
// Concurrent IMAP sessions of the final verification phase.
constexpr unsigned kVerifiers = 8;
// The header every message carries (load-schema.md, message generator).
constexpr std::string_view kIdHeader = "X-Millipost-Id";
constexpr const char* kArchive = "Archive";  // where the webmail profile moves messages
// Lines of a session kept for the transcript excerpt of a violation, and their longest length.
constexpr std::size_t kTranscriptLines = 16;
constexpr std::size_t kTranscriptWidth = 200;
// SCRAM SaltedPassword values kept (one PBKDF2 per user, salt and iteration count instead of
// one per login); the cache is emptied when it reaches this many (~100 bytes each).
constexpr std::size_t kMaxScramCache = 1 << 20;

double uniform01(std::uint64_t& state) {
    state = mix(state);
    return static_cast<double>(state >> 11) * 0x1.0p-53;  // [0, 1)
}

struct Rng {
    std::uint64_t s;
    double u() { return uniform01(s); }
    std::uint64_t below(std::uint64_t n) { return n ? static_cast<std::uint64_t>(u() * n) % n : 0; }
    bool chance(double p) { return u() < p; }
    double exp(double mean) { return -std::log(1.0 - u()) * mean; }
};

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// ---- configuration ----------------------------------------------------------------------------

// Behaviour kinds (docs/load.md, "Profiles"): each session follows one behaviour of one kind.
enum class Kind { webmail, mobile, pop3, sender, mx };
constexpr std::array<const char*, 5> kKindNames = {"webmail", "mobile", "pop3", "sender", "mx"};
constexpr std::array<const char*, 5> kKindProto = {"imap", "imap", "pop3", "smtp", "smtp"};
// The actions each kind chooses between, by weight, and their default weights (the built-in
// profile's, pybindings/millipost/profiles/default.toml).
const std::map<std::string, double>& default_commands(Kind k) {
    static const std::map<std::string, double> webmail = {
        {"list", 5},  {"select", 10}, {"fetch_headers", 25}, {"read", 25},
        {"flag", 10}, {"move", 5},    {"delete", 10},        {"search", 10}};
    static const std::map<std::string, double> mobile = {
        {"idle", 60}, {"fetch_new", 25}, {"flag", 10}, {"delete", 5}};
    static const std::map<std::string, double> pop3 = {{"retrieve", 80}, {"top", 20}};
    static const std::map<std::string, double> none;
    switch (k) {
        case Kind::webmail:
            return webmail;
        case Kind::mobile:
            return mobile;
        case Kind::pop3:
            return pop3;
        default:
            return none;
    }
}

// One behaviour: a kind with its own weight, timing and action weights.
struct Behaviour {
    std::string name;
    Kind kind = Kind::webmail;
    double weight = 0;
    double think_ms = 100, think_max_ms = 0;        // exponential mean, cap (0 = none)
    double actions_mean = 4;                        // webmail, mobile, pop3: actions after login
    std::map<std::string, double> commands;         // action weights (kinds with choices)
    double idle_seconds = 2, idle_max_seconds = 0;  // mobile: IDLE hold, cap (0 = none)
    bool qresync = true;                            // mobile: resynchronise with QRESYNC
    double leave_on_server = 1;                     // pop3: share of sessions that never DELE
    double messages_mean = 1.5;                     // sender, mx: messages per session
    double recipients_mean = 1;                     // sender, mx: RCPTs per message
    std::uint64_t recipients_max = 1;
    bool pipelining = true;  // sender, mx: pipeline MAIL/RCPT/DATA when offered
};

struct Config {
    json::object echo;                      // the configuration after defaults, for the results
    std::map<std::string, Target> targets;  // by protocol
    bool open = false;
    std::uint64_t users = 100;
    double rate_per_user_per_hour = 4;
    std::uint64_t sessions = 10;
    double duration = 10;
    std::uint64_t max_sessions = 0, max_commands = 0;
    std::uint64_t seed = 1;
    std::string run_id;
    unsigned io_threads = 2;
    std::optional<std::string> password;
    std::string domain = "localhost", prefix = "user";
    std::vector<Behaviour> behaviours;  // those of positive weight with a target
    double timeout = 30;
    double session_timeout = 0;  // seconds a session may take before it is abandoned (0: none)
    double closed_restart = 0;   // closed loop: seconds before a worker starts its next session
    std::optional<MessageShape> shape;  // "message": a profile's sizes and mix (else the model's)
    // One of `workers` engine processes (millipost load --workers): this one owns the users i
    // with i % workers == worker, and numbers its sessions, messages and source addresses in
    // its own residue class, so that the processes never collide and each oracle is complete.
    std::uint64_t worker = 0, workers = 1;
    std::uint64_t own_users() const { return (users - worker + workers - 1) / workers; }
    double reply_fraction = 0;  // share of messages that reply to an earlier one
    bool check = true, verify = true, spread_sources = true;
    double contract_sample = 1;  // fraction of sessions checked (checking dominates our CPU)
    double verify_bytes = 0.1;   // fraction of messages whose full bytes verification compares
    std::string contracts_dir;
    std::optional<long> target_pid;
    // How sessions log in: "login" (IMAP LOGIN, POP3 USER/PASS, SMTP AUTH LOGIN), "plain" or
    // "scram-sha-256" (SASL). SMTP senders authenticate on submission:// and smtps:// targets,
    // or on any SMTP target when the key is given.
    std::string auth = "login";
    bool auth_given = false;
    // TLS: the server's certificate is checked only when asked (load tests run against
    // self-signed certificates); ca_file names the trust anchors and turns the check on.
    bool tls_verify = false;
    std::string ca_file;
};

template <class T>
T get(const json::object& o, std::string_view key, T dflt, std::string_view where = "") {
    auto it = o.find(key);
    if (it == o.end() || it->value().is_null()) return dflt;
    try {
        if constexpr (std::is_same_v<T, double>)
            return it->value().to_number<double>();
        else if constexpr (std::is_same_v<T, bool>)
            return it->value().as_bool();
        else if constexpr (std::is_same_v<T, std::string>)
            return std::string(it->value().as_string());
        else
            return it->value().to_number<T>();
    } catch (const std::exception&) {
        throw std::invalid_argument("load config: bad value for " + std::string(where) +
                                    std::string(key));
    }
}

Kind kind_named(std::string_view name, const std::string& where) {
    auto pos = std::find(kKindNames.begin(), kKindNames.end(), name);
    if (pos == kKindNames.end())
        throw std::invalid_argument("load config: " + where + "unknown kind " + std::string(name) +
                                    " (webmail, mobile, pop3, sender or mx)");
    return static_cast<Kind>(pos - kKindNames.begin());
}

// A behaviour from its JSON object: {"name", "kind", "weight", "think_ms", "think_max_ms",
// "actions_mean", "commands": {action: weight}, "idle_seconds", "idle_max_seconds", "qresync",
// "messages_per_session", "recipients_mean", "recipients_max", "pipelining"}. Keys a kind has no
// use for are refused, so a profile never silently means something else.
Behaviour parse_behaviour(const json::value& v, std::size_t i) {
    if (!v.is_object())
        throw std::invalid_argument("load config: behaviours[" + std::to_string(i) +
                                    "] is not an object");
    const auto& o = v.as_object();
    Behaviour b;
    b.name = get<std::string>(o, "name", "");
    auto kind = get<std::string>(o, "kind", b.name);
    std::string where = "behaviours[" + std::to_string(i) + "]" +
                        (b.name.empty() ? "" : " (" + b.name + ")") + ": ";
    b.kind = kind_named(kind, where);
    if (b.name.empty()) b.name = kind;
    std::set<std::string, std::less<>> known = {"name", "kind", "weight", "think_ms",
                                                "think_max_ms"};
    switch (b.kind) {
        case Kind::webmail:
            known.insert({"actions_mean", "commands"});
            break;
        case Kind::pop3:
            known.insert({"actions_mean", "commands", "leave_on_server"});
            break;
        case Kind::mobile:
            known.insert(
                {"actions_mean", "commands", "idle_seconds", "idle_max_seconds", "qresync"});
            break;
        case Kind::sender:
        case Kind::mx:
            known.insert(
                {"messages_per_session", "recipients_mean", "recipients_max", "pipelining"});
            break;
    }
    for (auto& kv : o)
        if (!known.count(kv.key()))
            throw std::invalid_argument("load config: " + where + "unknown key " +
                                        std::string(kv.key()));
    b.weight = get<double>(o, "weight", 1.0, where);
    b.think_ms = get<double>(o, "think_ms", b.think_ms, where);
    b.think_max_ms = get<double>(o, "think_max_ms", 0.0, where);
    b.actions_mean = get<double>(o, "actions_mean", b.kind == Kind::webmail ? 6.0 : 2.0, where);
    b.idle_seconds = get<double>(o, "idle_seconds", b.idle_seconds, where);
    b.idle_max_seconds = get<double>(o, "idle_max_seconds", 0.0, where);
    b.qresync = get<bool>(o, "qresync", true, where);
    b.messages_mean = get<double>(o, "messages_per_session", b.kind == Kind::mx ? 5.0 : 1.5, where);
    b.recipients_mean = get<double>(o, "recipients_mean", b.kind == Kind::mx ? 2.0 : 1.0, where);
    b.recipients_max = get<std::uint64_t>(o, "recipients_max", b.kind == Kind::mx ? 10 : 1, where);
    b.pipelining = get<bool>(o, "pipelining", true, where);
    b.leave_on_server = get<double>(o, "leave_on_server", 1.0, where);
    if (!(b.leave_on_server >= 0 && b.leave_on_server <= 1))
        throw std::invalid_argument("load config: " + where + "leave_on_server is 0 to 1");
    if (b.weight < 0 || b.think_ms < 0 || b.think_max_ms < 0 || b.actions_mean < 0 ||
        b.idle_seconds < 0 || b.idle_max_seconds < 0 || b.messages_mean < 1 ||
        b.recipients_mean < 1 || b.recipients_max < 1)
        throw std::invalid_argument("load config: " + where +
                                    "negative value, or fewer than one message or recipient");
    b.commands = default_commands(b.kind);
    if (auto it = o.find("commands"); it != o.end() && !it->value().is_null()) {
        if (!it->value().is_object())
            throw std::invalid_argument("load config: " + where + "commands is {action: weight}");
        for (auto& [k, w] : b.commands)
            w = 0;  // given commands replace the defaults
        for (auto& kv : it->value().as_object()) {
            auto c = b.commands.find(kv.key());
            if (c == b.commands.end())
                throw std::invalid_argument("load config: " + where + "unknown command " +
                                            std::string(kv.key()));
            c->second = get<double>(it->value().as_object(), kv.key(), 0.0, where);
            if (c->second < 0)
                throw std::invalid_argument("load config: " + where + "negative weight");
        }
    }
    return b;
}

json::object echo_behaviour(const Behaviour& b) {
    json::object o{{"name", b.name},
                   {"kind", kKindNames[static_cast<std::size_t>(b.kind)]},
                   {"weight", b.weight},
                   {"think_ms", b.think_ms},
                   {"think_max_ms", b.think_max_ms}};
    if (b.kind == Kind::sender || b.kind == Kind::mx) {
        o["messages_per_session"] = b.messages_mean;
        o["recipients_mean"] = b.recipients_mean;
        o["recipients_max"] = b.recipients_max;
        o["pipelining"] = b.pipelining;
    } else {
        o["actions_mean"] = b.actions_mean;
        json::object c;
        for (auto& [k, w] : b.commands)
            c[k] = w;
        o["commands"] = std::move(c);
    }
    if (b.kind == Kind::pop3) o["leave_on_server"] = b.leave_on_server;
    if (b.kind == Kind::mobile) {
        o["idle_seconds"] = b.idle_seconds;
        o["idle_max_seconds"] = b.idle_max_seconds;
        o["qresync"] = b.qresync;
    }
    return o;
}

Config parse_config(const json::object& in) {
    static const std::set<std::string, std::less<>> known = {
        "targets",        "mode",
        "users",          "rate_per_user_per_hour",
        "sessions",       "duration",
        "max_sessions",   "max_commands",
        "seed",           "run_id",
        "io_threads",     "password",
        "domain",         "prefix",
        "behaviours",     "profiles",
        "think_ms",       "idle_seconds",
        "timeout",        "messages_per_session",
        "contracts",      "contract_sample",
        "contracts_dir",  "target_pid",
        "verify",         "verify_bytes",
        "spread_sources", "session_timeout",
        "closed_restart", "message",
        "worker",         "workers",
        "auth",           "tls_verify",
        "ca_file"};
    for (auto& kv : in)
        if (!known.count(kv.key()))
            throw std::invalid_argument("load config: unknown key " + std::string(kv.key()));
    Config c;
    json::array urls;
    if (auto it = in.find("targets"); it != in.end()) {
        if (it->value().is_string())
            urls.push_back(it->value());
        else if (it->value().is_array())
            urls = it->value().as_array();
        else
            throw std::invalid_argument("load config: targets is a URL or a list of URLs");
    }
    if (urls.empty()) throw std::invalid_argument("load config: no targets");
    for (auto& u : urls) {
        if (!u.is_string()) throw std::invalid_argument("load config: a target is a URL string");
        auto t = parse_target(u.as_string());
        c.targets[t.protocol] = t;
    }
    auto mode = get<std::string>(in, "mode", "closed");
    if (mode != "open" && mode != "closed")
        throw std::invalid_argument("load config: mode is open or closed");
    c.open = mode == "open";
    c.users = get<std::uint64_t>(in, "users", c.users);
    if (c.users == 0) throw std::invalid_argument("load config: users must be positive");
    c.rate_per_user_per_hour = get<double>(in, "rate_per_user_per_hour", c.rate_per_user_per_hour);
    c.sessions = get<std::uint64_t>(in, "sessions", c.sessions);
    c.duration = get<double>(in, "duration", c.duration);
    if (!(c.duration > 0)) throw std::invalid_argument("load config: duration must be positive");
    c.max_sessions = get<std::uint64_t>(in, "max_sessions", 0);
    c.max_commands = get<std::uint64_t>(in, "max_commands", 0);
    c.seed = get<std::uint64_t>(in, "seed", c.seed);
    c.run_id = get<std::string>(
        in, "run_id",
        std::to_string(mix(static_cast<std::uint64_t>(
                           std::chrono::system_clock::now().time_since_epoch().count())) %
                       1000000000ULL));
    c.io_threads = std::clamp<unsigned>(get<unsigned>(in, "io_threads", c.io_threads), 1, 256);
    if (auto it = in.find("password"); it != in.end() && it->value().is_string())
        c.password = std::string(it->value().as_string());
    c.domain = get<std::string>(in, "domain", c.domain);
    c.prefix = get<std::string>(in, "prefix", c.prefix);
    std::vector<Behaviour> all;
    auto bit = in.find("behaviours");
    bool legacy = false;
    for (const char* k : {"profiles", "think_ms", "idle_seconds", "messages_per_session"})
        if (auto it = in.find(k); it != in.end() && !it->value().is_null()) legacy = true;
    if (bit != in.end() && !bit->value().is_null()) {
        if (legacy)
            throw std::invalid_argument(
                "load config: behaviours replaces profiles, think_ms, idle_seconds and "
                "messages_per_session; give one form");
        if (!bit->value().is_array())
            throw std::invalid_argument("load config: behaviours is a list of objects");
        for (std::size_t i = 0; i < bit->value().as_array().size(); ++i)
            all.push_back(parse_behaviour(bit->value().as_array()[i], i));
    } else {
        // The first form: {kind: weight} and one set of timing parameters for all kinds.
        std::map<std::string, double> weights = {
            {"webmail", 4}, {"mobile", 2}, {"pop3", 2}, {"sender", 3}};
        if (auto it = in.find("profiles"); it != in.end() && !it->value().is_null()) {
            if (!it->value().is_object())
                throw std::invalid_argument("load config: profiles is {name: weight}");
            weights.clear();
            for (auto& kv : it->value().as_object()) {
                kind_named(kv.key(), "profiles: ");
                weights[std::string(kv.key())] = get<double>(it->value().as_object(), kv.key(), 0);
            }
        }
        double think = get<double>(in, "think_ms", 100);
        double idle = get<double>(in, "idle_seconds", 2);
        // This form drew 1 + uniform[0, n) messages a session: mean (n + 1) / 2.
        auto per = get<std::uint64_t>(in, "messages_per_session", 2);
        for (auto& [name, w] : weights) {
            json::object o{{"name", name}, {"weight", w}, {"think_ms", think}};
            if (name == "mobile") o["idle_seconds"] = idle;
            if (name == "sender" || name == "mx")
                o["messages_per_session"] =
                    std::max(1.0, (static_cast<double>(std::max<std::uint64_t>(per, 1)) + 1) / 2);
            all.push_back(parse_behaviour(o, all.size()));
        }
    }
    // A behaviour needs its protocol's target; the mix is what remains.
    double total = 0;
    for (auto& b : all)
        if (b.weight > 0 && c.targets.count(kKindProto[static_cast<std::size_t>(b.kind)])) {
            c.behaviours.push_back(b);
            total += b.weight;
        }
    if (total <= 0)
        throw std::invalid_argument("load config: no behaviour has a target for its protocol");
    c.timeout = get<double>(in, "timeout", c.timeout);
    c.workers = get<std::uint64_t>(in, "workers", 1);
    c.worker = get<std::uint64_t>(in, "worker", 0);
    if (c.workers < 1 || c.worker >= c.workers || c.users < c.workers)
        throw std::invalid_argument(
            "load config: worker must be below workers, and users at least workers");
    c.session_timeout = get<double>(in, "session_timeout", c.session_timeout);
    c.closed_restart = get<double>(in, "closed_restart", c.closed_restart);
    if (!(c.timeout > 0) || !(c.session_timeout >= 0) || !(c.closed_restart >= 0))
        throw std::invalid_argument(
            "load config: timeout must be positive, session_timeout and closed_restart >= 0");
    c.check = get<bool>(in, "contracts", true);
    c.contract_sample = std::clamp(get<double>(in, "contract_sample", 1.0), 0.0, 1.0);
    c.verify = get<bool>(in, "verify", true);
    c.verify_bytes = std::clamp(get<double>(in, "verify_bytes", c.verify_bytes), 0.0, 1.0);
    c.spread_sources = get<bool>(in, "spread_sources", true);
    c.contracts_dir = get<std::string>(in, "contracts_dir", "");
    if (auto it = in.find("message"); it != in.end() && !it->value().is_null()) {
        // The profile's [message] table (docs/load.md), keys as there.
        if (!it->value().is_object())
            throw std::invalid_argument("load config: message is {key: value}");
        const auto& m = it->value().as_object();
        static const std::set<std::string, std::less<>> keys = {
            "size_median_bytes",  "tail_fraction",       "tail_alpha",         "size_max_bytes",
            "multipart_fraction", "attachment_fraction", "non_ascii_fraction", "reply_fraction"};
        for (auto& kv : m)
            if (!keys.count(kv.key()))
                throw std::invalid_argument("load config: message: unknown key " +
                                            std::string(kv.key()));
        MessageShape sh;
        const std::string w = "message.";
        sh.size_median = get<double>(m, "size_median_bytes", sh.size_median, w);
        sh.tail_fraction = get<double>(m, "tail_fraction", sh.tail_fraction, w);
        sh.tail_alpha = get<double>(m, "tail_alpha", sh.tail_alpha, w);
        sh.size_max = get<std::size_t>(m, "size_max_bytes", sh.size_max, w);
        sh.multipart_fraction = get<double>(m, "multipart_fraction", sh.multipart_fraction, w);
        sh.attachment_fraction = get<double>(m, "attachment_fraction", sh.attachment_fraction, w);
        sh.non_ascii_fraction = get<double>(m, "non_ascii_fraction", sh.non_ascii_fraction, w);
        c.reply_fraction = get<double>(m, "reply_fraction", 0.0, w);
        auto frac = [](double x) { return x >= 0 && x <= 1; };
        if (!(sh.size_median >= 100) || !(sh.tail_alpha > 0) ||
            static_cast<double>(sh.size_max) < sh.size_median || !frac(sh.tail_fraction) ||
            !frac(sh.multipart_fraction) || !frac(sh.attachment_fraction) ||
            !frac(sh.non_ascii_fraction) || !frac(c.reply_fraction))
            throw std::invalid_argument(
                "load config: message: size_median_bytes >= 100, size_max_bytes >= it, "
                "tail_alpha > 0, fractions 0 to 1");
        c.shape = sh;
    }
#ifdef MILLIPOST_SOURCE_CONTRACTS_DIR
    if (c.contracts_dir.empty()) c.contracts_dir = MILLIPOST_SOURCE_CONTRACTS_DIR;
#endif
    if (auto it = in.find("target_pid"); it != in.end() && !it->value().is_null())
        c.target_pid = it->value().to_number<long>();
    if (auto it = in.find("auth"); it != in.end() && !it->value().is_null()) {
        c.auth = lower(get<std::string>(in, "auth", c.auth));
        c.auth_given = true;
        if (c.auth != "login" && c.auth != "plain" && c.auth != "scram-sha-256")
            throw std::invalid_argument("load config: auth is login, plain or scram-sha-256");
    }
    c.ca_file = get<std::string>(in, "ca_file", "");
    c.tls_verify = get<bool>(in, "tls_verify", !c.ca_file.empty());

    json::object& e = c.echo;
    json::array t;
    for (auto& [proto, tg] : c.targets)
        t.push_back(json::string(tg.scheme + "://" + tg.host + ":" + std::to_string(tg.port) +
                                 (tg.starttls && tg.scheme != "submission" ? "?starttls" : "")));
    e["targets"] = std::move(t);
    e["auth"] = c.auth;
    e["tls_verify"] = c.tls_verify;
    if (!c.ca_file.empty()) e["ca_file"] = c.ca_file;
    e["mode"] = mode;
    e["users"] = c.users;
    e["rate_per_user_per_hour"] = c.rate_per_user_per_hour;
    e["sessions"] = c.sessions;
    e["duration"] = c.duration;
    e["max_sessions"] = c.max_sessions;
    e["max_commands"] = c.max_commands;
    e["seed"] = c.seed;
    e["run_id"] = c.run_id;
    e["io_threads"] = c.io_threads;
    e["password"] = c.password ? json::value(*c.password) : json::value(nullptr);
    e["domain"] = c.domain;
    e["prefix"] = c.prefix;
    json::array bs;
    for (auto& b : all)  // all of them: a run is repeatable from its echo
        bs.push_back(echo_behaviour(b));
    e["behaviours"] = std::move(bs);
    e["timeout"] = c.timeout;
    e["worker"] = c.worker;
    e["workers"] = c.workers;
    e["session_timeout"] = c.session_timeout;
    e["closed_restart"] = c.closed_restart;
    e["contracts"] = c.check;
    e["contract_sample"] = c.contract_sample;
    e["contracts_dir"] = c.contracts_dir;
    e["target_pid"] = c.target_pid ? json::value(*c.target_pid) : json::value(nullptr);
    e["verify"] = c.verify;
    e["verify_bytes"] = c.verify_bytes;
    e["spread_sources"] = c.spread_sources;
    if (c.shape)
        e["message"] = json::object{{"size_median_bytes", c.shape->size_median},
                                    {"tail_fraction", c.shape->tail_fraction},
                                    {"tail_alpha", c.shape->tail_alpha},
                                    {"size_max_bytes", c.shape->size_max},
                                    {"multipart_fraction", c.shape->multipart_fraction},
                                    {"attachment_fraction", c.shape->attachment_fraction},
                                    {"non_ascii_fraction", c.shape->non_ascii_fraction},
                                    {"reply_fraction", c.reply_fraction}};
    return c;
}

// ---- messages ---------------------------------------------------------------------------------

struct Message {
    std::string bytes;  // CRLF lines
    std::string id;     // X-Millipost-Id value
};

// A small RFC 5322 message until sim/message_gen.h lands (same X-Millipost-Id header, so
// switching to generate_message() is one line). The run id keeps ids of repeated runs against
// one server apart.
// A realistic message from the generator (sim/message_gen.h), its X-Millipost-Id replaced by
// "<seed>.<run id>.<index>" so that runs against one server never share ids and the oracle can
// tell this run's messages from earlier ones.
Message make_message(const Config& cfg, std::uint64_t index, const std::string& from,
                     const std::string& to) {
    auto seed = cfg.seed;
    const auto& run_id = cfg.run_id;
    MessageSpec spec{seed, index, from, to, std::nullopt, cfg.shape};
    // A reply names an earlier message of the run as its parent (threads), all from the index.
    Rng pick{derive(seed, index, 31)};
    if (index > 0 && cfg.reply_fraction > 0 && pick.u() < cfg.reply_fraction)
        spec.in_reply_to =
            message_id(seed, index - 1 - pick.below(std::min<std::uint64_t>(index, 64)));
    auto g = generate_message(spec);
    Message m;
    m.id = std::to_string(seed) + "." + run_id + "." + std::to_string(index);
    const std::string key = std::string(kIdHeader) + ": ";
    auto head_end = g.bytes.find("\r\n\r\n");
    auto at = g.bytes.find(key);
    if (at == std::string::npos || at > head_end)
        throw std::logic_error("generated message lacks its " + std::string(kIdHeader));
    auto value = at + key.size();
    g.bytes.replace(value, g.bytes.find("\r\n", value) - value, m.id);
    m.bytes = std::move(g.bytes);
    return m;
}

std::string dot_stuff(const std::string& msg) {
    std::string out;
    out.reserve(msg.size() + msg.size() / 50 + 8);
    bool bol = true;
    for (char c : msg) {
        if (bol && c == '.') out += '.';
        out += c;
        bol = c == '\n';
    }
    if (!out.empty() && out.back() != '\n') out += "\r\n";
    out += ".\r\n";
    return out;
}

// ---- shared state -----------------------------------------------------------------------------

struct CmdStats {
    Histogram latency;
    std::uint64_t count = 0, errors = 0;
};

// Per io thread: sessions on one thread record here, so the lock is almost never contended.
class Conn;

struct Shard {
    std::mutex mu;
    std::map<std::string, CmdStats> cmds;
    std::map<std::string, std::uint64_t> errors;
    std::map<std::string, std::uint64_t> refusals;
    // Timers of sessions waiting out a think time or an IDLE: stopping cancels them all. Only
    // this shard's io thread touches the set (the stop posts its cancelling there), so waits
    // cost no lock and no polling, whatever their length.
    std::set<asio::steady_timer*> waiting;
    // Open connections (touched only on this shard's thread), so that sessions still running
    // when the drain gives up can be named with their transcripts.
    std::set<const Conn*> live;
    std::uint64_t sec_commands = 0, sec_errors = 0;  // since the last timeline tick
    Histogram sec_latency;
};

// What the oracle remembers of a delivered message: enough to regenerate its bytes.
struct Delivery {
    std::uint64_t index = 0;  // the generator's index
    std::string from, to;     // the addresses generate_message() was given
};

// Flags a session set on a message and the server acknowledged. A STORE that overlapped
// another on the same flag, or whose outcome is unknown, makes the flag's final state
// ambiguous: it is then not checked.
struct FlagState {
    bool value = false, known = false, ambiguous = false;
    unsigned in_flight = 0;
};

class Oracle {
  public:
    void delivered(std::uint64_t user, const std::string& id, const Delivery& d) {
        std::lock_guard l(mu_);
        expected_[user].push_back(id);
        deliveries_.emplace(id, d);
        ++delivered_;
    }
    // Deletions and moves are per user: a message sent to several users is one id in several
    // mailboxes, and one user's delete excuses no other's loss.
    void deleted(const std::string& login, const std::string& id) {
        std::lock_guard l(mu_);
        deleted_.insert(login + '\0' + id);
    }
    void moved(const std::string& login, const std::string& id) {
        std::lock_guard l(mu_);
        moved_.insert(login + '\0' + id);
    }
    // A POP3 DELE that QUIT's +OK committed (RFC 1939 §6): the message must be gone from INBOX
    // (unless a session moved it, which may have put a copy back).
    void committed_delete(const std::string& login, const std::string& id) {
        std::lock_guard l(mu_);
        committed_.insert(login + '\0' + id);
    }
    bool must_be_gone(const std::string& login, const std::string& id) {
        std::lock_guard l(mu_);
        auto key = login + '\0' + id;
        return committed_.count(key) > 0 && !moved_.count(key);
    }
    // A UID seen holding a message id: the same (mailbox, UIDVALIDITY, UID) must always hold
    // the same message. `transcript()` gives the session's excerpt, only built for a violation
    // (each FETCH of a listing sees 20 UIDs).
    template <class Transcript>
    void seen(const std::string& login, const std::string& mailbox, std::uint64_t uidvalidity,
              std::uint64_t uid, const std::string& id, const Transcript& transcript) {
        std::lock_guard l(mu_);
        auto [it, fresh] = uids_.emplace(uid_key(login, mailbox, uidvalidity, uid), id);
        if (!fresh && it->second != id)
            violation_locked("uid-reused", login, mailbox, id,
                             "UID " + std::to_string(uid) + " (UIDVALIDITY " +
                                 std::to_string(uidvalidity) + ") held " + it->second + " before",
                             transcript());
    }
    // The id a UID was seen holding, if any.
    std::optional<std::string> at(const std::string& login, const std::string& mailbox,
                                  std::uint64_t uidvalidity, std::uint64_t uid) {
        std::lock_guard l(mu_);
        auto it = uids_.find(uid_key(login, mailbox, uidvalidity, uid));
        if (it == uids_.end()) return std::nullopt;
        return it->second;
    }
    // A STORE of `flag` (to `value`) on message `id` of `login` is about to be sent / has been
    // answered (`applied`: OK with the message's FETCH in the answer; false: unknown outcome).
    void flag_begin(const std::string& login, const std::string& id, const std::string& flag) {
        std::lock_guard l(mu_);
        auto& f = flags_[login + '\0' + id + '\0' + flag];
        if (f.in_flight++ > 0) f.ambiguous = true;
    }
    void flag_end(const std::string& login, const std::string& id, const std::string& flag,
                  bool value, bool applied) {
        std::lock_guard l(mu_);
        auto& f = flags_[login + '\0' + id + '\0' + flag];
        if (f.in_flight > 0) --f.in_flight;
        if (!applied || f.in_flight > 0) {
            f.ambiguous = true;
            return;
        }
        f.value = value;
        f.known = true;
    }
    // The flag's expected state, when one is known and unambiguous.
    std::optional<bool> flag_expected(const std::string& login, const std::string& id,
                                      const std::string& flag) {
        std::lock_guard l(mu_);
        auto it = flags_.find(login + '\0' + id + '\0' + flag);
        if (it == flags_.end() || !it->second.known || it->second.ambiguous || it->second.in_flight)
            return std::nullopt;
        return it->second.value;
    }
    void violation(std::string kind, const std::string& user, const std::string& mailbox,
                   const std::string& id, std::string detail, const std::string& transcript = "") {
        std::lock_guard l(mu_);
        violation_locked(std::move(kind), user, mailbox, id, std::move(detail), transcript);
    }
    std::map<std::uint64_t, std::vector<std::string>> expected() {
        std::lock_guard l(mu_);
        return expected_;
    }
    std::optional<Delivery> delivery(const std::string& id) {
        std::lock_guard l(mu_);
        auto it = deliveries_.find(id);
        if (it == deliveries_.end()) return std::nullopt;
        return it->second;
    }
    bool was_deleted(const std::string& login, const std::string& id) {
        std::lock_guard l(mu_);
        return deleted_.count(login + '\0' + id) > 0;
    }
    // Deleted or moved out by a session of that user.
    bool was_removed(const std::string& login, const std::string& id) {
        std::lock_guard l(mu_);
        auto key = login + '\0' + id;
        return deleted_.count(key) > 0 || moved_.count(key) > 0;
    }
    std::uint64_t delivered_count() {
        std::lock_guard l(mu_);
        return delivered_;
    }
    std::uint64_t violation_count() {
        std::lock_guard l(mu_);
        return count_;
    }
    json::array violations() {
        std::lock_guard l(mu_);
        return reported_;
    }

  private:
    static std::string uid_key(const std::string& login, const std::string& mailbox,
                               std::uint64_t uidvalidity, std::uint64_t uid) {
        return login + '\0' + mailbox + '\0' + std::to_string(uidvalidity) + '\0' +
               std::to_string(uid);
    }
    void violation_locked(std::string kind, const std::string& user, const std::string& mailbox,
                          const std::string& id, std::string detail,
                          const std::string& transcript) {
        ++count_;
        if (reported_.size() < kMaxReported)
            reported_.push_back(json::object{{"kind", kind},
                                             {"user", user},
                                             {"mailbox", mailbox},
                                             {"message_id", id},
                                             {"detail", detail},
                                             {"transcript", transcript}});
    }
    std::mutex mu_;
    std::map<std::uint64_t, std::vector<std::string>> expected_;  // user -> acknowledged ids
    std::unordered_map<std::string, Delivery> deliveries_;        // id -> how to regenerate it
    std::set<std::string> deleted_;    // login, id: a session of the user expunged it
    std::set<std::string> moved_;      // login, id: a session of the user moved it
    std::set<std::string> committed_;  // login, id: POP3 deleted it, QUIT acknowledged
    std::unordered_map<std::string, std::string> uids_;
    std::unordered_map<std::string, FlagState> flags_;  // login, id, flag -> state
    std::uint64_t delivered_ = 0, count_ = 0;
    json::array reported_;
};

struct Contracts {
    std::optional<contracts::Contract> smtp, imap, pop3;
    const contracts::Contract* get(const std::string& proto) const {
        const auto& c = proto == "smtp" ? smtp : proto == "imap" ? imap : pop3;
        return c ? &*c : nullptr;
    }
};

class Engine;

// ---- one connection ---------------------------------------------------------------------------

// One client connection: socket, read buffer, the contract checker fed with every byte both
// ways, and the recording of latencies and errors under "PROTO VERB".
class Conn {
  public:
    Conn(Engine& e, unsigned shard, const std::string& proto, std::uint64_t session, bool record);
    ~Conn();
    awaitable<bool> connect();
    // The TLS handshake on the connected socket (implicit TLS from connect(); after a STARTTLS
    // go-ahead with `restart`: a line-framed checker (SMTP, POP3), which stops judging at the
    // go-ahead, resumes in the state after the handshake, so the session inside TLS is
    // checked; the IMAP checker goes on judging the decrypted stream itself).
    awaitable<bool> handshake(bool restart);
    const Target& target() const { return target_; }
    awaitable<bool> send(std::string data);
    // The next line (CRLF stripped), or nullopt on timeout, close or error (recorded).
    awaitable<std::optional<std::string>> line(Clock::time_point deadline);
    awaitable<std::optional<std::string>> line() {
        auto l = co_await line(Clock::now() + timeout_);
        co_return l;
    }
    // Exactly n raw bytes (an IMAP literal).
    awaitable<std::optional<std::string>> bytes(std::size_t n);
    // Waits up to `until` for data without calling silence an error; false if the connection
    // failed. Used for IDLE.
    awaitable<bool> wait_data(Clock::time_point until);
    bool has_line() const { return in_.find("\r\n", pos_) != std::string::npos; }
    void record(const std::string& verb, Clock::time_point t0, bool ok);
    void error(const std::string& kind);
    void refusal(const std::string& kind);  // an answer the protocol allows, not a fault
    void close_clean();  // after QUIT/LOGOUT: the checker's end-of-stream rules apply
    bool failed() const { return failed_; }
    // When the session is abandoned (session_timeout): every wait ends there at the latest.
    Clock::time_point deadline() const { return session_deadline_; }
    const std::string& proto_upper() const { return proto_upper_; }
    Engine& engine() { return e_; }
    Shard& shard() { return shard_; }
    // The last lines both ways ("C: ", "S: "), long payloads elided: a violation's excerpt.
    std::string transcript() const {
        std::string out;
        for (std::size_t i = 0; i < log_n_; ++i)
            out.append(log_[(log_next_ + kTranscriptLines - log_n_ + i) % kTranscriptLines])
                .append("\n");
        return out;
    }
    std::uint64_t session() const { return session_; }

  private:
    enum class Fill { data, timeout, closed };
    // interruptible: the run's stop cuts the wait short (as a timeout).
    awaitable<Fill> fill(Clock::time_point deadline, bool interruptible = false);
    void check(contracts::Verdict v);

    Engine& e_;
    Shard& shard_;
    std::string proto_, proto_upper_;
    std::uint64_t session_;
    bool record_;
    const Target& target_;
    tcp::socket sock_;
    // TLS over sock_ once handshake() ran; reads and writes then go through it.
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
    const contracts::Contract* contract_ = nullptr;  // set when this session is checked
    using ReadRace = std::tuple<std::array<std::size_t, 2>, boost::system::error_code, std::size_t,
                                boost::system::error_code>;
    template <class Stream>
    awaitable<bool> write_wait(Stream& s, asio::const_buffer b);
    template <class Stream>
    awaitable<ReadRace> read_race(Stream& s, asio::steady_timer& timer);
    void note(const char* who, std::string_view text);
    void note_sent(std::string_view data);
    void note_literal(std::size_t n);
    std::string in_;
    std::size_t pos_ = 0;
    // The last kTranscriptLines lines, a ring whose strings keep their capacity: noting a line
    // (every line both ways) then allocates nothing.
    std::array<std::string, kTranscriptLines> log_;
    std::size_t log_next_ = 0, log_n_ = 0;
    std::array<char, 16384> rbuf_;
    std::optional<contracts::Checker> checker_;
    bool breached_ = false, failed_ = false;
    bool expired_ = false;  // the session deadline ended a wait
    std::chrono::steady_clock::duration timeout_;
    Clock::time_point session_deadline_ = Clock::time_point::max();
};

// ---- the engine -------------------------------------------------------------------------------

class Engine {
  public:
    explicit Engine(Config c)
        : cfg(std::move(c)), population(cfg.seed, cfg.users, cfg.password, cfg.domain, cfg.prefix) {
        if (cfg.check) {
            auto load = [&](const char* name) {
                auto path = cfg.contracts_dir + "/" + name + ".contract";
                try {
                    return contracts::Contract::load(path);
                } catch (const std::exception& ex) {
                    throw std::invalid_argument(std::string("load: contract ") + path + ": " +
                                                ex.what());
                }
            };
            if (cfg.targets.count("smtp")) contracts.smtp.emplace(load("smtp"));
            if (cfg.targets.count("imap")) contracts.imap.emplace(load("imap"));
            if (cfg.targets.count("pop3")) contracts.pop3.emplace(load("pop3"));
        }
        bool tls = false;
        for (auto& [proto, t] : cfg.targets)
            tls = tls || t.tls || t.starttls;
        if (tls) {
            tls_ctx.emplace(asio::ssl::context::tls_client);
            tls_ctx->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                                 asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
            if (cfg.tls_verify) {
                boost::system::error_code ec;
                if (cfg.ca_file.empty())
                    tls_ctx->set_default_verify_paths(ec);
                else
                    tls_ctx->load_verify_file(cfg.ca_file, ec);
                if (ec)
                    throw std::invalid_argument("load config: ca_file " + cfg.ca_file + ": " +
                                                ec.message());
                tls_ctx->set_verify_mode(asio::ssl::verify_peer);
            } else {
                tls_ctx->set_verify_mode(asio::ssl::verify_none);
            }
        }
        for (unsigned i = 0; i < cfg.io_threads; ++i) {
            ctxs.push_back(std::make_unique<asio::io_context>(1));
            shards.push_back(std::make_unique<Shard>());
        }
    }

    // Sessions abandoned at the end are coroutine frames still in the io_contexts: destroy
    // those first, while the shards and the oracle their destructors touch still exist.
    ~Engine() { ctxs.clear(); }

    json::object run(const ProgressFn& progress, const std::atomic<bool>* stop);

    bool stopping() const {
        return stop_.load(std::memory_order_relaxed) ||
               (cfg.max_commands && commands.load(std::memory_order_relaxed) >= cfg.max_commands);
    }
    void breach(const std::string& proto, std::uint64_t session, const contracts::Breach& b) {
        std::lock_guard l(mu);
        ++breaches;
        if (breach_list.size() < kMaxReported)
            breach_list.push_back(
                json::object{{"session", session},
                             {"protocol", proto},
                             {"who", b.who == contracts::Breach::Who::client ? "client" : "server"},
                             {"rule", b.rule},
                             {"state", b.state},
                             {"bytes", b.bytes},
                             {"reason", b.reason}});
    }
    // Waits for `d` (a think time) on a shard's thread, waking early when the run stops.
    awaitable<void> sleep(Shard& shard, Clock::duration d) {
        if (d <= Clock::duration::zero()) co_return;
        asio::steady_timer t(co_await asio::this_coro::executor);
        t.expires_after(d);
        // Registered before the flag is read: a stop either sees the timer or is seen here.
        shard.waiting.insert(&t);
        if (!stopping()) co_await t.async_wait(use_tuple);
        shard.waiting.erase(&t);
    }
    // A think time of behaviour b: exponential, capped at think_max_ms when set.
    // It ends at the session's deadline at the latest (the next reply then times out).
    awaitable<void> think(Rng& rng, Conn& c, const Behaviour& b);
    // QRESYNC state of a user's INBOX from its last mobile session: (UIDVALIDITY, HIGHESTMODSEQ).
    std::optional<std::pair<std::uint64_t, std::uint64_t>> sync_state(std::uint64_t user) {
        std::lock_guard l(mu);
        auto it = sync.find(user);
        if (it == sync.end()) return std::nullopt;
        return it->second;
    }
    void remember_sync(std::uint64_t user, std::uint64_t uidvalidity, std::uint64_t modseq) {
        std::lock_guard l(mu);
        sync[user] = {uidvalidity, modseq};
    }
    // Sets the stop flag and wakes every waiting session on its own thread.
    void request_stop() {
        stop_ = true;
        for (std::size_t i = 0; i < ctxs.size(); ++i)
            asio::post(*ctxs[i], [shard = shards[i].get()] {
                for (auto* t : shard->waiting)
                    t->cancel();
            });
    }
    // Counts a session about to start, unless max_sessions are already started.
    bool claim_session() {
        active.fetch_add(1);  // first: the run never sees all started and none active early
        auto n = started.load();
        do {
            if (cfg.max_sessions && n >= cfg.max_sessions) {
                active.fetch_sub(1);
                return false;
            }
        } while (!started.compare_exchange_weak(n, n + 1));
        return true;
    }
    std::uint64_t next_source() {
        return sources.fetch_add(1, std::memory_order_relaxed) * cfg.workers + cfg.worker;
    }
    std::uint64_t next_session_id() {
        return session_ids.fetch_add(1, std::memory_order_relaxed) * cfg.workers + cfg.worker;
    }
    std::uint64_t next_message_index() {
        return msg_index.fetch_add(1, std::memory_order_relaxed) * cfg.workers + cfg.worker;
    }
    // A user of this worker's partition (all users with one worker).
    std::uint64_t pick_user(Rng& rng) const {
        return cfg.worker + cfg.workers * rng.below(cfg.own_users());
    }

    // SCRAM's SaltedPassword = PBKDF2(password, salt, i) for (login, password, salt, i): the
    // server's iteration count makes it the dearest step of a login, and it only changes when
    // the password or the salt does.
    std::string salted_password(const std::string& login, const std::string& password,
                                const std::string& salt, unsigned iterations) {
        std::string key = login + '\0' + password + '\0' + salt + '\0' + std::to_string(iterations);
        {
            std::lock_guard l(scram_mu);
            if (auto it = scram_cache.find(key); it != scram_cache.end()) return it->second;
        }
        std::string out(SHA256_DIGEST_LENGTH, '\0');
        PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                          static_cast<int>(out.size()),
                          reinterpret_cast<unsigned char*>(out.data()));
        pbkdf2_runs.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard l(scram_mu);
        if (scram_cache.size() >= kMaxScramCache) scram_cache.clear();
        scram_cache.emplace(std::move(key), out);
        return out;
    }

    Config cfg;
    Population population;
    Contracts contracts;
    std::optional<asio::ssl::context> tls_ctx;  // when a target speaks TLS
    std::mutex scram_mu;
    std::unordered_map<std::string, std::string> scram_cache;
    std::atomic<std::uint64_t> pbkdf2_runs{0};
    std::vector<std::unique_ptr<asio::io_context>> ctxs;
    std::vector<std::unique_ptr<Shard>> shards;
    Oracle oracle;
    std::atomic<std::uint64_t> started{0}, active{0}, commands{0}, session_ids{0}, msg_index{0},
        sources{0}, verified{0}, bytes_checked{0};
    std::atomic<bool> generating{true};
    std::atomic<bool> stop_{false};
    std::mutex mu;
    std::uint64_t breaches = 0;
    json::array breach_list;
    json::array error_samples;  // the first errors with their sessions' transcripts
    std::atomic<bool> error_samples_full{false};
    std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> sync;  // QRESYNC

  private:
    awaitable<void> session(unsigned shard, const Behaviour& b, std::uint64_t user);
    awaitable<void> closed_worker(unsigned shard);
    awaitable<void> arrivals();
    awaitable<void> verifier(unsigned shard, std::shared_ptr<std::vector<std::uint64_t>> users,
                             std::shared_ptr<std::atomic<std::size_t>> next,
                             std::shared_ptr<std::atomic<unsigned>> running);
    const Behaviour& pick_behaviour(Rng& rng) const {
        double total = 0;
        for (auto& b : cfg.behaviours)
            total += b.weight;
        double x = rng.u() * total;
        for (auto& b : cfg.behaviours) {
            if (x < b.weight) return b;
            x -= b.weight;
        }
        return cfg.behaviours.back();  // parse_config keeps only positive weights
    }
};

Conn::Conn(Engine& e, unsigned shard, const std::string& proto, std::uint64_t session, bool record)
    : e_(e),
      shard_(*e.shards[shard]),
      proto_(proto),
      proto_upper_(proto == "smtp"   ? "SMTP"
                   : proto == "imap" ? "IMAP"
                                     : "POP3"),
      session_(session),
      record_(record),
      target_(e.cfg.targets.at(proto)),
      sock_(*e.ctxs[shard]),
      timeout_(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(e.cfg.timeout))) {
    // Sampled sessions are picked from the session id, so a repeated run checks the same ones.
    Rng pick{derive(e.cfg.seed, session, 23)};
    if (auto* c = e.contracts.get(proto); c && pick.u() < e.cfg.contract_sample) {
        contract_ = c;
        checker_.emplace(*c);
    }
    if (record && e.cfg.session_timeout > 0)
        session_deadline_ =
            Clock::now() + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(e.cfg.session_timeout));
    shard_.live.insert(this);
}

awaitable<void> Engine::think(Rng& rng, Conn& c, const Behaviour& b) {
    double ms = rng.exp(b.think_ms);
    if (b.think_max_ms > 0) ms = std::min(ms, b.think_max_ms);
    Clock::duration d = std::chrono::microseconds(static_cast<long>(ms * 1000));
    auto left = c.deadline() - Clock::now();  // (max() - now: no overflow for a steady clock)
    co_await sleep(c.shard(), std::min(d, left));
}

Conn::~Conn() {
    shard_.live.erase(this);
    tls_.reset();
    boost::system::error_code ec;
    sock_.close(ec);
}

void Conn::check(contracts::Verdict v) {
    if (v && !breached_) {
        breached_ = true;  // verdicts are sticky: one breach per connection
        e_.breach(proto_, session_, *v);
    }
}

void Conn::record(const std::string& verb, Clock::time_point t0, bool ok) {
    auto us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
    if (!record_) return;
    e_.commands.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard l(shard_.mu);
    auto& s = shard_.cmds[proto_upper_ + " " + verb];
    ++s.count;
    s.latency.add(us);
    if (!ok) ++s.errors;
    ++shard_.sec_commands;
    shard_.sec_latency.add(us);
}

void Conn::error(const std::string& kind) {
    {
        std::lock_guard l(shard_.mu);
        ++shard_.errors[kind];
        ++shard_.sec_errors;
    }
    // Once the samples are taken (an overloaded run has errors by the thousand), no lock.
    if (e_.error_samples_full.load(std::memory_order_relaxed)) return;
    std::lock_guard l(e_.mu);
    if (e_.error_samples.size() + 1 >= kMaxErrorSamples) e_.error_samples_full = true;
    if (e_.error_samples.size() < kMaxErrorSamples)
        e_.error_samples.push_back(
            json::object{{"kind", kind}, {"session", session_}, {"transcript", transcript()}});
}

void Conn::refusal(const std::string& kind) {
    std::lock_guard l(shard_.mu);
    ++shard_.refusals[kind];
}

void Conn::close_clean() {
    if (checker_ && !failed_) check(checker_->on_close());
    tls_.reset();  // no close_notify: the session is over, the server sees the TCP close
    boost::system::error_code ec;
    sock_.close(ec);
}

awaitable<bool> Conn::connect() {
    auto& cfg = e_.cfg;
    const auto& t = cfg.targets.at(proto_);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(t.host, ec);
    tcp::endpoint ep;
    if (!ec) {
        ep = tcp::endpoint(addr, t.port);
    } else {
        tcp::resolver r(sock_.get_executor());
        auto [rec, results] = co_await r.async_resolve(t.host, std::to_string(t.port), use_tuple);
        if (rec || results.empty()) {
            error("resolve failed");
            failed_ = true;
            co_return false;
        }
        ep = *results.begin();
    }
    sock_.open(ep.protocol(), ec);
    if (ec) {
        error("socket: " + ec.message());
        failed_ = true;
        co_return false;
    }
    if (cfg.spread_sources && ep.address().is_v4() && ep.address().to_v4().to_bytes()[0] == 127) {
        // Let connect() pick the port for the 4-tuple, not bind(): otherwise each bound port is
        // taken on every address and spreading gains nothing.
        int one = 1;
        ::setsockopt(sock_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sock_.bind(tcp::endpoint(source_address(e_.next_source()), 0), ec);
        if (ec) {
            error("bind: " + ec.message());
            failed_ = true;
            co_return false;
        }
    }
    asio::steady_timer timer(sock_.get_executor());
    timer.expires_at(std::min(Clock::now() + timeout_, session_deadline_));
    auto r = co_await (sock_.async_connect(ep, use_tuple) || timer.async_wait(use_tuple));
    if (r.index() == 1) {
        error(Clock::now() >= session_deadline_ ? "timeout" : "connect timeout");
        failed_ = true;
        co_return false;
    }
    auto [cec] = std::get<0>(r);
    if (cec) {
        error(cec == asio::error::connection_refused ? "connect refused"
                                                     : "connect: " + cec.message());
        failed_ = true;
        co_return false;
    }
    sock_.set_option(tcp::no_delay(true), ec);
    if (target_.tls) {
        bool ok = co_await handshake(false);
        co_return ok;
    }
    co_return true;
}

awaitable<bool> Conn::handshake(bool restart) {
    if (failed_) co_return false;
    // RFC 3207 §4 / the STARTTLS injection class: nothing may follow the go-ahead in the clear.
    if (pos_ < in_.size()) {
        error("TLS: plaintext after the STARTTLS go-ahead");
        failed_ = true;
        co_return false;
    }
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(sock_, *e_.tls_ctx);
    boost::system::error_code aec;
    asio::ip::make_address(target_.host, aec);
    if (aec) SSL_set_tlsext_host_name(tls_->native_handle(), target_.host.c_str());  // SNI
    if (e_.cfg.tls_verify)
        tls_->set_verify_callback(asio::ssl::host_name_verification(target_.host));
    auto t0 = Clock::now();
    asio::steady_timer timer(sock_.get_executor());
    timer.expires_at(std::min(Clock::now() + timeout_, session_deadline_));
    auto r = co_await (tls_->async_handshake(asio::ssl::stream_base::client, use_tuple) ||
                       timer.async_wait(use_tuple));
    if (r.index() == 1) {
        record("TLS", t0, false);
        error(Clock::now() >= session_deadline_ ? "timeout" : "TLS handshake timeout");
        failed_ = true;
        co_return false;
    }
    auto [hec] = std::get<0>(r);
    record("TLS", t0, !hec);
    if (hec) {
        error("TLS handshake: " + hec.message());
        failed_ = true;
        co_return false;
    }
    if (restart && checker_ && checker_->opaque() && !checker_->resume_tls()) {
        // The line framing's `tls` state made the checker opaque (it judged the go-ahead and
        // that nothing followed it). resume_tls() goes on with the decrypted session in the
        // contract's resume state (SMTP: before EHLO, RFC 3207 §4.2; POP3: AUTHORIZATION),
        // where STARTTLS/STLS must not be advertised again. A contract without one: a fresh
        // checker from the state after a made-up greeting (only fed to the checker, never noted
        // or recorded). The IMAP contract's `tls` state is not opaque: the same checker judges
        // the decrypted session (capabilities without STARTTLS, LOGIN and AUTHENTICATE).
        checker_.reset();
        checker_.emplace(*contract_);
        check(checker_->on_server(proto_ == "smtp" ? "220 tls\r\n" : "+OK tls\r\n"));
    }
    co_return true;
}

// (Not in the coroutine: g++ 12 mishandles temporaries of such blocks in coroutine frames.)
void Conn::note_sent(std::string_view v) {
    // The command line(s); a message body or literal is summed up, not copied.
    for (int n = 0; !v.empty() && n < 3; ++n) {
        auto eol = v.find("\r\n");
        note("C: ", v.substr(0, eol));
        v = eol == std::string_view::npos ? std::string_view{} : v.substr(eol + 2);
    }
    if (!v.empty()) note("C: ", "... " + std::to_string(v.size()) + " more octets");
}

void Conn::note_literal(std::size_t n) {
    note("S: ", "(" + std::to_string(n) + " octets of literal)");
}

void Conn::note(const char* who, std::string_view text) {
    std::string& l = log_[log_next_];
    log_next_ = (log_next_ + 1) % kTranscriptLines;
    log_n_ = std::min(log_n_ + 1, kTranscriptLines);
    l.assign(who);
    if (text.size() > kTranscriptWidth)
        l.append(text.substr(0, kTranscriptWidth)).append("...");
    else
        l.append(text);
}

awaitable<bool> Conn::send(std::string data) {
    if (failed_) co_return false;
    note_sent(data);
    if (checker_) check(checker_->on_client(data));
    if (tls_) {
        // No non-blocking fast path through TLS: a partial SSL_write must be finished by the
        // same engine, so every write goes through async_write.
        bool ok = co_await write_wait(*tls_, asio::buffer(data));
        co_return ok;
    }
    // Commands are small: the socket nearly always takes them at once, without the timer and
    // the awaitable group a wait costs. Only what it does not take is waited for.
    boost::system::error_code wec;
    if (!sock_.non_blocking()) sock_.non_blocking(true, wec);
    std::size_t sent = wec ? 0 : sock_.write_some(asio::buffer(data), wec);
    if (wec && wec != asio::error::would_block && wec != asio::error::try_again) {
        error("write: " + wec.message());
        failed_ = true;
        co_return false;
    }
    if (sent == data.size()) co_return true;
    bool ok = co_await write_wait(sock_, asio::buffer(data) + sent);
    co_return ok;
}

// Writes all of `b` within the reply timeout and the session's deadline.
template <class Stream>
awaitable<bool> Conn::write_wait(Stream& s, asio::const_buffer b) {
    asio::steady_timer timer(sock_.get_executor());
    timer.expires_at(std::min(Clock::now() + timeout_, session_deadline_));
    auto r = co_await (asio::async_write(s, b, use_tuple) || timer.async_wait(use_tuple));
    if (r.index() == 1) {
        error("timeout");
        failed_ = true;
        co_return false;
    }
    auto [ec, n] = std::get<0>(r);
    if (ec) {
        error("write: " + ec.message());
        failed_ = true;
        co_return false;
    }
    co_return true;
}

template <class Stream>
awaitable<Conn::ReadRace> Conn::read_race(Stream& s, asio::steady_timer& timer) {
    // A parallel group rather than `||`: it hands back what the read got even when the timer
    // (a deadline, or the stop cancelling it) finished first, so no byte is ever dropped
    // (through TLS, ciphertext already received stays in the TLS engine).
    auto r = co_await asio::experimental::make_parallel_group(
                 s.async_read_some(asio::buffer(rbuf_), asio::deferred),
                 timer.async_wait(asio::deferred))
                 .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    co_return r;
}

awaitable<Conn::Fill> Conn::fill(Clock::time_point deadline, bool interruptible) {
    if (pos_ > 0 && pos_ * 2 > in_.size()) {
        in_.erase(0, pos_);
        pos_ = 0;
    }
    asio::steady_timer timer(sock_.get_executor());
    timer.expires_at(std::min(deadline, session_deadline_));
    if (interruptible) {
        shard_.waiting.insert(&timer);
        if (e_.stopping()) {
            shard_.waiting.erase(&timer);
            co_return Fill::timeout;
        }
    }
    ReadRace r;
    if (tls_)
        r = co_await read_race(*tls_, timer);
    else
        r = co_await read_race(sock_, timer);
    if (interruptible) shard_.waiting.erase(&timer);
    auto ec = std::get<1>(r);
    auto n = std::get<2>(r);
    if (n > 0) {
        std::string_view got(rbuf_.data(), n);
        if (checker_) check(checker_->on_server(got));
        in_.append(got);
        co_return Fill::data;
    }
    if (std::get<0>(r)[0] == 1) {
        if (Clock::now() >= session_deadline_) expired_ = true;
        co_return Fill::timeout;
    }
    if (ec && n == 0) co_return Fill::closed;
    co_return Fill::data;
}

awaitable<std::optional<std::string>> Conn::line(Clock::time_point deadline) {
    while (!failed_) {
        auto end = in_.find("\r\n", pos_);
        if (end != std::string::npos) {
            std::string l = in_.substr(pos_, end - pos_);
            pos_ = end + 2;
            note("S: ", l);
            co_return l;
        }
        if (in_.size() - pos_ > kMaxLine) {
            error("line too long");
            break;
        }
        auto f = co_await fill(deadline);
        if (f == Fill::timeout) {
            error("timeout");
            break;
        }
        if (f == Fill::closed) {
            error("closed by server");
            break;
        }
    }
    failed_ = true;
    co_return std::nullopt;
}

awaitable<std::optional<std::string>> Conn::bytes(std::size_t n) {
    auto deadline = Clock::now() + timeout_;
    while (!failed_) {
        if (in_.size() - pos_ >= n) {
            std::string b = in_.substr(pos_, n);
            pos_ += n;
            note_literal(n);
            co_return b;
        }
        auto f = co_await fill(deadline);
        if (f != Fill::data) {
            error(f == Fill::timeout ? "timeout" : "closed by server");
            break;
        }
    }
    failed_ = true;
    co_return std::nullopt;
}

awaitable<bool> Conn::wait_data(Clock::time_point until) {
    if (failed_) co_return false;
    if (has_line()) co_return true;
    auto f = co_await fill(until, true);
    if (f == Fill::closed || expired_) {
        error(expired_ ? "timeout" : "closed by server");
        failed_ = true;
        co_return false;
    }
    co_return true;
}

// ---- protocol helpers -------------------------------------------------------------------------

// One IMAP response line with its literals: `text` keeps the line's own bytes (literal markers
// included), `literals` the literal contents in order, so that header text never passes for
// protocol items.
struct Untagged {
    std::string text;
    std::vector<std::string> literals;
};

struct ImapReply {
    std::string status;  // "OK", "NO", "BAD", or "" when the connection failed
    std::string text;    // the tagged line
    std::vector<Untagged> untagged;
    bool ok() const { return status == "OK"; }
};

// Literal size at the end of a line ("{123}" or "{123+}"), if any.
std::optional<std::size_t> literal_at_end(const std::string& l) {
    if (l.empty() || l.back() != '}') return std::nullopt;
    auto open = l.rfind('{');
    if (open == std::string::npos) return std::nullopt;
    std::string digits = l.substr(open + 1, l.size() - open - 2);
    if (!digits.empty() && digits.back() == '+') digits.pop_back();
    if (digits.empty() || digits.size() > 18 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return std::stoull(digits);
}

// ---- SASL (RFC 4422) client: PLAIN, LOGIN, SCRAM-SHA-256 ------------------------------------

std::string b64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                             reinterpret_cast<const unsigned char*>(in.data()),
                             static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> unb64(std::string_view in) {
    if (in.size() % 4) return std::nullopt;
    std::string out(in.size() / 4 * 3 + 1, '\0');
    auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                             reinterpret_cast<const unsigned char*>(in.data()),
                             static_cast<int>(in.size()));
    if (n < 0) return std::nullopt;
    std::size_t pad = 0;  // EVP_DecodeBlock counts the padding as zero bytes
    for (auto it = in.rbegin(); it != in.rend() && *it == '=' && pad < 2; ++it)
        ++pad;
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

std::string hmac256(std::string_view key, std::string_view msg) {
    std::string out(SHA256_DIGEST_LENGTH, '\0');
    unsigned len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
         reinterpret_cast<unsigned char*>(out.data()), &len);
    return out;
}

// One authentication exchange of the mechanism `auth` names ("login", "plain",
// "scram-sha-256"); the protocols supply the framing (base64 lines after +, 334, +).
class SaslClient {
  public:
    SaslClient(Engine& e, const std::string& auth, const SimUser& u)
        : e_(e), auth_(auth), user_(u) {}
    std::string mechanism() const {
        return auth_ == "plain" ? "PLAIN" : auth_ == "login" ? "LOGIN" : "SCRAM-SHA-256";
    }
    // The initial response (RFC 4422 §3.3), if the mechanism starts (LOGIN waits).
    std::optional<std::string> initial() {
        if (auth_ == "plain") return std::string(1, '\0') + user_.login + '\0' + user_.password;
        if (auth_ == "login") return std::nullopt;
        unsigned char raw[18];
        RAND_bytes(raw, sizeof raw);
        nonce_ = b64(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
        std::string name;  // RFC 5802 §5.1: saslname escapes '=' and ','
        for (char c : user_.login)
            name += c == '=' ? "=3D" : c == ',' ? "=2C" : std::string(1, c);
        first_bare_ = "n=" + name + ",r=" + nonce_;
        return "n,," + first_bare_;
    }
    // The response to a (decoded) challenge; nullopt: give up (error() says why).
    std::optional<std::string> respond(std::string_view challenge) {
        ++step_;
        if (auth_ == "plain") return fail("PLAIN: unexpected challenge");
        if (auth_ == "login")
            return step_ == 1   ? user_.login
                   : step_ == 2 ? user_.password
                                : fail("LOGIN: a third challenge");
        if (step_ == 1) return client_final(challenge);
        if (step_ == 2) {
            if (!check_server_final(challenge)) return std::nullopt;
            return std::string();  // RFC 4422 §5: an empty response ends the exchange
        }
        return fail("SCRAM: a third challenge");
    }
    // After the success reply: SCRAM must have checked the server's signature.
    bool complete() {
        if (auth_ != "scram-sha-256" || verified_) return true;
        fail("SCRAM: success without the server's signature");
        return false;
    }
    const std::string& error() const { return error_; }

  private:
    std::optional<std::string> fail(std::string why) {
        error_ = std::move(why);
        return std::nullopt;
    }
    static std::optional<std::string> attr(std::string_view msg, char key) {
        std::size_t p = 0;
        while (p < msg.size()) {
            auto end = msg.find(',', p);
            if (end == std::string_view::npos) end = msg.size();
            if (end - p >= 2 && msg[p] == key && msg[p + 1] == '=')
                return std::string(msg.substr(p + 2, end - p - 2));
            p = end + 1;
        }
        return std::nullopt;
    }
    std::optional<std::string> client_final(std::string_view server_first) {
        auto r = attr(server_first, 'r');
        auto s = attr(server_first, 's');
        auto i = attr(server_first, 'i');
        if (!r || !s || !i) return fail("SCRAM: malformed server-first-message");
        if (r->size() <= nonce_.size() || r->compare(0, nonce_.size(), nonce_) != 0)
            return fail("SCRAM: the server's nonce does not extend ours");
        auto salt = unb64(*s);
        if (!salt || salt->empty() || i->empty() || i->size() > 9 ||
            !std::all_of(i->begin(), i->end(), [](char c) { return c >= '0' && c <= '9'; }))
            return fail("SCRAM: bad salt or iteration count");
        auto iterations = static_cast<unsigned>(std::stoul(*i));
        if (iterations == 0) return fail("SCRAM: iteration count 0");
        auto salted = e_.salted_password(user_.login, user_.password, *salt, iterations);
        auto client_key = hmac256(salted, "Client Key");
        std::string stored(SHA256_DIGEST_LENGTH, '\0');
        SHA256(reinterpret_cast<const unsigned char*>(client_key.data()), client_key.size(),
               reinterpret_cast<unsigned char*>(stored.data()));
        std::string without_proof = "c=biws,r=" + *r;  // biws: base64 of "n,,"
        auth_message_ = first_bare_ + "," + std::string(server_first) + "," + without_proof;
        auto signature = hmac256(stored, auth_message_);
        std::string proof = client_key;
        for (std::size_t k = 0; k < proof.size(); ++k)
            proof[k] = static_cast<char>(proof[k] ^ signature[k]);
        server_key_ = hmac256(salted, "Server Key");
        return without_proof + ",p=" + b64(proof);
    }
    bool check_server_final(std::string_view server_final) {
        if (auto e = attr(server_final, 'e')) {
            fail("SCRAM: server error " + *e);
            return false;
        }
        auto v = attr(server_final, 'v');
        auto want = hmac256(server_key_, auth_message_);
        auto got = v ? unb64(*v) : std::nullopt;
        if (!got || *got != want) {
            fail("SCRAM: wrong server signature");
            return false;
        }
        verified_ = true;
        return true;
    }

    Engine& e_;
    std::string auth_;
    const SimUser& user_;
    unsigned step_ = 0;
    std::string nonce_, first_bare_, auth_message_, server_key_, error_;
    bool verified_ = false;
};

class Imap {
  public:
    explicit Imap(Conn& c) : c_(c) {}

    // Reads one full response (with literals) into u; false if the connection failed.
    awaitable<bool> response(Untagged& u, std::optional<std::string> first = {}) {
        std::optional<std::string> l = std::move(first);
        if (!l) l = co_await c_.line();
        while (l) {
            u.text += *l;
            auto n = literal_at_end(*l);
            if (!n) co_return true;
            if (*n > kMaxLiteral) {
                c_.error("literal too large");
                co_return false;
            }
            auto lit = co_await c_.bytes(*n);
            if (!lit) co_return false;
            u.literals.push_back(std::move(*lit));
            u.text += "\r\n";
            l = co_await c_.line();
        }
        co_return false;
    }

    awaitable<bool> greeting() {
        auto t0 = Clock::now();
        Untagged u;
        bool got = co_await response(u);
        bool ok = got && u.text.rfind("* OK", 0) == 0;
        c_.record("CONNECT", t0, ok);
        if (got && !ok) c_.error("IMAP greeting refused");
        caps_ += u.text;
        if (ok && c_.target().starttls) {
            auto r = co_await command("STARTTLS", "STARTTLS");
            if (!r.ok() || !co_await c_.handshake(true)) co_return false;
            caps_.clear();  // RFC 9051 §6.2.1: ask again
            auto cap = co_await command("CAPABILITY", "CAPABILITY");
            if (!cap.ok()) co_return false;
        }
        co_return ok;
    }

    // Sends "tag args" and reads to the tagged reply. `verb` names the latency series.
    awaitable<ImapReply> command(const std::string& verb, const std::string& args,
                                 bool no_is_error = true) {
        ImapReply r;
        auto tag = "a" + std::to_string(++tags_);
        auto t0 = Clock::now();
        if (!co_await c_.send(tag + " " + args + "\r\n")) {
            c_.record(verb, t0, false);
            co_return r;
        }
        for (;;) {
            Untagged u;
            if (!co_await response(u)) break;
            if (u.text.rfind(tag + " ", 0) == 0) {
                auto rest = u.text.substr(tag.size() + 1);
                r.status = rest.substr(0, rest.find(' '));
                r.text = std::move(u.text);
                break;
            }
            r.untagged.push_back(std::move(u));
        }
        // RFC 9051 §7.1: NO [EXPUNGEISSUED] says another session of the user expunged a
        // message this command named (two sessions of one user racing, as the closed loop's
        // shared users do); the server answered correctly, so it is a refusal the results count
        // apart, not an error (what a server answers in that race is its choice: OK naming
        // nothing is allowed too).
        bool expunge_race = r.status == "NO" && r.text.find("[EXPUNGEISSUED]") != std::string::npos;
        bool ok = r.ok() || expunge_race || (!no_is_error && r.status == "NO");
        c_.record(verb, t0, ok);
        if (expunge_race)
            c_.refusal("IMAP NO [EXPUNGEISSUED]");
        else if (r.status == "NO" && no_is_error)
            c_.error("NO reply");
        if (r.status == "BAD") c_.error("BAD reply");
        if (!r.status.empty() && r.status != "OK" && r.status != "NO" && r.status != "BAD")
            c_.error("IMAP unknown status");
        caps_ += r.text;
        if (on_reply_) on_reply_(r);
        for (auto& u : r.untagged)
            if (u.text.find("CAPABILITY") != std::string::npos) caps_ += u.text;
        co_return r;
    }

    bool has_cap(std::string_view cap) const {
        for (std::size_t p = caps_.find(cap); p != std::string::npos; p = caps_.find(cap, p + 1)) {
            bool before = p > 0 && (caps_[p - 1] == ' ' || caps_[p - 1] == '[');
            auto after = p + cap.size();
            bool end = after == caps_.size() || caps_[after] == ' ' || caps_[after] == ']' ||
                       caps_[after] == '\r';
            if (before && end) return true;
        }
        return false;
    }

    awaitable<bool> login(const SimUser& u) {
        const auto& auth = c_.engine().cfg.auth;
        if (auth != "login") {
            bool ok = co_await authenticate(u, auth);
            co_return ok;
        }
        auto r = co_await command("LOGIN", "LOGIN \"" + u.login + "\" \"" + u.password + "\"");
        co_return r.ok();
    }

    // AUTHENTICATE (RFC 9051 §6.2.2), with the initial response on the command line when the
    // server offers SASL-IR (RFC 4959). Latency key "IMAP AUTHENTICATE": command to tagged OK.
    awaitable<bool> authenticate(const SimUser& u, const std::string& auth) {
        SaslClient sasl(c_.engine(), auth, u);
        auto tag = next_tag();
        auto t0 = Clock::now();
        std::string cmd = tag + " AUTHENTICATE " + sasl.mechanism();
        auto ir = sasl.initial();
        std::optional<std::string> pending;  // an initial response that waits for "+"
        if (ir && has_cap("SASL-IR"))
            cmd += " " + (ir->empty() ? std::string("=") : b64(*ir));
        else
            pending = ir;
        if (!co_await c_.send(cmd + "\r\n")) {
            c_.record("AUTHENTICATE", t0, false);
            co_return false;
        }
        for (;;) {
            auto l = co_await c_.line();
            if (!l) {
                c_.record("AUTHENTICATE", t0, false);
                co_return false;
            }
            if (l->rfind(tag + " ", 0) == 0) {
                bool ok = l->compare(tag.size() + 1, 3, "OK ") == 0;
                caps_ += *l;
                c_.record("AUTHENTICATE", t0, ok);
                if (!ok) {
                    c_.error(l->compare(tag.size() + 1, 3, "NO ") == 0 ? "NO reply" : "BAD reply");
                    co_return false;
                }
                if (!sasl.complete()) {
                    c_.error(sasl.error());
                    co_return false;
                }
                co_return true;
            }
            if (l->rfind("+", 0) != 0) {  // untagged data during the exchange
                if (l->find("CAPABILITY") != std::string::npos) caps_ += *l;
                continue;
            }
            std::optional<std::string> resp;
            if (pending) {
                resp = std::move(pending);
                pending.reset();
            } else {
                auto challenge = unb64(l->size() > 2 ? l->substr(2) : std::string());
                if (challenge) resp = sasl.respond(*challenge);
                if (!challenge || !resp) {
                    c_.error(challenge ? sasl.error() : "IMAP bad base64 challenge");
                    resp.reset();
                }
            }
            // "*" cancels (RFC 9051 §6.2.2); the tagged BAD that follows ends the loop.
            // (Named first: g++ 12 destroys a ?: temporary inside co_await twice.)
            std::string line = resp ? b64(*resp) + "\r\n" : std::string("*\r\n");
            if (!co_await c_.send(std::move(line))) {
                c_.record("AUTHENTICATE", t0, false);
                co_return false;
            }
        }
    }

    awaitable<void> logout() {
        auto r = co_await command("LOGOUT", "LOGOUT");
        if (r.ok()) c_.close_clean();
    }

    std::string next_tag() { return "a" + std::to_string(++tags_); }
    // Called with every tagged command's reply (to follow the selected mailbox's size).
    void on_reply(std::function<void(const ImapReply&)> f) { on_reply_ = std::move(f); }
    Conn& conn() { return c_; }

  private:
    Conn& c_;
    std::uint64_t tags_ = 0;
    std::string caps_;  // every text that may list capabilities (greeting, LOGIN, CAPABILITY)
    std::function<void(const ImapReply&)> on_reply_;
};

std::optional<std::uint64_t> number_after(std::string_view text, std::string_view key) {
    auto p = text.find(key);
    if (p == std::string_view::npos) return std::nullopt;
    p += key.size();
    std::uint64_t v = 0;
    std::size_t digits = 0;
    while (p < text.size() && text[p] >= '0' && text[p] <= '9' && digits < 19) {
        v = v * 10 + static_cast<std::uint64_t>(text[p] - '0');
        ++p, ++digits;
    }
    if (!digits) return std::nullopt;
    return v;
}

struct Selected {
    std::uint64_t exists = 0, uidvalidity = 0, uidnext = 0;
};

// The value of the id header in header text, if present.
std::optional<std::string> id_in(std::string_view headers) {
    // The first "x-millipost-id:" in any case, found without a lower-cased copy of the headers
    // (this runs on every header literal of every listing).
    auto fold = [](char ch) { return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + 32) : ch; };
    constexpr std::string_view key = "x-millipost-id:";
    static_assert(key.size() == kIdHeader.size() + 1);
    std::size_t p = std::string_view::npos;
    for (std::size_t i = 0; i + key.size() <= headers.size() && p == std::string_view::npos; ++i)
        if (fold(headers[i]) == key[0] &&
            std::equal(key.begin(), key.end(), headers.begin() + static_cast<std::ptrdiff_t>(i),
                       [&](char k, char h) { return k == fold(h); }))
            p = i;
    if (p == std::string_view::npos || (p > 0 && headers[p - 1] != '\n')) return std::nullopt;
    p += key.size();
    auto end = headers.find("\r\n", p);
    std::string v(
        headers.substr(p, end == std::string_view::npos ? std::string_view::npos : end - p));
    auto b = v.find_first_not_of(" \t");
    auto e = v.find_last_not_of(" \t");
    if (b == std::string::npos) return std::nullopt;
    return v.substr(b, e - b + 1);
}

// (UID, id) of each FETCH response that has both.
std::vector<std::pair<std::uint64_t, std::string>> fetched_ids(const ImapReply& r) {
    std::vector<std::pair<std::uint64_t, std::string>> out;
    for (auto& u : r.untagged) {
        if (u.text.find(" FETCH (") == std::string::npos) continue;
        auto uid = number_after(u.text, "UID ");
        if (!uid) continue;
        for (auto& lit : u.literals)
            if (auto id = id_in(lit)) {
                out.emplace_back(*uid, *id);
                break;
            }
    }
    return out;
}

// SMTP: a reply (possibly multi-line) as its code and lines.
struct SmtpReply {
    int code = 0;  // 0: the connection failed or the reply was malformed
    std::vector<std::string> lines;
};

awaitable<SmtpReply> smtp_reply(Conn& c) {
    SmtpReply r;
    for (;;) {
        auto l = co_await c.line();
        if (!l) co_return SmtpReply{};
        if (l->size() < 3 || !std::isdigit(static_cast<unsigned char>((*l)[0]))) {
            c.error("SMTP malformed reply");
            co_return SmtpReply{};
        }
        r.lines.push_back(*l);
        if (l->size() == 3 || (*l)[3] == ' ') {
            r.code = std::stoi(l->substr(0, 3));
            co_return r;
        }
    }
}

void smtp_judge(Conn& c, const std::string& verb, Clock::time_point t0, const SmtpReply& r,
                int want) {
    bool ok = r.code == want || (want == 250 && r.code / 100 == 2);
    c.record(verb, t0, ok);
    if (r.code && !ok)
        c.error(r.code >= 500 ? "SMTP 5xx" : r.code >= 400 ? "SMTP 4xx" : "SMTP unexpected");
}

// POP3: a status line, and the data lines of a multi-line reply.
awaitable<std::optional<std::string>> pop3_status(Conn& c, const std::string& verb,
                                                  Clock::time_point t0) {
    auto l = co_await c.line();
    bool ok = l && l->rfind("+OK", 0) == 0;
    // RFC 2449 §8.1.1: [IN-USE] is the maildrop lock another session of the user holds; a
    // real client meets it too, so it is a refusal the results count apart, not an error.
    bool in_use = l && !ok && l->find("[IN-USE]") != std::string::npos;
    // RFC 3206 §4: [SYS/TEMP] is a transient condition the client should retry later, e.g. a
    // message of the maildrop expunged by a concurrent IMAP session ("log in again"): the
    // session ends there, as a real client's would, and it is counted apart too.
    bool temp = l && !ok && l->find("[SYS/TEMP]") != std::string::npos;
    c.record(verb, t0, ok || in_use || temp);
    if (in_use)
        c.refusal("POP3 [IN-USE]");
    else if (temp)
        c.refusal("POP3 [SYS/TEMP]");
    else if (l && !ok)
        c.error("-ERR reply");
    if (!ok) co_return std::nullopt;
    co_return l;
}

awaitable<std::optional<std::vector<std::string>>> pop3_multi(Conn& c, const std::string& verb,
                                                              const std::string& cmd) {
    auto t0 = Clock::now();
    if (!co_await c.send(cmd + "\r\n")) co_return std::nullopt;
    auto st = co_await pop3_status(c, verb, t0);
    if (!st) co_return std::nullopt;
    std::vector<std::string> lines;
    for (;;) {
        auto l = co_await c.line();
        if (!l) co_return std::nullopt;
        if (*l == ".") break;
        lines.push_back(l->size() > 1 && (*l)[0] == '.' ? l->substr(1) : *l);
    }
    co_return lines;
}

awaitable<bool> pop3_simple(Conn& c, const std::string& verb, const std::string& cmd) {
    auto t0 = Clock::now();
    if (!co_await c.send(cmd + "\r\n")) co_return false;
    auto st = co_await pop3_status(c, verb, t0);
    co_return st.has_value();
}

// SASL over POP3 AUTH (RFC 5034: "+ " challenges) or SMTP AUTH (RFC 4954: "334 "), the
// initial response on the command line ("=" when empty). Latency key "POP3 AUTH"/"SMTP AUTH".
awaitable<bool> sasl_auth(Engine& e, Conn& c, const SimUser& u, const std::string& auth) {
    bool smtp = c.proto_upper() == "SMTP";
    SaslClient sasl(e, auth, u);
    auto t0 = Clock::now();
    std::string cmd = "AUTH " + sasl.mechanism();
    if (auto ir = sasl.initial()) cmd += " " + (ir->empty() ? std::string("=") : b64(*ir));
    if (!co_await c.send(cmd + "\r\n")) {
        c.record("AUTH", t0, false);
        co_return false;
    }
    for (;;) {
        std::string l;
        if (smtp) {
            SmtpReply r = co_await smtp_reply(c);
            if (r.code == 0) {
                c.record("AUTH", t0, false);
                co_return false;
            }
            if (r.code != 334) {
                c.record("AUTH", t0, r.code == 235);
                if (r.code != 235) {
                    c.error(r.code >= 500 ? "SMTP 5xx" : "SMTP 4xx");
                    co_return false;
                }
                break;
            }
            l = r.lines.back().substr(std::min<std::size_t>(4, r.lines.back().size()));
        } else {
            auto line = co_await c.line();
            if (!line) {
                c.record("AUTH", t0, false);
                co_return false;
            }
            if (line->rfind("+OK", 0) == 0) {
                c.record("AUTH", t0, true);
                break;
            }
            if (line->rfind("+", 0) != 0) {
                // The maildrop lock or a transient condition after a successful exchange is a
                // refusal, as for USER/PASS (pop3_status).
                bool in_use = line->find("[IN-USE]") != std::string::npos;
                bool temp = line->find("[SYS/TEMP]") != std::string::npos;
                c.record("AUTH", t0, in_use || temp);
                if (in_use)
                    c.refusal("POP3 [IN-USE]");
                else if (temp)
                    c.refusal("POP3 [SYS/TEMP]");
                else
                    c.error("-ERR reply");
                co_return false;
            }
            l = line->size() > 2 ? line->substr(2) : std::string();
        }
        auto challenge = unb64(l);
        std::optional<std::string> resp;
        if (challenge) resp = sasl.respond(*challenge);
        if (!resp) c.error(challenge ? sasl.error() : c.proto_upper() + " bad base64 challenge");
        // "*" cancels (RFC 4954 §4, RFC 5034 §4); the server's refusal then ends the loop.
        // (Named first: g++ 12 destroys a ?: temporary inside co_await twice.)
        std::string line = resp ? b64(*resp) + "\r\n" : std::string("*\r\n");
        if (!co_await c.send(std::move(line))) {
            c.record("AUTH", t0, false);
            co_return false;
        }
    }
    if (!sasl.complete()) {
        c.error(sasl.error());
        co_return false;
    }
    co_return true;
}

// ---- behaviours -------------------------------------------------------------------------------

// A count with mean `mean` >= 1 (1 + geometric), at most `cap`.
std::uint64_t count_at_least_one(Rng& rng, double mean, std::uint64_t cap) {
    std::uint64_t n = 1;
    double more = mean > 1 ? (mean - 1) / mean : 0;
    while (n < cap && rng.chance(more))
        ++n;
    return n;
}

// Actions of a session after login: geometric with mean `mean` (at least one when mean >= 1).
std::uint64_t action_count(Rng& rng, double mean) {
    constexpr std::uint64_t kMaxActions = 10000;
    if (mean < 1) return rng.chance(mean) ? 1 : 0;
    return count_at_least_one(rng, mean, kMaxActions);
}

std::string pick_command(Rng& rng, const std::map<std::string, double>& weights) {
    double total = 0;
    for (auto& [k, w] : weights)
        total += w;
    if (total <= 0) return "";
    double x = rng.u() * total;
    for (auto& [k, w] : weights) {
        if (x < w) return k;
        x -= w;
    }
    return weights.rbegin()->first;
}

// Whether a STORE's answer has the FETCH of UID `uid` (the message existed when it applied).
bool answered_for(const ImapReply& r, std::uint64_t uid) {
    for (auto& u : r.untagged)
        if (u.text.find(" FETCH (") != std::string::npos && number_after(u.text, "UID ") == uid)
            return true;
    return false;
}

// The flags in a FETCH response's text ("FLAGS (\Seen \Flagged)"), lower-cased.
std::optional<std::set<std::string>> flags_in(std::string_view text) {
    auto p = text.find("FLAGS (");
    if (p == std::string_view::npos) return std::nullopt;
    auto end = text.find(')', p);
    if (end == std::string_view::npos) return std::nullopt;
    std::set<std::string> out;
    std::istringstream in(std::string(text.substr(p + 7, end - p - 7)));
    for (std::string f; in >> f;)
        out.insert(lower(f));
    return out;
}

// UIDs of an IMAP sequence set ("1:3,7"), at most `cap` of them (a defence against a runaway
// answer); nullopt when it does not parse.
std::optional<std::vector<std::uint64_t>> uid_set(std::string_view set, std::size_t cap) {
    std::vector<std::uint64_t> out;
    std::size_t p = 0;
    auto num = [&](std::uint64_t& v) {
        std::size_t d = 0;
        v = 0;
        while (p < set.size() && set[p] >= '0' && set[p] <= '9' && d < 19) {
            v = v * 10 + static_cast<std::uint64_t>(set[p++] - '0');
            ++d;
        }
        return d > 0;
    };
    while (p < set.size()) {
        std::uint64_t a = 0, b = 0;
        if (!num(a)) return std::nullopt;
        b = a;
        if (p < set.size() && set[p] == ':') {
            ++p;
            if (!num(b)) return std::nullopt;
        }
        if (a > b) std::swap(a, b);
        for (auto u = a; u <= b && out.size() < cap; ++u)
            out.push_back(u);
        if (p < set.size()) {
            if (set[p] != ',') return std::nullopt;
            ++p;
        }
    }
    return out;
}

// Keeps the selected mailbox's message count current from a reply's EXISTS and EXPUNGE (and
// VANISHED, under QRESYNC), so that "FETCH n:*" never names messages that are gone.
void track(Selected& box, const ImapReply& r) {
    for (auto& u : r.untagged) {
        const auto& t = u.text;
        if (t.size() > 9 && t.compare(t.size() - 7, 7, " EXISTS") == 0) {
            if (auto n = number_after(t, "* ")) box.exists = *n;
        } else if (t.size() > 10 && t.compare(t.size() - 8, 8, " EXPUNGE") == 0) {
            if (box.exists) --box.exists;
        } else if (t.rfind("* VANISHED ", 0) == 0 && t.rfind("* VANISHED (EARLIER)", 0) != 0) {
            if (auto uids = uid_set(std::string_view(t).substr(11), box.exists))
                box.exists -= std::min<std::uint64_t>(box.exists, uids->size());
        }
    }
}

// A SELECT's (or EXAMINE's) answer: UIDVALIDITY, UIDNEXT and the message count, with the
// expunges a server may report right after the EXISTS (EXPUNGE, or VANISHED once QRESYNC is
// enabled: a concurrent session's delete racing the SELECT) taken off it.
Selected parse_select(const ImapReply& r) {
    Selected s;
    track(s, r);
    for (auto& u : r.untagged) {
        if (auto v = number_after(u.text, "[UIDVALIDITY ")) s.uidvalidity = *v;
        if (auto v = number_after(u.text, "[UIDNEXT ")) s.uidnext = *v;
    }
    return s;
}

const std::string kFlagged = "\\Flagged";
const std::string kSeen = "\\Seen";

// IMAP webmail reader: login, open the inbox, then actions chosen by the behaviour's command
// weights (list, select, fetch_headers, read, flag, move, delete, search) with think times
// between them; log out. Flags it sets are recorded for the oracle.
awaitable<void> webmail(Engine& e, Conn& c, Rng& rng, const SimUser& user, const Behaviour& b) {
    Imap imap(c);
    // (g++ 12: no co_await inside || or ?:, each gets its own statement)
    bool up = co_await imap.greeting();
    if (!up) co_return;
    bool in = co_await imap.login(user);
    if (!in) co_return;
    co_await e.think(rng, c, b);
    std::string mbox = "INBOX";
    auto sel = co_await imap.command("SELECT", "SELECT INBOX");
    if (!sel.ok()) co_return;
    auto box = parse_select(sel);
    auto follow = [&box](const ImapReply& r) { track(box, r); };
    imap.on_reply(follow);
    auto excerpt = [&c] { return c.transcript(); };
    std::vector<std::pair<std::uint64_t, std::string>> listed;
    auto n = action_count(rng, b.actions_mean);
    for (std::uint64_t i = 0; i < n && !e.stopping(); ++i) {
        if (i > 0) co_await e.think(rng, c, b);
        if (e.stopping()) break;
        auto cmd = pick_command(rng, b.commands);
        bool needs_message = cmd == "read" || cmd == "flag" || cmd == "move" || cmd == "delete";
        if (needs_message && listed.empty()) cmd = "fetch_headers";  // a reader lists first
        if (cmd == "list") {
            auto r = co_await imap.command("LIST", "LIST \"\" \"*\"");
            if (!r.ok()) co_return;
            auto s = co_await imap.command("STATUS", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)");
            if (!s.ok()) co_return;
        } else if (cmd == "select") {
            std::string other = mbox == "INBOX" ? kArchive : "INBOX";
            // (A NO is an error for INBOX only: Archive exists once a move has created it.)
            auto r = co_await imap.command("SELECT", "SELECT " + other, other == "INBOX");
            if (r.status == "NO") {  // no Archive yet; a failed SELECT leaves none selected
                other = "INBOX";
                r = co_await imap.command("SELECT", "SELECT INBOX");
            }
            if (!r.ok()) co_return;
            mbox = other;
            box = parse_select(r);
            listed.clear();
        } else if (cmd == "fetch_headers") {
            if (box.exists == 0) continue;
            auto from = box.exists > 19 ? box.exists - 19 : 1;
            auto r = co_await imap.command(
                "FETCH", "FETCH " + std::to_string(from) +
                             ":* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE " +
                             std::string(kIdHeader) + ")])");
            if (!r.ok()) co_return;
            listed = fetched_ids(r);
            for (auto& [uid, id] : listed)
                e.oracle.seen(user.login, mbox, box.uidvalidity, uid, id, excerpt);
        } else if (cmd == "read") {
            auto [uid, id] = listed[rng.below(listed.size())];
            auto u = std::to_string(uid);
            e.oracle.flag_begin(user.login, id, kSeen);
            auto body = co_await imap.command("UID FETCH", "UID FETCH " + u + " BODY[]");
            bool had = false;
            for (auto& got : fetched_ids(body)) {
                had = true;
                if (got.second != id)
                    e.oracle.violation("wrong-bytes", user.login, mbox, id,
                                       "UID " + u + " listed as " + id + ", read as " + got.second,
                                       c.transcript());
            }
            // BODY[] of a message in a mailbox opened read-write sets \Seen (RFC 9051 §6.4.5).
            e.oracle.flag_end(user.login, id, kSeen, true, body.ok() && had);
            if (!body.ok()) co_return;
        } else if (cmd == "flag") {
            auto [uid, id] = listed[rng.below(listed.size())];
            bool set = rng.chance(0.7);
            e.oracle.flag_begin(user.login, id, kFlagged);
            std::string store =
                "UID STORE " + std::to_string(uid) + (set ? " +" : " -") + "FLAGS (\\Flagged)";
            auto r = co_await imap.command("UID STORE", store);
            e.oracle.flag_end(user.login, id, kFlagged, set, r.ok() && answered_for(r, uid));
            if (!r.ok()) co_return;
        } else if (cmd == "move") {
            if (!imap.has_cap("MOVE")) continue;
            auto pick = rng.below(listed.size());
            auto [uid, id] = listed[pick];
            std::string to = mbox == "INBOX" ? kArchive : "INBOX";
            // CREATE answers NO once Archive exists: expected, not an error.
            if (to != "INBOX")
                co_await imap.command("CREATE", "CREATE " + std::string(kArchive), false);
            e.oracle.moved(user.login,
                           id);  // before the command: once sent, it may be gone from here
            auto r =
                co_await imap.command("UID MOVE", "UID MOVE " + std::to_string(uid) + " " + to);
            if (!r.ok()) co_return;
            listed.erase(listed.begin() + static_cast<std::ptrdiff_t>(pick));
        } else if (cmd == "delete") {
            if (!imap.has_cap("UIDPLUS")) continue;
            auto pick = rng.below(listed.size());
            auto [uid, id] = listed[pick];
            auto u = std::to_string(uid);
            e.oracle.deleted(user.login, id);  // before the command: once sent, it may be gone
            auto r =
                co_await imap.command("UID STORE", "UID STORE " + u + " +FLAGS.SILENT (\\Deleted)");
            if (!r.ok()) co_return;
            auto x = co_await imap.command("UID EXPUNGE", "UID EXPUNGE " + u);
            if (!x.ok()) co_return;
            listed.erase(listed.begin() + static_cast<std::ptrdiff_t>(pick));
        } else if (cmd == "search") {
            auto r = co_await imap.command("SEARCH", "SEARCH UNSEEN");
            if (!r.ok()) co_return;
        }
    }
    co_await imap.logout();
}

// The IDLE of a mobile client: held for an exponential time of mean idle_seconds (capped),
// untagged updates read as they come, then DONE. False if the session cannot go on.
awaitable<bool> idle_once(Engine& e, Conn& c, Imap& imap, Rng& rng, const Behaviour& b,
                          Selected& box) {
    auto tag = imap.next_tag();
    auto t0 = Clock::now();
    if (!co_await c.send(tag + " IDLE\r\n")) co_return false;
    auto l = co_await c.line();
    bool cont = l && l->rfind("+", 0) == 0;
    c.record("IDLE", t0, cont);
    if (!cont) {
        if (l) c.error("IDLE refused");
        co_return false;
    }
    double hold = rng.exp(b.idle_seconds);
    if (b.idle_max_seconds > 0) hold = std::min(hold, b.idle_max_seconds);
    auto until = Clock::now() +
                 std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(hold));
    while (Clock::now() < until && !e.stopping()) {
        if (!co_await c.wait_data(until)) co_return false;
        while (c.has_line()) {
            auto u = co_await c.line();  // untagged updates (EXISTS, EXPUNGE, FETCH)
            if (!u) co_return false;
            ImapReply update;
            update.untagged.push_back(Untagged{std::move(*u), {}});
            track(box, update);
        }
    }
    t0 = Clock::now();
    if (!co_await c.send("DONE\r\n")) co_return false;
    for (;;) {
        Untagged u;
        if (!co_await imap.response(u)) co_return false;
        if (u.text.rfind(tag + " ", 0) == 0) {
            bool ok = u.text.compare(tag.size() + 1, 2, "OK") == 0;
            c.record("DONE", t0, ok);
            if (!ok) c.error("IDLE ended with an error");
            co_return ok;
        }
    }
}

// IMAP mobile client: login; ENABLE QRESYNC and resynchronise from the previous session's
// (UIDVALIDITY, HIGHESTMODSEQ) when the target offers it; then actions by weight (idle and
// fetch what is new, fetch_new, flag, delete); log out.
awaitable<void> mobile(Engine& e, Conn& c, Rng& rng, const SimUser& user, const Behaviour& b) {
    Imap imap(c);
    // (g++ 12: no co_await inside || or ?:, each gets its own statement)
    bool up = co_await imap.greeting();
    if (!up) co_return;
    bool in = co_await imap.login(user);
    if (!in) co_return;
    bool qresync = false;
    if (b.qresync && imap.has_cap("QRESYNC")) {
        auto r = co_await imap.command("ENABLE", "ENABLE QRESYNC");
        if (!r.ok()) co_return;
        for (auto& u : r.untagged)
            if (u.text.rfind("* ENABLED", 0) == 0 && u.text.find("QRESYNC") != std::string::npos)
                qresync = true;
    }
    std::optional<std::pair<std::uint64_t, std::uint64_t>> prev;
    if (qresync) prev = e.sync_state(user.index);
    std::string select = "SELECT INBOX";
    if (prev)
        select +=
            " (QRESYNC (" + std::to_string(prev->first) + " " + std::to_string(prev->second) + "))";
    // Resynchronising SELECTs have their own latency series: their answers carry the changes.
    std::string verb = prev ? "SELECT QRESYNC" : "SELECT";
    auto sel = co_await imap.command(verb, select);
    if (!sel.ok()) co_return;
    auto box = parse_select(sel);
    if (qresync) {
        std::uint64_t modseq = 0;
        for (auto& u : sel.untagged)
            if (auto v = number_after(u.text, "[HIGHESTMODSEQ ")) modseq = *v;
        if (prev && prev->first == box.uidvalidity) {
            // RFC 7162 §3.2.5.1: VANISHED (EARLIER) lists the UIDs expunged since the modseq
            // given. Each one the oracle saw must have been deleted or moved by this run.
            constexpr std::size_t kMaxVanished = 100000;
            for (auto& u : sel.untagged) {
                if (u.text.rfind("* VANISHED (EARLIER) ", 0) != 0) continue;
                auto uids = uid_set(std::string_view(u.text).substr(21), kMaxVanished);
                if (!uids) {
                    c.error("IMAP VANISHED unparsable");
                    continue;
                }
                for (auto uid : *uids) {
                    auto id = e.oracle.at(user.login, "INBOX", box.uidvalidity, uid);
                    if (id && !e.oracle.was_removed(user.login, *id))
                        e.oracle.violation("vanished", user.login, "INBOX", *id,
                                           "QRESYNC reported UID " + std::to_string(uid) +
                                               " expunged, but no session deleted or moved it",
                                           c.transcript());
                }
            }
        }
        if (modseq) e.remember_sync(user.index, box.uidvalidity, modseq);
    }
    auto follow = [&box](const ImapReply& r) { track(box, r); };
    imap.on_reply(follow);
    auto excerpt = [&c] { return c.transcript(); };
    std::vector<std::pair<std::uint64_t, std::string>> known;
    auto next_uid = std::max<std::uint64_t>(box.uidnext, 1);
    auto n = std::max<std::uint64_t>(action_count(rng, b.actions_mean), 1);
    for (std::uint64_t i = 0; i < n && !e.stopping(); ++i) {
        if (i > 0) co_await e.think(rng, c, b);
        if (e.stopping()) break;
        auto cmd = pick_command(rng, b.commands);
        if ((cmd == "flag" || cmd == "delete") && known.empty()) {
            // Nothing fetched yet: look at the newest few first.
            if (box.exists == 0) continue;
            auto from = box.exists > 9 ? box.exists - 9 : 1;
            auto r = co_await imap.command("FETCH", "FETCH " + std::to_string(from) +
                                                        ":* (UID FLAGS BODY.PEEK[HEADER.FIELDS (" +
                                                        std::string(kIdHeader) + ")])");
            if (!r.ok()) co_return;
            known = fetched_ids(r);
            for (auto& [uid, id] : known)
                e.oracle.seen(user.login, "INBOX", box.uidvalidity, uid, id, excerpt);
            if (known.empty()) continue;
        }
        if (cmd == "idle" || cmd == "fetch_new") {
            if (cmd == "idle" && imap.has_cap("IDLE")) {
                bool ok = co_await idle_once(e, c, imap, rng, b, box);
                if (!ok) co_return;
            }
            auto r =
                co_await imap.command("UID FETCH", "UID FETCH " + std::to_string(next_uid) +
                                                       ":* (UID FLAGS BODY.PEEK[HEADER.FIELDS (" +
                                                       std::string(kIdHeader) + ")])");
            if (!r.ok()) co_return;
            for (auto& [uid, id] : fetched_ids(r)) {
                e.oracle.seen(user.login, "INBOX", box.uidvalidity, uid, id, excerpt);
                // "n:*" names the last message even when n is past it (RFC 9051 §6.4.8).
                if (uid >= next_uid) {
                    known.emplace_back(uid, id);
                    next_uid = uid + 1;
                }
            }
        } else if (cmd == "flag") {
            auto [uid, id] = known[rng.below(known.size())];
            bool set = rng.chance(0.7);
            e.oracle.flag_begin(user.login, id, kFlagged);
            std::string store =
                "UID STORE " + std::to_string(uid) + (set ? " +" : " -") + "FLAGS (\\Flagged)";
            auto r = co_await imap.command("UID STORE", store);
            e.oracle.flag_end(user.login, id, kFlagged, set, r.ok() && answered_for(r, uid));
            if (!r.ok()) co_return;
        } else if (cmd == "delete") {
            if (!imap.has_cap("UIDPLUS")) continue;
            auto pick = rng.below(known.size());
            auto [uid, id] = known[pick];
            auto u = std::to_string(uid);
            e.oracle.deleted(user.login, id);
            auto r =
                co_await imap.command("UID STORE", "UID STORE " + u + " +FLAGS.SILENT (\\Deleted)");
            if (!r.ok()) co_return;
            auto x = co_await imap.command("UID EXPUNGE", "UID EXPUNGE " + u);
            if (!x.ok()) co_return;
            known.erase(known.begin() + static_cast<std::ptrdiff_t>(pick));
        }
    }
    co_await imap.logout();
}

// POP3 fetcher: login, STAT, UIDL, then actions by weight: retrieve (RETR the newest 1-3,
// DELE each unless the session leaves mail on the server) or top (TOP n 0 of the newest 1-3); QUIT.
awaitable<void> pop3(Engine& e, Conn& c, Rng& rng, const SimUser& user, const Behaviour& b) {
    auto t0 = Clock::now();
    if (!co_await pop3_status(c, "CONNECT", t0)) co_return;
    if (c.target().starttls) {  // RFC 2595 §4
        if (!co_await pop3_simple(c, "STLS", "STLS")) co_return;
        if (!co_await c.handshake(true)) co_return;
    }
    if (e.cfg.auth != "login") {
        if (!co_await sasl_auth(e, c, user, e.cfg.auth)) co_return;
    } else {
        if (!co_await pop3_simple(c, "USER", "USER " + user.login)) co_return;
        if (!co_await pop3_simple(c, "PASS", "PASS " + user.password)) co_return;
    }
    t0 = Clock::now();
    if (!co_await c.send("STAT\r\n")) co_return;
    auto st = co_await pop3_status(c, "STAT", t0);
    if (!st) co_return;
    auto count = number_after(*st, "+OK ").value_or(0);
    auto uidl = co_await pop3_multi(c, "UIDL", "UIDL");
    if (!uidl) co_return;
    auto n = std::max<std::uint64_t>(action_count(rng, b.actions_mean), 1);
    // A session that does not leave mail on the server DELEs each message it RETRieves; the
    // deletions take effect at QUIT (RFC 1939 §6), so the oracle learns of them there.
    bool dele = b.leave_on_server < 1 && !rng.chance(b.leave_on_server);
    std::set<std::uint64_t> gone;  // message numbers marked deleted in this session
    std::vector<std::string> dele_ids;
    for (std::uint64_t a = 0; a < n && !e.stopping(); ++a) {
        if (a > 0) co_await e.think(rng, c, b);
        bool top = pick_command(rng, b.commands) == "top";
        auto fetch = std::min<std::uint64_t>(count - gone.size(), 1 + rng.below(3));
        for (std::uint64_t k = count, i = 0; k > 0 && i < fetch && !e.stopping(); --k) {
            if (gone.count(k)) continue;
            ++i;
            auto which = std::to_string(k);
            std::optional<std::vector<std::string>> msg;
            if (top)
                msg = co_await pop3_multi(c, "TOP", "TOP " + which + " 0");
            else
                msg = co_await pop3_multi(c, "RETR", "RETR " + which);
            if (!msg) co_return;
            if (top || !dele) continue;
            std::string head;
            for (auto& l : *msg) {
                if (l.empty()) break;
                head += l + "\r\n";
            }
            if (!co_await pop3_simple(c, "DELE", "DELE " + which)) co_return;
            gone.insert(k);
            if (auto id = id_in(head)) dele_ids.push_back(*id);
        }
    }
    // Once QUIT is sent the deletions may happen whatever its answer: absent is then allowed.
    for (auto& id : dele_ids)
        e.oracle.deleted(user.login, id);
    if (!co_await pop3_simple(c, "QUIT", "QUIT")) co_return;
    for (auto& id : dele_ids)
        e.oracle.committed_delete(user.login, id);
    c.close_clean();
}

// SMTP: a sender (a local user submitting, MAIL FROM its own address) or an MX (another
// domain's host delivering inbound mail from a non-local sender). Per message: MAIL, one RCPT
// per recipient (distinct users of the population), DATA, pipelined when offered and the
// behaviour allows; each recipient whose RCPT was accepted is owed the message.
awaitable<void> smtp_session(Engine& e, Conn& c, Rng& rng, const SimUser& user,
                             const Behaviour& b) {
    bool mx = b.kind == Kind::mx;
    auto t0 = Clock::now();
    auto greet = co_await smtp_reply(c);
    smtp_judge(c, "CONNECT", t0, greet, 220);
    if (greet.code != 220) co_return;
    // An MX host is one of a few hundred remote domains, its senders anyone there.
    auto remote = "remote" + std::to_string(rng.below(500)) + ".example";
    std::string from = user.address, helo = "load.millipost";
    if (mx) {
        from = "list" + std::to_string(rng.below(100000)) + "@" + remote;
        helo = "mx." + remote;
    }
    t0 = Clock::now();
    std::string ehlo_cmd = "EHLO " + helo + "\r\n";
    if (!co_await c.send(std::move(ehlo_cmd))) co_return;
    auto ehlo = co_await smtp_reply(c);
    smtp_judge(c, "EHLO", t0, ehlo, 250);
    if (ehlo.code != 250) co_return;
    if (c.target().starttls) {  // RFC 3207: STARTTLS, the handshake, then EHLO again (§4.2)
        t0 = Clock::now();
        if (!co_await c.send("STARTTLS\r\n")) co_return;
        auto go = co_await smtp_reply(c);
        smtp_judge(c, "STARTTLS", t0, go, 220);
        if (go.code != 220 || !co_await c.handshake(true)) co_return;
        t0 = Clock::now();
        std::string again = "EHLO " + helo + "\r\n";
        if (!co_await c.send(std::move(again))) co_return;
        ehlo = co_await smtp_reply(c);
        smtp_judge(c, "EHLO", t0, ehlo, 250);
        if (ehlo.code != 250) co_return;
    }
    // A local sender authenticates on a submission port, or whenever `auth` is given; an MX
    // host never does (it delivers inbound mail).
    if (!mx && (c.target().submission || e.cfg.auth_given) &&
        !co_await sasl_auth(e, c, user, e.cfg.auth))
        co_return;
    bool pipelining = false;
    for (auto& l : ehlo.lines)
        if (l.size() >= 14 && lower(l.substr(4, 10)) == "pipelining") pipelining = true;
    pipelining = pipelining && b.pipelining;
    constexpr std::uint64_t kMaxMessages = 10000;
    auto n = count_at_least_one(rng, b.messages_mean, kMaxMessages);
    for (std::uint64_t m = 0; m < n && !e.stopping(); ++m) {
        auto k = count_at_least_one(rng, b.recipients_mean,
                                    std::min<std::uint64_t>(b.recipients_max, e.cfg.own_users()));
        std::vector<SimUser> rcpts;
        std::set<std::uint64_t> chosen;
        while (rcpts.size() < k) {
            auto r = e.pick_user(rng);
            if (chosen.insert(r).second) rcpts.push_back(e.population.user(r));
        }
        auto index = e.next_message_index();
        auto msg = make_message(e.cfg, index, from, rcpts.front().address);
        std::string mail = "MAIL FROM:<" + from + ">\r\n";
        std::vector<std::string> to;
        for (auto& r : rcpts)
            to.push_back("RCPT TO:<" + r.address + ">\r\n");
        std::string data = "DATA\r\n";
        std::vector<bool> accepted(rcpts.size(), false);
        SmtpReply rd;
        auto tm = Clock::now();
        if (pipelining) {
            std::string all = mail;
            for (auto& t : to)
                all += t;
            if (!co_await c.send(all + data)) co_return;
            auto rm = co_await smtp_reply(c);
            smtp_judge(c, "MAIL", tm, rm, 250);
            for (std::size_t i = 0; i < to.size(); ++i) {
                auto rr = co_await smtp_reply(c);
                smtp_judge(c, "RCPT", tm, rr, 250);
                accepted[i] = rr.code / 100 == 2;
            }
            rd = co_await smtp_reply(c);
            smtp_judge(c, "DATA", tm, rd, 354);
        } else {
            if (!co_await c.send(mail)) co_return;
            auto rm = co_await smtp_reply(c);
            smtp_judge(c, "MAIL", tm, rm, 250);
            if (rm.code != 250) co_return;
            for (std::size_t i = 0; i < to.size(); ++i) {
                tm = Clock::now();
                if (!co_await c.send(to[i])) co_return;
                auto rr = co_await smtp_reply(c);
                smtp_judge(c, "RCPT", tm, rr, 250);
                accepted[i] = rr.code / 100 == 2;
            }
            if (std::find(accepted.begin(), accepted.end(), true) == accepted.end()) co_return;
            tm = Clock::now();
            if (!co_await c.send(data)) co_return;
            rd = co_await smtp_reply(c);
            smtp_judge(c, "DATA", tm, rd, 354);
        }
        if (rd.code != 354) co_return;  // the error is recorded; the session gives up
        auto t1 = Clock::now();
        if (!co_await c.send(dot_stuff(msg.bytes))) co_return;
        auto done = co_await smtp_reply(c);
        smtp_judge(c, "MESSAGE", t1, done, 250);
        if (done.code / 100 != 2) co_return;
        for (std::size_t i = 0; i < rcpts.size(); ++i)
            if (accepted[i])
                e.oracle.delivered(rcpts[i].index, msg.id,
                                   Delivery{index, from, rcpts.front().address});
        if (m + 1 < n) co_await e.think(rng, c, b);
    }
    t0 = Clock::now();
    if (!co_await c.send("QUIT\r\n")) co_return;
    auto bye = co_await smtp_reply(c);
    smtp_judge(c, "QUIT", t0, bye, 221);
    if (bye.code == 221) c.close_clean();
}

// ---- sessions, arrivals, verification ---------------------------------------------------------

awaitable<void> Engine::session(unsigned shard, const Behaviour& b, std::uint64_t user_index) {
    auto id = next_session_id();
    Rng rng{derive(cfg.seed, id, 11)};
    try {
        auto user = population.user(user_index);
        Conn c(*this, shard, kKindProto[static_cast<std::size_t>(b.kind)], id, true);
        if (co_await c.connect()) {
            switch (b.kind) {
                case Kind::webmail:
                    co_await webmail(*this, c, rng, user, b);
                    break;
                case Kind::mobile:
                    co_await mobile(*this, c, rng, user, b);
                    break;
                case Kind::pop3:
                    co_await pop3(*this, c, rng, user, b);
                    break;
                case Kind::sender:
                case Kind::mx:
                    co_await smtp_session(*this, c, rng, user, b);
                    break;
            }
        }
    } catch (const std::exception& ex) {
        std::lock_guard l(shards[shard]->mu);
        ++shards[shard]->errors[std::string("engine: ") + ex.what()];
    }
    active.fetch_sub(1, std::memory_order_relaxed);
}

awaitable<void> Engine::closed_worker(unsigned shard) {
    Rng rng{derive(cfg.seed, shard + cfg.worker * 1000, 13) ^ mix(session_ids.load())};
    while (!stopping()) {
        if (!claim_session()) break;
        const auto& b = pick_behaviour(rng);
        auto u = pick_user(rng);
        co_await session(shard, b, u);
        if (cfg.closed_restart > 0)
            co_await sleep(*shards[shard], std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(cfg.closed_restart)));
    }
}

awaitable<void> Engine::arrivals() {
    double rate = static_cast<double>(cfg.own_users()) * cfg.rate_per_user_per_hour / 3600.0;
    Arrivals gaps(rate, derive(cfg.seed, cfg.worker, 17));
    Rng rng{derive(cfg.seed, cfg.worker, 19)};
    auto next = Clock::now();
    unsigned rr = 0;
    while (!stopping() && rate > 0) {
        next += std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(gaps.next_gap()));
        co_await sleep(*shards[0], next - Clock::now());
        if (stopping()) break;
        if (!claim_session()) break;
        auto shard = rr++ % static_cast<unsigned>(ctxs.size());
        asio::co_spawn(*ctxs[shard], session(shard, pick_behaviour(rng), pick_user(rng)),
                       asio::detached);
    }
    generating = false;
}

// Logs in as each recipient, lists the ids (and flags) in INBOX and Archive, and holds them to
// what SMTP acknowledged: present exactly once, or absent because a session deleted it; the
// flags sessions set and the server acknowledged still set (or cleared); and for a sample of
// messages (verify_bytes) the full bytes the same as generated.
awaitable<void> Engine::verifier(unsigned shard, std::shared_ptr<std::vector<std::uint64_t>> users,
                                 std::shared_ptr<std::atomic<std::size_t>> next,
                                 std::shared_ptr<std::atomic<unsigned>> running) {
    auto expected = oracle.expected();
    for (;;) {
        auto i = next->fetch_add(1);
        if (i >= users->size() || stop_.load()) break;
        auto index = (*users)[i];
        auto user = population.user(index);
        std::set<std::string> mine(expected[index].begin(), expected[index].end());
        std::map<std::string, std::vector<std::string>> where;  // id -> mailboxes holding it
        std::map<std::string, std::set<std::string>> flags;     // id -> its flags (last seen)
        std::string transcript;
        bool complete = false;
        try {
            Conn c(*this, shard, "imap", next_session_id(), false);
            Imap imap(c);
            auto excerpt = [&c] { return c.transcript(); };
            bool up = co_await c.connect();
            if (up) up = co_await imap.greeting();
            if (up) up = co_await imap.login(user);
            if (up) {
                complete = true;
                for (const char* mb : {"INBOX", kArchive}) {
                    auto sel = co_await imap.command("EXAMINE", std::string("EXAMINE ") + mb,
                                                     std::string(mb) != "INBOX");
                    if (!sel.ok()) {
                        if (sel.status != "NO") complete = false;
                        continue;
                    }
                    auto box = parse_select(sel);
                    if (!box.exists) continue;
                    auto r = co_await imap.command(
                        "UID FETCH", "UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (" +
                                         std::string(kIdHeader) + ")])");
                    if (!r.ok()) {
                        complete = false;
                        break;
                    }
                    std::map<std::string, std::uint64_t> here;  // id -> UID in this mailbox
                    for (auto& u : r.untagged) {
                        if (u.text.find(" FETCH (") == std::string::npos) continue;
                        auto uid = number_after(u.text, "UID ");
                        std::optional<std::string> id;
                        for (auto& lit : u.literals)
                            if ((id = id_in(lit))) break;
                        if (!uid || !id) continue;
                        oracle.seen(user.login, mb, box.uidvalidity, *uid, *id, excerpt);
                        where[*id].push_back(mb);
                        if (auto f = flags_in(u.text)) flags[*id] = std::move(*f);
                        here[*id] = *uid;
                    }
                    // A sample of this user's messages, chosen by index so that a repeated run
                    // checks the same ones: BODY.PEEK[] against the generator's bytes.
                    for (auto& [id, uid] : here) {
                        if (!mine.count(id) || where[id].size() != 1) continue;
                        auto d = oracle.delivery(id);
                        if (!d) continue;
                        Rng pick{derive(cfg.seed, d->index, 29)};
                        if (pick.u() >= cfg.verify_bytes) continue;
                        auto body = co_await imap.command(
                            "UID FETCH", "UID FETCH " + std::to_string(uid) + " BODY.PEEK[]");
                        if (!body.ok()) {
                            complete = false;
                            break;
                        }
                        std::optional<std::string> got;
                        for (auto& u : body.untagged)
                            if (u.text.find(" FETCH (") != std::string::npos &&
                                number_after(u.text, "UID ") == uid && !u.literals.empty())
                                got = u.literals.back();
                        auto sent = make_message(cfg, d->index, d->from, d->to);
                        auto bad = got ? body_mismatch(*got, sent.bytes)
                                       : std::optional<std::string>("no BODY[] in the answer");
                        if (bad)
                            oracle.violation("wrong-bytes", user.login, mb, id, *bad,
                                             c.transcript());
                        bytes_checked.fetch_add(1);
                    }
                }
                transcript = c.transcript();
                co_await imap.logout();
            }
        } catch (const std::exception& ex) {
            std::lock_guard l(shards[shard]->mu);
            ++shards[shard]->errors[std::string("verify: ") + ex.what()];
            complete = false;
        }
        if (!complete) {
            oracle.violation("unverified", user.login, "", "", "could not list the mailboxes",
                             transcript);
            continue;
        }
        for (auto& id : expected[index]) {
            auto it = where.find(id);
            auto n = it == where.end() ? 0 : it->second.size();
            if (n > 0 && oracle.must_be_gone(user.login, id) &&
                std::find(it->second.begin(), it->second.end(), "INBOX") != it->second.end()) {
                oracle.violation("undeleted", user.login, "INBOX", id,
                                 "POP3 DELE committed by QUIT's +OK, still in INBOX", transcript);
            } else if (n == 1 || (n == 0 && oracle.was_deleted(user.login, id))) {
                verified.fetch_add(1);
            } else if (n == 0) {
                oracle.violation(
                    "lost", user.login, "INBOX", id,
                    "acknowledged by SMTP 250, absent from INBOX and " + std::string(kArchive),
                    transcript);
            } else {
                std::string boxes;
                for (auto& b : it->second)
                    boxes += (boxes.empty() ? "" : ", ") + b;
                oracle.violation(
                    "duplicate", user.login, it->second.front(), id,
                    "delivered once, found " + std::to_string(n) + " times (" + boxes + ")",
                    transcript);
            }
            if (n != 1) continue;
            // Flags a session set and the server acknowledged, checked once the run is quiet.
            for (const auto* flag : {&kSeen, &kFlagged}) {
                auto want = oracle.flag_expected(user.login, id, *flag);
                if (!want) continue;
                bool has = flags[id].count(lower(*flag)) > 0;
                if (has != *want)
                    oracle.violation("flags", user.login, it->second.front(), id,
                                     *flag + (*want ? " was set" : " was cleared") +
                                         " by an acknowledged command, but the message " +
                                         (has ? "has it" : "lacks it"),
                                     transcript);
            }
        }
        // Ids of this run that nobody sent to this user.
        auto prefix = std::to_string(cfg.seed) + "." + cfg.run_id + ".";
        for (auto& [id, boxes] : where)
            if (id.rfind(prefix, 0) == 0 && !mine.count(id))
                oracle.violation("unexpected", user.login, boxes.front(), id,
                                 "this run never sent it to " + user.login, transcript);
    }
    running->fetch_sub(1);
}

// ---- the run ----------------------------------------------------------------------------------

struct ProcSample {
    double cpu_seconds = 0;
    std::uint64_t rss_bytes = 0;
    bool ok = false;
};

// utime + stime and RSS of a process from /proc/PID/stat (proc(5): fields 14, 15 and 24).
ProcSample sample_proc(long pid) {
    ProcSample s;
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos) return s;
    std::istringstream in(text.substr(close + 2));
    std::vector<std::string> fields;
    for (std::string w; in >> w;)
        fields.push_back(w);
    if (fields.size() < 22) return s;  // fields[0] is field 3 (state)
    double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    s.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / tick;
    s.rss_bytes = std::stoull(fields[21]) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    s.ok = true;
    return s;
}

double thread_cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_THREAD, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string iso_now() {
    char buf[32];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

json::object Engine::run(const ProgressFn& progress, const std::atomic<bool>* stop) {
    auto started_at = iso_now();
    auto t0 = Clock::now();
    auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(cfg.duration));
    double main_cpu0 = thread_cpu_seconds();
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& c : ctxs)
        guards.emplace_back(c->get_executor());
    std::atomic<double> io_cpu{0};
    std::vector<std::thread> threads;
    for (auto& c : ctxs)
        threads.emplace_back([&io_cpu, ctx = c.get()] {
            ctx->run();
            double mine = thread_cpu_seconds();
            double cur = io_cpu.load();
            while (!io_cpu.compare_exchange_weak(cur, cur + mine)) {
            }
        });

    if (cfg.open) {
        asio::co_spawn(*ctxs[0], arrivals(), asio::detached);
    } else {
        generating = false;
        auto n = std::max<std::uint64_t>(cfg.sessions, 1);
        for (std::uint64_t i = 0; i < n; ++i) {
            auto shard = static_cast<unsigned>(i % ctxs.size());
            asio::co_spawn(*ctxs[shard], closed_worker(shard), asio::detached);
        }
    }

    std::optional<ProcSample> proc0, proc_prev;
    std::uint64_t max_rss = 0;
    if (cfg.target_pid) {
        auto s = sample_proc(*cfg.target_pid);
        if (s.ok) proc0 = proc_prev = s;
    }
    json::array timeline;
    bool interrupted = false;
    auto last_tick = t0;
    std::uint64_t tick = 0;
    auto take_tick = [&](bool final) {
        auto now = Clock::now();
        double dt = std::chrono::duration<double>(now - last_tick).count();
        if (final && dt < 0.2) return;  // a sliver at the end says nothing
        last_tick = now;
        std::uint64_t cmds = 0, errs = 0;
        Histogram lat;
        for (auto& s : shards) {
            std::lock_guard l(s->mu);
            cmds += s->sec_commands;
            errs += s->sec_errors;
            lat.merge(s->sec_latency);
            s->sec_commands = s->sec_errors = 0;
            s->sec_latency.clear();
        }
        json::object row{{"t", static_cast<double>(tick++)},
                         {"commands", cmds},
                         {"errors", errs},
                         {"sessions_active", active.load()},
                         {"p50_us", lat.quantile(0.5)},
                         {"p99_us", lat.quantile(0.99)}};
        if (proc_prev) {
            auto s = sample_proc(*cfg.target_pid);
            if (s.ok) {
                row["target_cpu"] = dt > 0 ? (s.cpu_seconds - proc_prev->cpu_seconds) / dt : 0.0;
                row["target_rss_bytes"] = s.rss_bytes;
                max_rss = std::max(max_rss, s.rss_bytes);
                proc_prev = s;
            }
        }
        timeline.push_back(row);
        if (progress && !final) {
            std::uint64_t total_errors = 0;
            for (auto& s : shards) {
                std::lock_guard l(s->mu);
                for (auto& [k, n] : s->errors)
                    total_errors += n;
            }
            std::uint64_t nb;
            {
                std::lock_guard l(mu);
                nb = breaches;
            }
            json::object live{{"t", std::chrono::duration<double>(now - t0).count()},
                              {"sessions", started.load()},
                              {"sessions_active", active.load()},
                              {"commands", commands.load()},
                              {"errors", total_errors},
                              {"breaches", nb},
                              {"delivered", oracle.delivered_count()},
                              {"commands_per_s", dt > 0 ? static_cast<double>(cmds) / dt : 0.0},
                              {"p99_us", lat.quantile(0.99)}};
            if (!progress(live)) interrupted = true;
        }
    };

    // Traffic phase: until the deadline, a stop request, or (open loop with max_sessions, or
    // max_commands) the work runs out.
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        auto now = Clock::now();
        if (stop && stop->load()) interrupted = true;
        if (now - last_tick >= std::chrono::seconds(1)) take_tick(false);
        if (interrupted || now >= deadline || stopping()) break;
        if (cfg.max_sessions && started.load() >= cfg.max_sessions && !generating.load() &&
            active.load() == 0)
            break;
        if (!cfg.open && cfg.max_sessions && active.load() == 0 &&
            started.load() >= cfg.max_sessions)
            break;
    }
    auto traffic_end = Clock::now();
    request_stop();
    // Drain: sessions see the flag at their next step and log out.
    auto drain_until = Clock::now() + kDrainGrace;
    while ((active.load() > 0 || generating.load()) && Clock::now() < drain_until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (Clock::now() - last_tick >= std::chrono::seconds(1)) take_tick(false);
        if (stop && stop->load()) interrupted = true;
    }
    take_tick(true);
    // Sessions that outlived the grace: their last lines say what they were waiting for.
    json::array stuck;
    if (active.load() > 0) {
        for (std::size_t i = 0; i < ctxs.size(); ++i) {
            auto got = std::make_shared<std::promise<std::vector<std::string>>>();
            auto f = got->get_future();
            asio::post(*ctxs[i], [shard = shards[i].get(), got] {
                std::vector<std::string> t;
                for (auto* c : shard->live)
                    t.push_back(c->transcript());
                got->set_value(std::move(t));
            });
            if (f.wait_for(std::chrono::seconds(2)) != std::future_status::ready) continue;
            for (auto& t : f.get())
                if (stuck.size() < kMaxReported) stuck.push_back(json::string(t));
        }
        std::lock_guard l(shards[0]->mu);
        shards[0]->errors["still running at the end of the drain"] += active.load();
    }
    double traffic_seconds = std::chrono::duration<double>(traffic_end - t0).count();

    // Verification phase (skipped when interrupted: the user asked to stop).
    std::string verification = "skipped";
    if (cfg.verify && !interrupted && cfg.targets.count("imap") && active.load() == 0) {
        stop_ = false;         // sessions of the verifier run to completion ...
        cfg.max_commands = 0;  // ... whatever the traffic's command bound was
        auto expected = oracle.expected();
        auto users = std::make_shared<std::vector<std::uint64_t>>();
        for (auto& [u, ids] : expected)
            users->push_back(u);
        auto next = std::make_shared<std::atomic<std::size_t>>(0);
        auto running = std::make_shared<std::atomic<unsigned>>(0);
        unsigned n = std::min<unsigned>(kVerifiers, static_cast<unsigned>(users->size()));
        running->store(n);
        for (unsigned i = 0; i < n; ++i) {
            auto shard = i % static_cast<unsigned>(ctxs.size());
            asio::co_spawn(*ctxs[shard], verifier(shard, users, next, running), asio::detached);
        }
        while (running->load() > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            if (stop && stop->load()) {
                interrupted = true;
                request_stop();
            }
            if (progress && Clock::now() - last_tick >= std::chrono::seconds(1)) {
                last_tick = Clock::now();
                json::object live{{"t", std::chrono::duration<double>(last_tick - t0).count()},
                                  {"phase", "verify"},
                                  {"verified", verified.load()},
                                  {"delivered", oracle.delivered_count()}};
                if (!progress(live)) {
                    interrupted = true;
                    request_stop();
                }
            }
        }
        verification = interrupted ? "interrupted" : "done";
        request_stop();
    } else if (cfg.verify && !cfg.targets.count("imap")) {
        verification = "skipped: no imap target";
    }

    guards.clear();
    for (auto& c : ctxs)
        c->stop();  // sessions that outlived the grace are abandoned
    for (auto& t : threads)
        t.join();
    double engine_cpu = io_cpu.load() + (thread_cpu_seconds() - main_cpu0);

    // Results (load-schema.md).
    std::map<std::string, CmdStats> cmds;
    std::map<std::string, std::uint64_t> errors, refusals;
    std::uint64_t total_cmds = 0, total_errs = 0;
    for (auto& s : shards) {
        std::lock_guard l(s->mu);
        for (auto& [k, v] : s->cmds) {
            auto& d = cmds[k];
            d.count += v.count;
            d.errors += v.errors;
            d.latency.merge(v.latency);
        }
        for (auto& [k, n] : s->errors)
            errors[k] += n;
        for (auto& [k, n] : s->refusals)
            refusals[k] += n;
    }
    json::object jcmds;
    for (auto& [k, v] : cmds) {
        total_cmds += v.count;
        jcmds[k] = json::object{{"count", v.count},
                                {"errors", v.errors},
                                {"latency_us", v.latency.summary_json()},
                                {"histogram", v.latency.to_json()}};
    }
    json::object jerrs;
    for (auto& [k, n] : errors) {
        jerrs[k] = n;
        total_errs += n;
    }
    json::object target{
        {"pid", cfg.target_pid ? json::value(*cfg.target_pid) : json::value(nullptr)}};
    if (proc0 && proc_prev) {
        target["cpu_seconds"] = proc_prev->cpu_seconds - proc0->cpu_seconds;
        target["max_rss_bytes"] = max_rss;
    } else {
        target["cpu_seconds"] = nullptr;
        target["max_rss_bytes"] = nullptr;
    }
    std::uint64_t nb;
    json::array blist, samples;
    {
        std::lock_guard l(mu);
        nb = breaches;
        blist = breach_list;
        samples = error_samples;
    }
    json::object r;
    r["tool"] = "millipost load";
    r["version"] = 1;
    r["seed"] = cfg.seed;
    r["started"] = started_at;
    r["seconds"] = traffic_seconds;
    r["config"] = cfg.echo;
    r["totals"] = json::object{{"sessions", started.load()},
                               {"commands", total_cmds},
                               {"errors", total_errs},
                               {"contract_breaches", nb},
                               {"oracle_violations", oracle.violation_count()},
                               {"messages_delivered", oracle.delivered_count()},
                               {"messages_verified", verified.load()}};
    r["commands"] = std::move(jcmds);
    r["timeline"] = std::move(timeline);
    r["errors"] = std::move(jerrs);
    json::object jrefusals;
    for (auto& [k, n] : refusals)
        jrefusals[k] = n;
    r["refusals"] = std::move(jrefusals);  // allowed answers that ended a session early
    r["breaches"] = std::move(blist);
    r["violations"] = oracle.violations();
    r["target"] = std::move(target);
    r["verification"] = verification;
    r["bytes_verified"] = bytes_checked.load();  // messages whose full bytes were compared
    r["engine"] =
        json::object{{"io_threads", ctxs.size()},
                     {"cpu_seconds", engine_cpu},
                     {"scram_pbkdf2", pbkdf2_runs.load()},
                     {"cpu_ms_per_1000_commands",
                      total_cmds ? engine_cpu * 1e6 / static_cast<double>(total_cmds) : 0.0}};
    r["error_samples"] = std::move(samples);  // the first errors, with their transcripts
    r["stuck"] = std::move(stuck);            // transcripts of sessions abandoned at the end
    r["interrupted"] = interrupted;
    return r;
}

}  // namespace

// ---- public helpers ---------------------------------------------------------------------------

Target parse_target(std::string_view url) {
    Target t;
    auto sep = url.find("://");
    std::string_view rest = url;
    if (sep != std::string_view::npos) {
        auto scheme = lower(std::string(url.substr(0, sep)));
        if (scheme == "pop") scheme = "pop3";
        if (scheme == "pops") scheme = "pop3s";
        static const std::map<std::string, std::string> protocols = {
            {"smtp", "smtp"},  {"imap", "imap"},  {"pop3", "pop3"},      {"smtps", "smtp"},
            {"imaps", "imap"}, {"pop3s", "pop3"}, {"submission", "smtp"}};
        auto p = protocols.find(scheme);
        if (p == protocols.end())
            throw std::invalid_argument("target: unknown scheme in " + std::string(url));
        t.protocol = p->second;
        t.scheme = scheme;
        t.tls = scheme == "smtps" || scheme == "imaps" || scheme == "pop3s";
        t.starttls = scheme == "submission";
        t.submission = scheme == "submission" || scheme == "smtps";
        rest = url.substr(sep + 3);
    }
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        auto query = lower(std::string(rest.substr(q + 1)));
        rest = rest.substr(0, q);
        if (query != "starttls" || t.scheme.empty() || t.tls)
            throw std::invalid_argument(
                "target: only imap://, pop3:// and smtp:// URLs take ?starttls: " +
                std::string(url));
        t.starttls = true;
    }
    if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
    std::string host;
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') {  // [v6]:port
        auto close = rest.find(']');
        if (close == std::string_view::npos)
            throw std::invalid_argument("target: bad address in " + std::string(url));
        host = std::string(rest.substr(1, close - 1));
        if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    } else {
        auto colon = rest.rfind(':');
        host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) port = rest.substr(colon + 1);
    }
    if (host.empty()) throw std::invalid_argument("target: no host in " + std::string(url));
    t.host = host;
    if (!port.empty()) {
        unsigned long p = 0;
        for (char c : port) {
            if (c < '0' || c > '9')
                throw std::invalid_argument("target: bad port in " + std::string(url));
            p = p * 10 + static_cast<unsigned long>(c - '0');
            if (p > 65535) throw std::invalid_argument("target: bad port in " + std::string(url));
        }
        if (p == 0) throw std::invalid_argument("target: bad port in " + std::string(url));
        t.port = static_cast<std::uint16_t>(p);
    }
    if (t.protocol.empty()) {
        switch (t.port) {
            case 25:
            case 587:
            case 2525:
                t.protocol = "smtp";
                break;
            case 110:
                t.protocol = "pop3";
                break;
            case 143:
                t.protocol = "imap";
                break;
            default:
                throw std::invalid_argument("target: say smtp://, imap:// or pop3:// for " +
                                            std::string(url));
        }
        t.scheme = t.protocol;
    }
    if (t.port == 0) {
        static const std::map<std::string, std::uint16_t> ports = {
            {"smtp", 25},   {"imap", 143},  {"pop3", 110},      {"smtps", 465},
            {"imaps", 993}, {"pop3s", 995}, {"submission", 587}};
        t.port = ports.at(t.scheme);
    }
    return t;
}

std::optional<std::string> body_mismatch(std::string_view fetched, std::string_view sent) {
    if (fetched.size() < sent.size())
        return "the server's copy has " + std::to_string(fetched.size()) + " octets, " +
               std::to_string(sent.size()) + " were sent";
    auto prefix = fetched.substr(0, fetched.size() - sent.size());
    auto tail = fetched.substr(prefix.size());
    if (tail != sent) {
        // Report against the sent bytes, aligned at the start of what the client sent if the
        // server's copy has it, else at the end.
        auto first = sent.substr(0, sent.find("\r\n"));
        auto at = fetched.find(first);
        auto copy = at == std::string_view::npos ? tail : fetched.substr(at);
        std::size_t d = 0;
        while (d < copy.size() && d < sent.size() && copy[d] == sent[d])
            ++d;
        return "the server's copy differs from the sent message at octet " + std::to_string(d) +
               " of " + std::to_string(sent.size()) +
               (at == std::string_view::npos ? " (its first header is missing)" : "");
    }
    // What precedes must be whole header fields (trace fields a server prepends: Received:,
    // Return-Path:, Delivered-To:, ...), each "name:" or a folded continuation.
    while (!prefix.empty()) {
        auto eol = prefix.find("\r\n");
        if (eol == std::string_view::npos)
            return "the server's copy has " + std::to_string(prefix.size()) +
                   " octets before the sent message that are not header lines";
        auto line = prefix.substr(0, eol);
        bool folded = !line.empty() && (line[0] == ' ' || line[0] == '\t');
        auto colon = line.find(':');
        bool field = colon != std::string_view::npos && colon > 0 &&
                     std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon),
                                 [](char ch) { return ch > 32 && ch < 127; });
        if (!folded && !field)
            return "the server's copy has a non-header line before the sent message: " +
                   std::string(line.substr(0, 80));
        prefix.remove_prefix(eol + 2);
    }
    return std::nullopt;
}

boost::asio::ip::address_v4 source_address(std::uint64_t n) {
    // 2^24 - 2 usable addresses: 127.0.0.1 .. 127.255.255.254.
    constexpr std::uint64_t kUsable = (std::uint64_t{1} << 24) - 2;
    auto host = static_cast<std::uint32_t>(n % kUsable + 1);
    return boost::asio::ip::address_v4((std::uint32_t{127} << 24) | host);
}

Arrivals::Arrivals(double rate_per_second, std::uint64_t seed)
    : rate_(rate_per_second), state_(seed) {
    if (!(rate_ > 0)) throw std::invalid_argument("arrivals: rate must be positive");
}

double Arrivals::next_gap() {
    return -std::log(1.0 - uniform01(state_)) / rate_;
}

json::object run_load(const json::object& config, const ProgressFn& progress,
                      const std::atomic<bool>* stop) {
    Engine e(parse_config(config));
    return e.run(progress, stop);
}

}  // namespace millipost::sim
