// properties/imap_models.h: the IMAP model-based properties, as plain functions that RapidCheck
// runs (rc::check, RC_GTEST_PROP): the ctest binaries and millipost-check share them. Each runs
// one case against support/imap_target.h's target.
#pragma once
#include <cstddef>

namespace millipost::props {

// One session: mailboxes, messages, flags and keywords, MODSEQ, UIDs (imap_model.cpp).
void imap_session_property();

// 2-4 sessions on one mailbox, interleaved, checked imaptest-style (imap_multi_model.cpp).
void imap_multi_property();

// Commands per case: 1 to scale * size + 1 (RapidCheck's size grows from 0 to max_size).
extern double imap_model_scale;

// For the ctest binaries: unless RC_PARAMS is set, RC_PARAMS becomes `short_form` (fits CI's two
// cores in well under 30 s) or, when MILLIPOST_PROPS_LONG is set, `long_form`. Call before any
// property runs.
void choose_form(const char* short_form, const char* long_form);

}  // namespace millipost::props
