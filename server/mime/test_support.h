// mime/test_support.h: helpers shared by the MIME tests: sample messages from testdata/ and
// CRLF line endings for messages written inline with \n.
#pragma once
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace millipost::mime::testing {

// The bytes of testdata/<name>; a missing file fails the test.
inline std::string load(const std::string& name) {
    std::ifstream f(std::string(MIME_TESTDATA) + "/" + name, std::ios::binary);
    EXPECT_TRUE(f) << name;
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// `s` with every \n turned into CRLF.
inline std::string crlf(std::string_view s) {
    std::string r;
    for (char c : s) {
        if (c == '\n') r += '\r';
        r += c;
    }
    return r;
}

}  // namespace millipost::mime::testing
