// properties/imap_model_test.cpp: the one-session IMAP model (imap_model.cpp) against the
// in-process reference server. Every run prints its seed; on a failure RapidCheck prints the
// shrunk command sequence and a `reproduce` string; replay exactly that case with
//   RC_PARAMS="reproduce=<string>" ./imap_model_test
// ctest's form: 100 cases, about 2 s; MILLIPOST_PROPS_LONG=1 runs 2000 cases up to size 200, and
// RC_PARAMS="seed=N max_success=N max_size=N" sets anything. The same property runs against any
// server with
//   millipost-check --target imap://user:pass@host:port --model imap
#include "imap_models.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

RC_GTEST_PROP(ImapModel, SessionFollowsTheModel, ()) {
    millipost::props::imap_session_property();
}

int main(int argc, char** argv) {
    millipost::props::choose_form("max_success=100", "max_success=2000 max_size=200");
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
