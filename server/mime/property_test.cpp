// mime/property_test.cpp: RapidCheck: a generated MIME tree (random boundaries, nesting, digests,
// encodings, line endings, transport padding, RFC 2231 parameters) written out by a small
// writer here parses back to the same structure, and every section (BODY[n], n.MIME, n.HEADER,
// n.TEXT, BINARY[n]) returns what the writer put there. Part numbers are computed from the model,
// independently of find_part.
#include "mime/decode.h"
#include "mime/imap_render.h"
#include "mime/section.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

using namespace millipost::mime;

namespace {

// The model: what the writer was asked to write, and what it wrote for each part.
struct Node {
    enum class Kind { Leaf, Multipart, Message };
    Kind kind = Kind::Leaf;
    std::string type = "text", subtype = "plain";
    bool implicit_type = false;  // no Content-Type field: the default applies
    std::string encoding;        // "" (absent), 7bit, base64, quoted-printable
    std::string content;         // leaf: the decoded content
    std::string boundary;        // multipart
    std::vector<std::pair<std::string, std::string>> params;  // expected, decoded
    std::vector<Node> children;
    std::string header_text, body_text;  // filled by the writer
};

// Generators, weighted toward what mail looks like.
namespace gen {

// A choice in [lo, hi] that does not shrink with the test size (gen::inRange does).
int uniform(int lo, int hi) {
    std::vector<int> values;
    for (int i = lo; i <= hi; ++i)
        values.push_back(i);
    return *rc::gen::elementOf(values);
}

// Text lines that never start with '-', so no line of content is a delimiter.
std::string text_lines(const std::string& eol) {
    static const std::string kChars =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?=()";
    int lines = uniform(0, 4);
    std::string out;
    for (int i = 0; i < lines; ++i) {
        if (i) out += eol;
        std::string line =
            *rc::gen::container<std::string>(*rc::gen::inRange(0, 30), rc::gen::elementOf(kChars));
        if (!line.empty() && line[0] == '-') line[0] = 'x';
        out += line;
    }
    if (uniform(0, 2) == 0) out += eol;
    return out;
}

std::string boundary(int& counter) {
    static const std::string kBchars =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=? ";
    std::string b =
        *rc::gen::container<std::string>(*rc::gen::inRange(0, 20), rc::gen::elementOf(kBchars));
    return b + "=_" + std::to_string(counter++);  // unique, and never ends in a space
}

Node leaf(const std::string& eol, bool digest_child) {
    Node n;
    static const std::vector<std::pair<std::string, std::string>> kTypes = {
        {"text", "plain"}, {"text", "html"}, {"application", "octet-stream"}, {"image", "png"}};
    std::tie(n.type, n.subtype) = *rc::gen::elementOf(kTypes);
    n.encoding = *rc::gen::element<std::string>("", "7bit", "base64", "quoted-printable");
    if (n.encoding == "base64" || n.encoding == "quoted-printable")
        n.content = *rc::gen::arbitrary<std::string>();
    else
        n.content = text_lines(eol);
    // Without Content-Type a part is text/plain, or message/rfc822 in a digest: only the
    // former can be a leaf.
    n.implicit_type =
        !digest_child && n.type == "text" && n.subtype == "plain" && uniform(0, 2) == 0;
    return n;
}

Node node(const std::string& eol, int depth, bool digest_child, int& counter);

Node message(const std::string& eol, int depth, int& counter) {
    Node n;
    n.kind = Node::Kind::Message;
    n.type = "message";
    n.subtype = *rc::gen::element<std::string>("rfc822", "global");
    n.children.push_back(node(eol, depth + 1, false, counter));
    return n;
}

Node node(const std::string& eol, int depth, bool digest_child, int& counter) {
    if (digest_child && uniform(0, 1) == 0) {  // digest default: message/rfc822
        Node n = message(eol, depth, counter);
        n.subtype = "rfc822";
        n.implicit_type = true;
        return n;
    }
    int kind = depth >= 3 ? 0 : *rc::gen::weightedElement<int>({{3, 0}, {1, 1}, {3, 2}});
    if (kind == 0) return leaf(eol, digest_child);
    if (kind == 1) return message(eol, depth, counter);
    Node n;
    n.kind = Node::Kind::Multipart;
    n.type = "multipart";
    n.subtype = *rc::gen::element<std::string>("mixed", "alternative", "related", "digest");
    n.boundary = boundary(counter);
    int count = uniform(1, 3);
    for (int i = 0; i < count; ++i)
        n.children.push_back(node(eol, depth + 1, n.subtype == "digest", counter));
    return n;
}

}  // namespace gen

std::string base64(std::string_view data, const std::string& eol) {
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string enc;
    for (std::size_t i = 0; i < data.size(); i += 3) {
        std::uint32_t v = static_cast<unsigned char>(data[i]) << 16;
        if (i + 1 < data.size()) v |= static_cast<unsigned char>(data[i + 1]) << 8;
        if (i + 2 < data.size()) v |= static_cast<unsigned char>(data[i + 2]);
        enc += kAlphabet[(v >> 18) & 63];
        enc += kAlphabet[(v >> 12) & 63];
        enc += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
        enc += i + 2 < data.size() ? kAlphabet[v & 63] : '=';
    }
    std::string out;
    for (std::size_t i = 0; i < enc.size(); i += 76) {
        if (i) out += eol;
        out += enc.substr(i, 76);
    }
    return out;
}

std::string quoted_printable(std::string_view data, const std::string& eol) {
    std::string out;
    std::size_t col = 0;
    for (char c : data) {
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (col >= 70) {
            out += "=" + eol;
            col = 0;
        }
        if (plain) {
            out += c;
            ++col;
        } else {
            static const char kHex[] = "0123456789ABCDEF";
            auto u = static_cast<unsigned char>(c);
            out += '=';
            out += kHex[u >> 4];
            out += kHex[u & 15];
            col += 3;
        }
    }
    return out;
}

std::string padding() {
    return *rc::gen::element<std::string>("", "", " ", "\t", "  \t");
}

// Writes a part (a message when `message_root`) and records its header and body text.
std::string write(Node& n, const std::string& eol, bool message_root) {
    std::string h;
    if (message_root) h += "From: a@example.org" + eol + "Subject: generated" + eol;
    if (!n.implicit_type) {
        h += *rc::gen::element<std::string>("Content-Type", "content-type", "CONTENT-TYPE") + ": " +
             n.type + "/" + n.subtype;
        if (n.kind == Node::Kind::Multipart) {
            h += ";" + eol + " boundary=\"" + n.boundary + "\"";
            n.params.emplace_back("boundary", n.boundary);
        }
        if (n.kind == Node::Kind::Leaf && gen::uniform(0, 2) == 0) {
            h += "; name*0*=utf-8''%C3%A9t%C3%A9;" + eol + "\tname*1=\".bin\"";
            n.params.emplace_back("name", "\xC3\xA9t\xC3\xA9.bin");
        }
        h += eol;
    }
    if (!n.encoding.empty()) h += "Content-Transfer-Encoding: " + n.encoding + eol;
    h += eol;

    std::string b;
    switch (n.kind) {
        case Node::Kind::Leaf:
            if (n.encoding == "base64")
                b = base64(n.content, eol);
            else if (n.encoding == "quoted-printable")
                b = quoted_printable(n.content, eol);
            else
                b = n.content;
            break;
        case Node::Kind::Message:
            b = write(n.children.front(), eol, true);
            break;
        case Node::Kind::Multipart: {
            std::string preamble = gen::text_lines(eol);
            if (!preamble.empty()) b += preamble + eol;
            for (auto& child : n.children) {
                b += "--" + n.boundary + padding() + eol;
                b += write(child, eol, false);
                b += eol;
            }
            b += "--" + n.boundary + "--" + padding();
            if (gen::uniform(0, 1) == 0) b += eol + gen::text_lines(eol);  // epilogue
            break;
        }
    }
    n.header_text = h;
    n.body_text = b;
    return h + b;
}

std::string lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

void check_structure(const Message& m, const Part& p, const Node& n) {
    RC_ASSERT(lower(p.type) == n.type);
    RC_ASSERT(lower(p.subtype) == n.subtype);
    RC_ASSERT(m.raw.substr(p.header_start, p.header_end - p.header_start) == n.header_text);
    RC_ASSERT(m.raw.substr(p.body_start, p.size()) == n.body_text);
    RC_ASSERT(p.defects == 0u);
    for (const auto& [name, value] : n.params) {
        const Param* q = p.param(name);
        RC_ASSERT(q != nullptr);
        RC_ASSERT(q->value == value);
    }
    RC_ASSERT(p.children.size() == n.children.size());
    if (n.kind == Node::Kind::Leaf) RC_ASSERT(decode_body(p, m.raw).data == n.content);
    if (n.kind == Node::Kind::Message) RC_ASSERT(p.is_message());
    for (std::size_t i = 0; i < n.children.size(); ++i)
        check_structure(m, p.children[i], n.children[i]);
}

std::string section(const Message& m, const std::vector<std::uint32_t>& path, Section::Text text) {
    Section s;
    s.part = path;
    s.text = text;
    SectionData d = fetch_section(m, s);
    RC_ASSERT(d.exists);
    return std::string(d.bytes(m.raw));
}

// RFC 9051 §6.4.5 numbering over the model: the parts of a multipart are numbered, a
// non-multipart message has the single part 1 (itself), message/rfc822 numbers its message.
void walk(const Message& m, const Node& numbering, const std::vector<std::uint32_t>& prefix,
          int& visited);

void visit(const Message& m, const Node& n, const std::vector<std::uint32_t>& path, int& visited) {
    ++visited;
    RC_ASSERT(section(m, path, Section::Text::None) == n.body_text);
    RC_ASSERT(section(m, path, Section::Text::Mime) == n.header_text);
    if (n.kind == Node::Kind::Message) {
        RC_ASSERT(section(m, path, Section::Text::Header) == n.children[0].header_text);
        RC_ASSERT(section(m, path, Section::Text::Text) == n.children[0].body_text);
        walk(m, n.children[0], path, visited);
    } else if (n.kind == Node::Kind::Multipart) {
        walk(m, n, path, visited);
    } else {
        BinaryData b = fetch_binary(m, path);
        RC_ASSERT(b.status == BinaryData::Status::Ok);
        RC_ASSERT(b.data == n.content);
    }
}

void walk(const Message& m, const Node& numbering, const std::vector<std::uint32_t>& prefix,
          int& visited) {
    std::size_t count = numbering.kind == Node::Kind::Multipart ? numbering.children.size() : 1;
    for (std::size_t i = 0; i < count; ++i) {
        auto path = prefix;
        path.push_back(static_cast<std::uint32_t>(i + 1));
        const Node& n = numbering.kind == Node::Kind::Multipart ? numbering.children[i] : numbering;
        visit(m, n, path, visited);
    }
    auto beyond = prefix;  // one past the last part does not exist
    beyond.push_back(static_cast<std::uint32_t>(count + 1));
    Section s;
    s.part = beyond;
    RC_ASSERT(!fetch_section(m, s).exists);
}

int count_parts(const Node& n) {
    int c = 1;
    for (const auto& child : n.children)
        c += count_parts(child);
    return c;
}

}  // namespace

