// properties/check_main.cpp: millipost-check, the model-based properties as a program that runs
// against any IMAP server (design.md: RapidCheck is not PIC, so the Python CLI runs this binary
// and reads its JSON instead of linking the properties).
//
//   millipost-check [--target imap://LOGIN:PASS@HOST:PORT] [--user2 LOGIN:PASS]
//                   --model imap|imap-multi[,...] [--runs N | --seconds S] [--seed N]
//                   [--max-size N] [--json FILE]
//
// Without --target it starts an in-process reference server. Every model run prints its seed and
// how to replay it; on a failure it prints the shrunk command sequence and a RC_PARAMS
// "reproduce=..." string, which replays exactly that case with the same --target and --model.
// Exit status: 0 all passed, 1 a property failed, 2 bad usage or the target is unusable.
#include "imap_models.h"
#include "support/imap_target.h"

#include <rapidcheck.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

// RapidCheck's own listener (prints progress, honours RC_PARAMS verbose settings) and its
// encoding of reproduce strings: defined in librapidcheck, not declared in its public headers.
namespace rc::detail {
TestListener& globalTestListener();
std::string reproduceMapToString(const std::unordered_map<std::string, Reproduce>& reproduceMap);
}  // namespace rc::detail

namespace {

using namespace millipost;

struct Options {
    std::optional<std::string> target;
    std::vector<std::string> user2;
    std::vector<std::string> models;
    std::optional<int> runs;
    std::optional<double> seconds;
    std::optional<std::uint64_t> seed;
    int max_size = 100;
    std::optional<std::string> json;
};

struct Outcome {
    std::string model;
    int runs = 0;
    std::uint64_t seed = 0;
    double seconds = 0;
    bool passed = true;
    std::string message, reproduce, counterexample;
    std::size_t size = 0;  // commands in the shrunk counterexample
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr
        << "millipost-check: " << why << "\n"
        << "usage: millipost-check [--target imap://LOGIN:PASS@HOST:PORT] [--user2 LOGIN:PASS]\n"
           "         --model imap|imap-multi[,...] [--runs N | --seconds S] [--seed N]\n"
           "         [--max-size N] [--json FILE]\n"
           "Every exchange is also held to imap.contract, looked up in $MILLIPOST_CONTRACTS_DIR\n"
           "(default: the source tree's properties/contracts); a breach fails the case.\n";
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        try {
            if (a == "--target")
                o.target = value();
            else if (a == "--user2")
                o.user2.push_back(value());
            else if (a == "--model") {
                std::stringstream ss(value());
                std::string m;
                while (std::getline(ss, m, ','))
                    if (!m.empty()) o.models.push_back(m);
            } else if (a == "--runs")
                o.runs = std::stoi(value());
            else if (a == "--seconds")
                o.seconds = std::stod(value());
            else if (a == "--seed")
                o.seed = std::stoull(value());
            else if (a == "--max-size")
                o.max_size = std::stoi(value());
            else if (a == "--json")
                o.json = value();
            else if (a == "-h" || a == "--help")
                usage("runs the IMAP model-based properties against a server");
            else
                usage("unknown argument " + a);
        } catch (const std::logic_error&) {
            usage("bad value for " + a);
        }
    }
    if (o.models.empty()) usage("--model is required");
    for (auto& m : o.models)
        if (m != "imap" && m != "imap-multi") usage("unknown model " + m);
    if (o.runs && o.seconds) usage("give --runs or --seconds, not both");
    if (o.runs && *o.runs < 1) usage("--runs must be at least 1");
    return o;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\')
            out += '\\', out += static_cast<char>(c);
        else if (c == '\n')
            out += "\\n";
        else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else
            out += static_cast<char>(c);
    }
    return out + "\"";
}

// The lines of `s` as a JSON array of strings (the counterexample, one step a line).
std::string json_lines(const std::string& s) {
    std::string out = "[";
    std::stringstream ss(s);
    std::string line;
    bool first = true;
    while (std::getline(ss, line)) {
        if (line.empty()) continue;
        out += (first ? "" : ", ") + json_string(line);
        first = false;
    }
    return out + "]";
}

