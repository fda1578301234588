// support/model_check.cpp: the model runner with contract checks and regression saving (see
// model_check.h).
#include "support/model_check.h"

#include <gtest/gtest.h>
#include <rapidcheck/detail/Configuration.h>
#include <rapidcheck/detail/Results.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <unordered_map>

// Exported by librapidcheck but not declared in its installed headers: the string that
// RC_PARAMS="reproduce=..." takes.
namespace rc::detail {
std::string reproduceMapToString(const std::unordered_map<std::string, Reproduce>& map);
}  // namespace rc::detail

namespace millipost::props {

std::filesystem::path regressions_dir() {
    if (const char* env = std::getenv("MILLIPOST_REGRESSIONS_DIR"); env && *env) return env;
    return MILLIPOST_REGRESSIONS_SOURCE_DIR;
}

namespace {

// One line for a header: failure messages may span lines.
std::string one_line(const std::string& s) {
    std::string out;
    for (char c : s)
        out += c == '\n' ? std::string(" | ") : c == '\r' ? std::string() : std::string(1, c);
    return out;
}

}  // namespace

void check_model(const std::string& model, const RunHeaders& headers,
                 const std::function<void(RunRecorder& rec)>& property) {
    using namespace rc::detail;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    TestMetadata metadata;
    // The id RC_GTEST_PROP would use, so reproduce strings look the same.
    metadata.id = std::string(info->test_suite_name()) + "/" + info->name();
    metadata.description = info->name();

    std::optional<RunRecorder> last_failure;
    std::string last_message;
    auto seed = configuration().testParams.seed;
    std::cout << "Using seed " << seed << " for " << metadata.id << std::endl;

    auto result = checkTestable(
        [&] {
            RunRecorder rec;
            try {
                property(rec);
            } catch (const CaseResult& r) {
                if (r.type == CaseResult::Type::Failure) {
                    last_failure = rec;
                    // RapidCheck starts with "file:line:"; the rest is the assertion and
                    // its message (RC_FAIL) or expansion (RC_ASSERT).
                    auto nl = r.description.find('\n');
                    bool located =
                        nl != std::string::npos && nl > 0 && r.description[nl - 1] == ':';
                    last_message = located ? r.description.substr(nl + 1) : r.description;
                }
                throw;
            } catch (const std::exception& e) {
                last_failure = rec;
                last_message = e.what();
                throw;
            }
        },
        metadata);

    if (result.is<SuccessResult>()) {
        if (!result.get<SuccessResult>().distribution.empty()) {
            printResultMessage(result, std::cout);
            std::cout << std::endl;
        }
        return;
    }
    std::ostringstream ss;
    printResultMessage(result, ss);
    if (result.is<FailureResult>() && last_failure) {
        auto reproduce =
            reproduceMapToString({{metadata.id, result.get<FailureResult>().reproduce}});
        RunHeaders h = {{"model", model},
                        {"seed", std::to_string(seed)},
                        {"reproduce", "RC_PARAMS=\"reproduce=" + reproduce + "\""},
                        {"failure", one_line(last_message)},
                        {"status", "unblessed"}};
        h.insert(h.end(), headers.begin(), headers.end());
        try {
            auto paths = save_run(regressions_dir(), model + "-" + std::to_string(seed),
                                  last_failure->transcripts(h));
            ss << "\nShrunk counterexample saved as " << paths.size() << " transcript(s):";
            for (auto& p : paths)
                ss << "\n  " << p.string();
        } catch (const std::exception& e) {
            ss << "\nCould not save the regression transcript: " << e.what();
        }
    }
    FAIL() << ss.str() << std::endl;
}

}  // namespace millipost::props
