// search/fts5_index_test.cpp: tests of Fts5Index (real SQLite files in a temp dir) and text_fields.
#include "search/fts5_index.h"
#include "search/catch_up.h"
#include "search/indexer.h"
#include "search/text_fields.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

namespace millipost::search {
namespace {

namespace fs = std::filesystem;
using Uids = std::vector<std::uint32_t>;

class Fts5IndexTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "fts5_index_test.XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        index_ = std::make_unique<Fts5Index>(path());
    }
    void TearDown() override {
        index_.reset();
        fs::remove_all(dir_);
    }
    std::string path() const { return (dir_ / "search.db").string(); }

    static Document doc(std::uint32_t uid, std::string subject, std::string body = {}) {
        Document d;
        d.uid = uid;
        d.fields.header = "Subject: " + subject + "\n";
        d.fields.subject = std::move(subject);
        d.fields.body = std::move(body);
        return d;
    }
    Uids find(Field field, std::string_view needle, MailboxId mailbox = 1, UserId user = 7) {
        auto r = index_->find(user, mailbox, field, needle);
        EXPECT_TRUE(r.has_value()) << needle;
        return r.value_or(Uids{});
    }

    fs::path dir_;
    std::unique_ptr<Fts5Index> index_;
};

TEST(Fts5Query, QuotesNeedleAsOneString) {
    EXPECT_EQ(fts5_query(Field::Subject, "abc"), "{subject} : \"abc\"");
    EXPECT_EQ(fts5_query(Field::Text, "a\"b"), "{header body} : \"a\"\"b\"");
    EXPECT_EQ(fts5_query(Field::Bcc, "\"\""), "{bcc_addr} : \"\"\"\"\"\"");
}

TEST_F(Fts5IndexTest, SubstringNotWord) {
    index_->add(7, 1, doc(1, "x", "the distribution of mail"));
    index_->add(7, 1, doc(2, "x", "distributed"));
    index_->add(7, 1, doc(3, "x", "nothing here"));
    EXPECT_EQ(find(Field::Body, "ribu"), (Uids{1, 2}));
    EXPECT_EQ(find(Field::Body, "tion of ma"), (Uids{1}));
    EXPECT_EQ(find(Field::Body, "ion"), (Uids{1}));
    EXPECT_EQ(find(Field::Body, "ributes"), (Uids{}));
    EXPECT_EQ(find(Field::Body, "here!"), (Uids{}));
}

TEST_F(Fts5IndexTest, CaseInsensitiveAscii) {
    index_->add(7, 1, doc(1, "Quarterly REPORT", "Some Body"));
    EXPECT_EQ(find(Field::Subject, "report"), (Uids{1}));
    EXPECT_EQ(find(Field::Subject, "qUARTERLY rep"), (Uids{1}));
    EXPECT_EQ(find(Field::Body, "SOME BODY"), (Uids{1}));
}

TEST_F(Fts5IndexTest, CaseInsensitiveNonAscii) {
    index_->add(7, 1, doc(1, "Überraschung!", "Ein schöner Sommer"));
    index_->add(7, 1, doc(2, "eine überraschung", "été à Paris"));
    index_->add(7, 1, doc(3, "UEBERRASCHUNG", "ete"));
    index_->add(7, 1, doc(4, "ÜBERRASCHUNG", "ΣΟΦΊΑ"));
    EXPECT_EQ(find(Field::Subject, "ÜBERRASCH"), (Uids{1, 2, 4}));
    EXPECT_EQ(find(Field::Subject, "überrasch"), (Uids{1, 2, 4}));
    EXPECT_EQ(find(Field::Body, "ÉTÉ"), (Uids{2}));
    EXPECT_EQ(find(Field::Body, "été"), (Uids{2}));
    EXPECT_EQ(find(Field::Body, "SCHÖN"), (Uids{1}));
    EXPECT_EQ(find(Field::Body, "σοφία"), (Uids{4}));
    // No diacritics folding: "ete" is not "été".
    EXPECT_EQ(find(Field::Body, "ete"), (Uids{3}));
}