// One rc check of `property` with `runs` cases from `seed`; fills `out` on failure. The
// reproduce map of RC_PARAMS (if any) replays a failure instead.
bool check_once(const std::function<void()>& property, const std::string& id, int runs,
                std::uint64_t seed, int max_size, Outcome& out) {
    rc::detail::TestMetadata meta;
    meta.id = id;
    meta.description = id;
    auto params = rc::detail::configuration().testParams;
    params.seed = seed;
    params.maxSuccess = runs;
    params.maxSize = max_size;
    auto result = rc::detail::checkProperty(rc::detail::toProperty(property), meta, params,
                                            rc::detail::globalTestListener(),
                                            rc::detail::configuration().reproduce);
    rc::detail::SuccessResult ok;
    rc::detail::FailureResult failure;
    rc::detail::GaveUpResult gave_up;
    rc::detail::Error error;
    if (result.match(ok)) {
        out.runs += ok.numSuccess;
        return true;
    }
    out.passed = false;
    if (result.match(failure)) {
        out.runs += failure.numSuccess + 1;
        out.message = failure.description;
        std::unordered_map<std::string, rc::detail::Reproduce> map;
        map.emplace(id, failure.reproduce);
        out.reproduce = rc::detail::reproduceMapToString(map);
        for (auto& [type, value] : failure.counterExample) {
            out.counterexample += value + "\n";
            // The command sequence is the value with one command a line.
            auto lines = static_cast<std::size_t>(std::count(value.begin(), value.end(), '\n'));
            out.size = std::max(out.size, lines);
        }
    } else if (result.match(gave_up)) {
        out.runs += gave_up.numSuccess;
        out.message = "gave up: " + gave_up.description;
    } else if (result.match(error)) {
        out.message = "error: " + error.description;
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    auto opt = parse(argc, argv);
    try {
        if (opt.target) {
            auto t = props::imap::parse_url(*opt.target);
            for (auto& u : opt.user2) {
                auto colon = u.find(':');
                if (colon == std::string::npos) usage("--user2 needs LOGIN:PASS");
                t.users.emplace_back(u.substr(0, colon), u.substr(colon + 1));
            }
            props::imap::set_target(t);
        }
        // Probe the target once, so that a wrong URL is exit 2, not a failed property.
        auto& t = props::imap::target();
        props::imap::Client probe(t.at);
        probe.open(t.users.front().first, t.users.front().second, true);
        for (auto cap : {"UIDPLUS", "MOVE", "IDLE"})
            if (!probe.capabilities().count(cap))
                throw props::imap::ImapError(std::string("target lacks ") + cap);
        probe.command("LOGOUT");
    } catch (const std::exception& e) {
        std::cerr << "millipost-check: target unusable: " << e.what() << "\n";
        return 2;
    }
    std::uint64_t seed =
        opt.seed ? *opt.seed : std::random_device{}() * 4294967296ULL + std::random_device{}();
    // RapidCheck prints its configuration when it first loads it: put our seed there, so that the
    // printed seed is the one used.
    std::string params = std::getenv("RC_PARAMS") ? std::getenv("RC_PARAMS") : "";
    ::setenv("RC_PARAMS", (params + " seed=" + std::to_string(seed)).c_str(), 1);
    bool replay = !rc::detail::configuration().reproduce.empty();
    std::vector<Outcome> outcomes;
    for (auto& model : opt.models) {
        std::function<void()> property =
            model == "imap" ? props::imap_session_property : props::imap_multi_property;
        Outcome out;
        out.model = model;
        out.seed = seed;
        std::cout << "millipost-check: model " << model << ", seed " << seed
                  << (opt.target ? ", target " + *opt.target : ", in-process reference server")
                  << std::endl;
        auto start = std::chrono::steady_clock::now();
        auto elapsed = [&start] {
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        };
        if (opt.seconds && !replay) {
            // Rounds of 10 cases with consecutive seeds until the time is up.
            for (std::uint64_t round = 0; elapsed() < *opt.seconds; ++round)
                if (!check_once(property, model, 10, seed + round, opt.max_size, out)) {
                    out.seed = seed + round;
                    break;
                }
        } else {
            check_once(property, model, opt.runs.value_or(100), seed, opt.max_size, out);
        }
        out.seconds = elapsed();
        if (out.passed) {
            std::cout << "millipost-check: model " << model << " PASSED " << out.runs
                      << " cases in " << out.seconds << " s (seed " << out.seed << ")" << std::endl;
        } else {
            std::cout << "millipost-check: model " << model << " FAILED after " << out.runs
                      << " cases (seed " << out.seed << ")\n"
                      << out.message << "\nshrunk counterexample (" << out.size << " commands):\n"
                      << out.counterexample << "replay: RC_PARAMS=\"reproduce=" << out.reproduce
                      << "\" " << argv[0] << (opt.target ? " --target " + *opt.target : "")
                      << " --model " << model << std::endl;
        }
        outcomes.push_back(out);
    }
    bool all = std::all_of(outcomes.begin(), outcomes.end(), [](auto& o) { return o.passed; });
    if (opt.json) {
        std::ofstream f(*opt.json);
        f << "{\"passed\": " << (all ? "true" : "false") << ", \"results\": [";
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
            auto& o = outcomes[i];
            f << (i ? ", " : "") << "{\"model\": " << json_string(o.model)
              << ", \"runs\": " << o.runs << ", \"seed\": " << o.seed
              << ", \"seconds\": " << o.seconds << ", \"passed\": " << (o.passed ? "true" : "false")
              << ", \"failure\": ";
            if (o.passed)
                f << "null";
            else
                f << "{\"counterexample\": " << json_lines(o.counterexample)
                  << ", \"size\": " << o.size << ", \"message\": " << json_string(o.message)
                  << ", \"reproduce\": " << json_string(o.reproduce) << "}";
            f << "}";
        }
        f << "]}\n";
        if (!f) {
            std::cerr << "millipost-check: cannot write " << *opt.json << "\n";
            return 2;
        }
    }
    return all ? 0 : 1;
}