RC_GTEST_PROP(MimeProperty, GeneratedTreesParseBack, ()) {
    const std::string eol = *rc::gen::element<std::string>("\r\n", "\r\n", "\n");
    int counter = 0;
    Node root = gen::node(eol, 0, false, counter);
    std::string raw = write(root, eol, true);
    RC_TAG(root.kind == Node::Kind::Multipart ? "multipart" : "single");

    Message m = parse(raw);
    RC_ASSERT(m.part_count == static_cast<std::size_t>(count_parts(root)));
    check_structure(m, m.root, root);

    RC_ASSERT(section(m, {}, Section::Text::None) == raw);
    RC_ASSERT(section(m, {}, Section::Text::Header) == root.header_text);
    RC_ASSERT(section(m, {}, Section::Text::Text) == root.body_text);
    int visited = 0;
    walk(m, root, {}, visited);
    RC_ASSERT(visited >= 1);

    // Both renderings stay within the syntax whatever the tree.
    for (bool extended : {false, true}) {
        std::string body = render_body(m.root, extended);
        RC_ASSERT(std::count(body.begin(), body.end(), '(') >= 1);
    }
}

RC_GTEST_PROP(MimeProperty, PrefixesAndSplicesNeverEscapeTheInput, (const std::string& junk)) {
    // Any prefix of a valid message, with junk spliced in, parses with every offset in bounds.
    const std::string eol = "\r\n";
    int counter = 0;
    Node root = gen::node(eol, 0, false, counter);
    std::string raw = write(root, eol, true);
    auto cut = static_cast<std::size_t>(gen::uniform(0, static_cast<int>(raw.size())));
    std::string s = raw.substr(0, cut) + junk + raw.substr(cut / 2);
    RC_LOG() << "input: " << ::testing::PrintToString(s) << "\n";
    Message m = parse(s);
    std::function<void(const Part&, std::size_t, std::size_t)> bounds = [&](const Part& p,
                                                                            std::size_t lo,
                                                                            std::size_t hi) {
        RC_ASSERT(lo <= p.header_start && p.header_start <= p.header_end);
        RC_ASSERT(p.header_end == p.body_start && p.body_start <= p.body_end && p.body_end <= hi);
        std::size_t prev = p.body_start;
        for (const auto& c : p.children) {
            bounds(c, prev, p.body_end);
            prev = c.body_end;
        }
    };
    bounds(m.root, 0, s.size());
}