TEST_F(Fts5IndexTest, FieldsAreSeparate) {
    Document d;
    d.uid = 1;
    d.fields = {.subject = "subjectword",
                .from = "Alice <alice@example.org>",
                .to = "Bob <bob@example.net>",
                .cc = "Carol <carol@example.com>",
                .bcc = "Dave <dave@example.edu>",
                .header = "Subject: subjectword\nFrom: Alice <alice@example.org>\nX-Custom: xval\n",
                .body = "bodyword"};
    index_->add(7, 1, d);
    EXPECT_EQ(find(Field::Subject, "subjectword"), (Uids{1}));
    EXPECT_EQ(find(Field::Subject, "bodyword"), (Uids{}));
    EXPECT_EQ(find(Field::Body, "subjectword"), (Uids{}));
    EXPECT_EQ(find(Field::Body, "bodyword"), (Uids{1}));
    EXPECT_EQ(find(Field::From, "alice@"), (Uids{1}));
    EXPECT_EQ(find(Field::From, "bob@"), (Uids{}));
    EXPECT_EQ(find(Field::To, "bob@"), (Uids{1}));
    EXPECT_EQ(find(Field::To, "carol"), (Uids{}));
    EXPECT_EQ(find(Field::Cc, "carol"), (Uids{1}));
    EXPECT_EQ(find(Field::Cc, "dave"), (Uids{}));
    EXPECT_EQ(find(Field::Bcc, "dave"), (Uids{1}));
    EXPECT_EQ(find(Field::Bcc, "alice"), (Uids{}));
    EXPECT_EQ(find(Field::Header, "x-custom: xv"), (Uids{1}));
    EXPECT_EQ(find(Field::Header, "bodyword"), (Uids{}));
    EXPECT_EQ(find(Field::Text, "xval"), (Uids{1}));
    EXPECT_EQ(find(Field::Text, "bodyword"), (Uids{1}));
    EXPECT_EQ(find(Field::Text, "nowhere"), (Uids{}));
}

TEST_F(Fts5IndexTest, OperatorsAndQuotesAreLiteral) {
    const std::vector<std::string> bodies = {
        "say a\"b now",  "NEAR(one two)",  "foo*bar",         "x-y-z",
        "this OR that",  "a AND b",        "{body} : x",      "\"\"\"",
        "'; DROP TABLE", "col:val ^start", "plain text here",
    };
    for (std::uint32_t i = 0; i < bodies.size(); ++i)
        index_->add(7, 1, doc(i + 1, "s", bodies[i]));
    EXPECT_EQ(find(Field::Body, "a\"b"), (Uids{1}));
    EXPECT_EQ(find(Field::Body, "NEAR("), (Uids{2}));
    EXPECT_EQ(find(Field::Body, "near(one"), (Uids{2}));
    EXPECT_EQ(find(Field::Body, "o*b"), (Uids{3}));
    EXPECT_EQ(find(Field::Body, "foo*"), (Uids{3}));
    EXPECT_EQ(find(Field::Body, "***"), (Uids{}));
    EXPECT_EQ(find(Field::Body, "-y-"), (Uids{4}));
    EXPECT_EQ(find(Field::Body, "x-y"), (Uids{4}));
    EXPECT_EQ(find(Field::Body, " OR "), (Uids{5}));
    EXPECT_EQ(find(Field::Body, "OR that"), (Uids{5}));
    EXPECT_EQ(find(Field::Body, "AND"), (Uids{6}));
    EXPECT_EQ(find(Field::Body, "{body} :"), (Uids{7}));
    EXPECT_EQ(find(Field::Body, "\"\"\""), (Uids{8}));
    EXPECT_EQ(find(Field::Body, "'; DROP"), (Uids{9}));
    EXPECT_EQ(find(Field::Body, "col:val"), (Uids{10}));
    EXPECT_EQ(find(Field::Body, "^start"), (Uids{10}));
    EXPECT_EQ(find(Field::Body, "text) OR (plain"), (Uids{}));
    EXPECT_EQ(find(Field::Body, "\" OR \""), (Uids{}));
    EXPECT_EQ(find(Field::Body, "plain\" OR \"here"), (Uids{}));
    EXPECT_EQ(find(Field::Subject, "s\"} : \"plain"), (Uids{}));
    EXPECT_EQ(find(Field::Body, "plain text"), (Uids{11}));
}

TEST_F(Fts5IndexTest, ShortOrInvalidNeedlesAreNotAnswered) {
    index_->add(7, 1, doc(1, "ab", "éé"));
    EXPECT_FALSE(index_->find(7, 1, Field::Subject, "").has_value());
    EXPECT_FALSE(index_->find(7, 1, Field::Subject, "a").has_value());
    EXPECT_FALSE(index_->find(7, 1, Field::Subject, "ab").has_value());
    EXPECT_FALSE(index_->find(7, 1, Field::Body, "éé").has_value());  // 4 octets, 2 characters
    EXPECT_FALSE(index_->find(7, 1, Field::Body, "\xc3\xa9\xff").has_value());   // invalid UTF-8
    EXPECT_FALSE(index_->find(7, 1, Field::Body, "\xc3\xa9\xc3").has_value());   // truncated
    EXPECT_FALSE(index_->find(7, 1, Field::Body, "\xed\xa0\x80x").has_value());  // surrogate
    EXPECT_FALSE(index_->find(7, 1, Field::Body, std::string("ab\0c", 4)).has_value());
    EXPECT_TRUE(index_->find(7, 1, Field::Subject, "abc").has_value());
    EXPECT_EQ(find(Field::Body, "ééx"), (Uids{}));
}

