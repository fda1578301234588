// properties/imap_multi_model_test.cpp: 2-4 IMAP sessions on one mailbox (imap_multi_model.cpp),
// interleaved, against the in-process reference server. Every run prints its seed; replay a
// failure with RC_PARAMS="reproduce=<string>" ./imap_multi_model_test. ctest's form: 25 cases,
// about 6 s; MILLIPOST_PROPS_LONG=1 runs 400 cases up to size 150; RC_PARAMS sets anything.
// Against any server:
//   millipost-check --target imap://user:pass@host:port --model imap-multi
#include "imap_models.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

RC_GTEST_PROP(ImapMultiModel, SessionsAgreeWithTheRecord, ()) {
    millipost::props::imap_multi_property();
}

int main(int argc, char** argv) {
    millipost::props::choose_form("max_success=25", "max_success=400 max_size=150");
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
