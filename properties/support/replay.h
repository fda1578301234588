// support/replay.h: replays a recorded run (the transcripts of its connections) against a fresh
// reference server and judges the new traffic: the contract must hold, and every server line
// must have the same skeleton as the recorded one (fixtures/README.md says why skeletons and
// not bytes).
#pragma once
#include "support/transcript.h"

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace millipost::props {

// The part of a server line that the replay compares: SMTP replies keep the code and separator
// ("250-", "552 ") and an enhanced status code; POP3 status lines keep +OK / -ERR and a
// [RESPONSE-CODE]; any other line (message text, listings, greeting text) is reduced to "~":
// only its presence counts.
std::string reply_skeleton(std::string_view line);

struct ReplayOutcome {
    std::string failure;            // empty when the run replayed faithfully
    std::vector<Transcript> fresh;  // the run as the reference server answered it this time
};

// Starts a fresh service configured from the headers of the run's first transcript ("users":
// "login=password; ...", "max-message-size"), and replays the connections interleaved as the
// "order" headers say: client records are sent, each recorded server line is matched against one
// line read from the new server.
ReplayOutcome replay_run(const std::vector<Transcript>& run);

// The regression runs in `dir`: "<stem>.transcript" and "<stem>.<n>.transcript" files grouped by
// stem, each group in connection order.
std::map<std::string, std::vector<std::filesystem::path>> regression_runs(
    const std::filesystem::path& dir);

}  // namespace millipost::props
