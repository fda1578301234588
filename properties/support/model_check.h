// support/model_check.h: runs a protocol model as a RapidCheck property inside the current
// GoogleTest, with every connection recorded and checked by its contract, and saves the shrunk
// counterexample's connections as regression transcripts when the property fails.
//
// RapidCheck shrinks by re-running candidates and keeping each one that still fails, so the last
// failing run is the shrunk counterexample: its recording is kept and written once the check
// ends, to $MILLIPOST_REGRESSIONS_DIR (default: the source tree's fixtures/regressions) as
// <model>-<seed>[.<n>].transcript, with headers for the model, seed, reproduce string and the
// failure (fixtures/README.md).
#pragma once
#include "support/transcript.h"

#include <rapidcheck.h>

#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace millipost::props {

// What the replay needs to rebuild the service: users ("login=password; ..."), limits.
using RunHeaders = std::vector<std::pair<std::string, std::string>>;

// Checks `property` (one run: it gets the run's recorder, and must give every connection
// `rec.tap(contract)`) under RapidCheck in the running GoogleTest, with RC_PARAMS honoured and the
// seed printed; fails the test on a counterexample after saving it. `headers` go into every
// saved transcript.
void check_model(const std::string& model, const RunHeaders& headers,
                 const std::function<void(RunRecorder& rec)>& property);

// Where regressions are written and read: $MILLIPOST_REGRESSIONS_DIR, else the source tree's
// fixtures/regressions.
std::filesystem::path regressions_dir();

// rc::state::runAll, and after each command the contracts of every connection so far: a breach
// fails the run at the command that caused it.
template <class Cmds, class Model, class Sut>
void run_checked(const Cmds& commands, const Model& initial, Sut& sut, const RunRecorder& rec) {
    Model state = initial;
    for (const auto& command : commands) {
        command->checkPreconditions(state);
        command->run(state, sut);
        if (auto b = rec.breach(); !b.empty()) {
            std::ostringstream os;
            command->show(os);
            RC_FAIL("after \"" + os.str() + "\": " + b);
        }
        command->apply(state);
    }
}

}  // namespace millipost::props