TEST_F(Fts5IndexTest, RemoveDropAndReplace) {
    for (std::uint32_t uid = 1; uid <= 5; ++uid)
        index_->add(7, 1, doc(uid, "common subject", "body " + std::to_string(uid)));
    index_->add(7, 2, doc(1, "common subject"));
    EXPECT_EQ(index_->indexed_uids(7, 1), (Uids{1, 2, 3, 4, 5}));
    EXPECT_EQ(index_->last_indexed_uid(7, 1), 5u);

    const Uids gone = {2, 4, 99};
    index_->remove(7, 1, gone);
    EXPECT_EQ(find(Field::Subject, "common"), (Uids{1, 3, 5}));
    EXPECT_EQ(index_->indexed_uids(7, 1), (Uids{1, 3, 5}));

    // Adding a UID again replaces its text.
    index_->add(7, 1, doc(3, "different"));
    EXPECT_EQ(find(Field::Subject, "common"), (Uids{1, 5}));
    EXPECT_EQ(find(Field::Subject, "different"), (Uids{3}));

    // Another user's calls do nothing to the mailbox.
    index_->drop_mailbox(8, 1);
    index_->remove(8, 1, Uids{1});
    EXPECT_EQ(index_->indexed_uids(7, 1), (Uids{1, 3, 5}));

    index_->drop_mailbox(7, 1);
    EXPECT_EQ(find(Field::Subject, "common"), (Uids{}));
    EXPECT_EQ(index_->indexed_uids(7, 1), (Uids{}));
    EXPECT_EQ(index_->last_indexed_uid(7, 1), 0u);
    EXPECT_EQ(find(Field::Subject, "common", 2), (Uids{1}));
}

TEST_F(Fts5IndexTest, MailboxesAndUsersAreIsolated) {
    index_->add(7, 1, doc(10, "shared words"));
    index_->add(7, 2, doc(20, "shared words"));
    index_->add(9, 3, doc(30, "shared words"));
    index_->add(7, 0x7fffffff, doc(0xffffffff, "shared words"));
    EXPECT_EQ(find(Field::Subject, "shared", 1), (Uids{10}));
    EXPECT_EQ(find(Field::Subject, "shared", 2), (Uids{20}));
    EXPECT_EQ(find(Field::Subject, "shared", 3, 9), (Uids{30}));
    EXPECT_EQ(find(Field::Subject, "shared", 0x7fffffff), (Uids{0xffffffff}));
    EXPECT_EQ(index_->last_indexed_uid(7, 0x7fffffff), 0xffffffffu);
    // Mailbox 3 belongs to user 9: user 7 sees nothing there.
    EXPECT_EQ(find(Field::Subject, "shared", 3, 7), (Uids{}));
    EXPECT_EQ(index_->indexed_uids(7, 3), (Uids{}));
    // A reused mailbox id registered to a new user drops the stale rows.
    index_->add(11, 3, doc(1, "fresh"));
    EXPECT_EQ(index_->indexed_uids(11, 3), (Uids{1}));
    EXPECT_EQ(find(Field::Subject, "shared", 3, 11), (Uids{}));
    EXPECT_THROW(index_->add(7, -1, doc(1, "x")), std::invalid_argument);
    EXPECT_THROW(index_->find(7, MailboxId{1} << 31, Field::Body, "abc"), std::invalid_argument);
}

TEST_F(Fts5IndexTest, PersistsAcrossReopen) {
    std::vector<Document> docs;
    for (std::uint32_t uid = 1; uid <= 100; ++uid)
        docs.push_back(doc(uid, "message " + std::to_string(uid), uid % 2 ? "odd" : "even"));
    index_->add(7, 1, docs);
    index_.reset();
    index_ = std::make_unique<Fts5Index>(path());
    EXPECT_EQ(index_->indexed_uids(7, 1).size(), 100u);
    EXPECT_EQ(find(Field::Subject, "message 10"), (Uids{10, 100}));
    EXPECT_EQ(find(Field::Body, "EVEN").size(), 50u);
    index_->optimize();
    EXPECT_EQ(find(Field::Body, "odd").size(), 50u);
}

