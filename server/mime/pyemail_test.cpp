// mime/pyemail_test.cpp: differential check: for every .eml in testdata/, the structure Python's
// `email` package reads (testdata/pyemail_structure.py) must equal ours, printed the same way,
// up to the intentional differences listed below.
#include "mime/decode.h"
#include "mime/message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace millipost::mime;

namespace {

// Where the two readings differ on purpose: {file, Python's lines, ours}.
struct Difference {
    const char* file;
    const char* python;
    const char* ours;
};
const Difference kDifferences[] = {
    // A multipart without boundary: Python keeps the declared type and reads one leaf; we also
    // read one leaf but call it text/plain, as RFC 2045 §5.2 says for an invalid Content-Type
    // (and BODYSTRUCTURE must not announce a multipart that has no parts).
    {"no_boundary.eml", "multipart/mixed decoded=107", "text/plain decoded=107"},
    // message/external-body: Python parses every message/* body as a message; its body is only
    // a phantom header (RFC 2046 §5.2.3), and IMAP's body-type-msg covers message/rfc822 and
    // message/global alone (RFC 9051 §7.5.2), so for us it is a leaf.
    {"rfc2231.eml",
     "  message/external-body access-type=\"URL\" "
     "url=\"ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"\n"
     "    application/x-tar decoded=0",
     "  message/external-body access-type=\"URL\" "
     "url=\"ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\" decoded=33"},
    // A multipart cut off before its close delimiter: Python drops the last line break of the
    // last part as if a delimiter followed; no delimiter claims it, so we keep it in the body
    // (as Dovecot does: the part runs to the end of the input).
    {"malformed_boundaries.eml", "  text/plain decoded=45", "  text/plain decoded=47"},
};

std::string lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

// Python's `str.encode("ascii", "backslashreplace")` of a UTF-8 value, then `"` escaped.
std::string python_quote(const std::string& utf8) {
    std::string out = "\"";
    std::string s = sanitize_utf8(utf8);
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        std::uint32_t cp;
        std::size_t n;
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if (c < 0xE0) {
            cp = c & 0x1F;
            n = 2;
        } else if (c < 0xF0) {
            cp = c & 0x0F;
            n = 3;
        } else {
            cp = c & 0x07;
            n = 4;
        }
        for (std::size_t k = 1; k < n; ++k)
            cp = (cp << 6) | (s[i + k] & 0x3F);
        i += n;
        char buf[16];
        if (cp == '"') {
            out += "\\\"";
        } else if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else {
            std::snprintf(buf, sizeof buf,
                          cp <= 0xFF     ? "\\x%02x"
                          : cp <= 0xFFFF ? "\\u%04x"
                                         : "\\U%08x",
                          cp);
            out += buf;
        }
    }
    return out + "\"";
}

std::string params_of(std::vector<Param> params) {
    std::sort(params.begin(), params.end(),
              [](const Param& a, const Param& b) { return a.name < b.name; });
    std::string out;
    for (const auto& p : params)
        out += " " + p.name + "=" + python_quote(p.value);
    return out;
}

void describe(const Part& p, std::string_view raw, int depth, std::vector<std::string>& out) {
    std::string line(static_cast<std::size_t>(depth) * 2, ' ');
    line += lower(p.type) + "/" + lower(p.subtype) + params_of(p.params);
    if (p.disposition)
        line += " disposition=" + lower(*p.disposition) + params_of(p.disposition_params);
    if (p.is_multipart() || p.is_message()) {
        out.push_back(line);
        for (const auto& c : p.children)
            describe(c, raw, depth + 1, out);
        return;
    }
    Decoded d = decode_body(p, raw);
    line += " decoded=" + std::to_string(d.unknown_encoding ? p.size() : d.data.size());
    out.push_back(line);
}

// One python3 run for all files (a start-up per file would cost seconds): the output of each
// follows a line "# <path>".
std::map<std::string, std::string> run_python(const std::vector<std::filesystem::path>& files) {
    std::string cmd = std::string(MIME_PYTHON3) + " " + MIME_TESTDATA + "/pyemail_structure.py";
    for (const auto& f : files)
        cmd += " '" + f.string() + "'";
    cmd += " 2>&1";
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    std::string out;
    std::array<char, 4096> buf;
    while (std::size_t n = pipe ? std::fread(buf.data(), 1, buf.size(), pipe.get()) : 0)
        out.append(buf.data(), n);
    std::map<std::string, std::string> by_file;
    std::string* current = &by_file[""];  // anything before the first marker: an error
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t nl = out.find('\n', pos);
        std::size_t next = nl == std::string::npos ? out.size() : nl + 1;
        std::string line = out.substr(pos, next - pos);
        if (line.starts_with("# "))
            current = &by_file[std::filesystem::path(line.substr(2, line.size() - 3)).filename()];
        else
            *current += line;
        pos = next;
    }
    return by_file;
}

}  // namespace

TEST(MimePyEmail, EveryTestdataFileReadsTheSame) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(MIME_TESTDATA))
        if (e.path().extension() == ".eml") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_GE(files.size(), 10u);
    std::map<std::string, std::string> python_view = run_python(files);
    EXPECT_EQ(python_view[""], "") << "python3 said something before the first file";
    for (const auto& path : files) {
        SCOPED_TRACE(path.filename().string());
        std::ifstream f(path, std::ios::binary);
        std::string raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        Message m = parse(raw);
        std::vector<std::string> lines;
        describe(m.root, raw, 0, lines);
        std::string ours;
        for (const auto& l : lines)
            ours += l + "\n";

        std::string python = python_view[path.filename()];
        for (const auto& d : kDifferences) {
            if (path.filename() != d.file) continue;
            auto at = python.find(d.python);
            ASSERT_NE(at, std::string::npos) << "documented difference no longer seen:\n"
                                             << d.python << "\nin\n"
                                             << python;
            python.replace(at, std::string_view(d.python).size(), d.ours);
        }
        EXPECT_EQ(python, ours);
    }
}