TEST_F(Fts5IndexTest, ConcurrentWritersAndReaders) {
    constexpr int kThreads = 4;
    constexpr std::uint32_t kPerThread = 100;
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::thread reader([&] {
        while (!done) {
            auto r = index_->find(7, 1, Field::Body, "thread");
            if (!r) ++failures;
        }
    });
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
        writers.emplace_back([&, t] {
            try {
                for (std::uint32_t i = 1; i <= kPerThread; ++i) {
                    std::uint32_t uid = static_cast<std::uint32_t>(t) * 1000 + i;
                    index_->add(7, 1, doc(uid, "s", "written by thread " + std::to_string(t)));
                    index_->add(7, 100 + t, doc(i, "own mailbox"));
                }
            } catch (const std::exception&) {
                ++failures;
            }
        });
    }
    for (auto& w : writers)
        w.join();
    done = true;
    reader.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(find(Field::Body, "thread").size(), kThreads * kPerThread);
    EXPECT_EQ(find(Field::Body, "thread 2").size(), kPerThread);
    for (int t = 0; t < kThreads; ++t)
        EXPECT_EQ(index_->indexed_uids(7, 100 + t).size(), kPerThread);
}

// Differential check: on a small alphabet with case pairs (ASCII, Latin-1, Greek) and FTS5
// syntax characters, every answer equals a reference case-folded substring search.
TEST_F(Fts5IndexTest, MatchesReferenceSubstringSearch) {
    struct Letter {
        const char* upper;
        const char* lower;
    };
    const std::vector<Letter> alphabet = {{"A", "a"}, {"B", "b"}, {"Ü", "ü"},   {"É", "é"},
                                          {"Σ", "σ"}, {" ", " "}, {"\"", "\""}, {"*", "*"}};
    std::mt19937 rng(12345);
    auto random_word = [&](std::size_t len, std::vector<int>& folded) {
        std::string s;
        folded.clear();
        for (std::size_t i = 0; i < len; ++i) {
            int k = static_cast<int>(rng() % alphabet.size());
            s += rng() % 2 ? alphabet[k].upper : alphabet[k].lower;
            folded.push_back(k);
        }
        return s;
    };
    std::vector<std::vector<int>> texts;
    std::vector<Document> docs;
    for (std::uint32_t uid = 1; uid <= 300; ++uid) {
        std::vector<int> folded;
        docs.push_back(doc(uid, "s", random_word(rng() % 25, folded)));
        texts.push_back(folded);
    }
    index_->add(7, 1, docs);
    std::size_t hits = 0;
    for (int q = 0; q < 300; ++q) {
        std::vector<int> folded;
        std::string needle = random_word(3 + rng() % 3, folded);
        Uids expected;
        for (std::size_t i = 0; i < texts.size(); ++i)
            if (std::search(texts[i].begin(), texts[i].end(), folded.begin(), folded.end()) !=
                texts[i].end())
                expected.push_back(static_cast<std::uint32_t>(i + 1));
        ASSERT_EQ(find(Field::Body, needle), expected) << needle;
        hits += expected.size();
    }
    EXPECT_GT(hits, 300u);  // the needles do hit
}

TEST(TextFields, FromRawMessage) {
    const std::string raw =
        "From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.de>\r\n"
        "To: a@example.org,\r\n b@example.org\r\n"
        "To: second@example.org\r\n"
        "CC: carol@example.com\r\n"
        "Bcc: dave@example.edu\r\n"
        "Subject: =?ISO-8859-1?Q?=DCberraschung?= im Sommer\r\n"
        "X-Mailer: test\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Sch=C3=B6ne Gr=C3=BC=C3=9Fe\r\n";
    Fields f = text_fields(raw);
    EXPECT_EQ(f.subject, "Überraschung im Sommer");
    EXPECT_EQ(f.from, "Jürgen <juergen@example.de>");
    EXPECT_EQ(f.to, "a@example.org, b@example.org\nsecond@example.org");
    EXPECT_EQ(f.cc, "carol@example.com");
    EXPECT_EQ(f.bcc, "dave@example.edu");
    EXPECT_NE(f.header.find("X-Mailer: test\n"), std::string::npos);
    EXPECT_NE(f.header.find("Subject: Überraschung im Sommer\n"), std::string::npos);
    EXPECT_NE(f.body.find("Schöne Grüße"), std::string::npos);
    EXPECT_EQ(text_fields("").subject, "");
}

TEST_F(Fts5IndexTest, IndexesParsedMessages) {
    Document d;
    d.uid = 42;
    d.fields = text_fields(
        "Subject: =?UTF-8?B?w5xCRVJSQVNDSFVORw==?=\r\nFrom: x@y.z\r\n\r\nhello world\r\n");
    index_->add(7, 1, d);
    EXPECT_EQ(find(Field::Subject, "überrasch"), (Uids{42}));
    EXPECT_EQ(find(Field::Header, "from: x@"), (Uids{42}));
    EXPECT_EQ(find(Field::Text, "LO WOR"), (Uids{42}));
    EXPECT_EQ(find(Field::Body, "x@y"), (Uids{}));
}

TEST_F(Fts5IndexTest, CatchUpAddsMissingAndRemovesExpunged) {
    std::map<std::uint32_t, std::string> store;
    for (std::uint32_t uid = 1; uid <= 10; ++uid)
        store[uid] = "Subject: message number " + std::to_string(uid) + "\r\n\r\nbody text\r\n";
    std::vector<std::uint32_t> loads;
    LoadMessage load = [&](std::uint32_t uid) -> std::optional<std::string> {
        loads.push_back(uid);
        auto it = store.find(uid);
        if (it == store.end()) return std::nullopt;
        return it->second;
    };
    auto uids = [&] {
        Uids u;
        for (const auto& [uid, raw] : store)
            u.push_back(uid);
        return u;
    };

    CatchUpStats s = catch_up(*index_, 7, 1, uids(), load, 3);
    EXPECT_EQ(s.added, 10u);
    EXPECT_EQ(s.removed, 0u);
    EXPECT_EQ(index_->indexed_uids(7, 1), uids());
    EXPECT_EQ(find(Field::Body, "body text").size(), 10u);

    // Nothing to do: nothing is loaded.
    loads.clear();
    s = catch_up(*index_, 7, 1, uids(), load);
    EXPECT_EQ(s.added + s.removed, 0u);
    EXPECT_TRUE(loads.empty());

    // Expunge 2 and 5, deliver 11; 12 is listed but gone by the time it is loaded.
    store.erase(2);
    store.erase(5);
    store[11] = "Subject: late arrival\r\n\r\nx\r\n";
    Uids listed = uids();
    listed.push_back(12);
    loads.clear();
    s = catch_up(*index_, 7, 1, listed, load);
    EXPECT_EQ(s.added, 1u);
    EXPECT_EQ(s.removed, 2u);
    EXPECT_EQ(loads, (Uids{11, 12}));
    EXPECT_EQ(index_->indexed_uids(7, 1), uids());
    EXPECT_EQ(find(Field::Subject, "LATE"), (Uids{11}));
    EXPECT_EQ(index_->last_indexed_uid(7, 1), 11u);
}

}  // namespace

// Mail is indexed as it is stored, without a SEARCH; a mailbox whose older mail the index never
// saw is compared with the store once, so no message below the highest indexed UID is missing.
TEST_F(Fts5IndexTest, BackgroundIndexerFollowsDeliveries) {
    auto store = store::open_store("sqlite:" + (dir_ / "store").string());
    auto user = store->add_user("a", "$");
    auto inbox = store->find_mailbox(user, "INBOX")->id;
    std::vector<UserId> to{user};
    auto mail = [](std::string word) {
        return "Subject: " + word + "\r\n\r\nbody of " + word + "\r\n";
    };
    store->deliver(to, "INBOX", mail("before"), 1);  // stored before the indexer runs
    {
        BackgroundIndexer indexer(*store, *index_);
        store->deliver(to, "INBOX", mail("alpha"), 2);
        indexer.drain();
        // UID 2 does not follow the (empty) index: the whole mailbox was compared.
        EXPECT_EQ(find(Field::Subject, "before", inbox, user), Uids{1});
        EXPECT_EQ(find(Field::Body, "alpha", inbox, user), Uids{2});
        for (int i = 0; i < 20; ++i)
            store->deliver(to, "INBOX", mail("word" + std::to_string(i)), 3 + i);
        indexer.drain();
        EXPECT_EQ(index_->last_indexed_uid(user, inbox), 22u);
        EXPECT_EQ(find(Field::Subject, "word19", inbox, user), Uids{22});
        EXPECT_GE(indexer.indexed(), 22u);
    }
    // Stopped: new mail waits for SEARCH's own catch-up.
    store->deliver(to, "INBOX", mail("after"), 99);
    EXPECT_EQ(find(Field::Subject, "after", inbox, user), Uids{});
}

}  // namespace millipost::search
