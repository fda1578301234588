// search/fts5_index.h: FullTextIndex over SQLite FTS5 with the trigram tokenizer, in its own
// database file (e.g. <data_dir>/search.db).
#pragma once
#include "search/index.h"

#include <memory>
#include <string>

namespace millipost::search {

// One FTS5 table over all users; a message is the row mailbox << 32 | uid, so a query reads only
// the rowid range of its mailbox. Mailbox ids must lie in [0, 2^31) (std::invalid_argument
// otherwise). Writes go through one connection under a mutex; reads use a pool of connections,
// so readers run alongside a writer (WAL).
class Fts5Index final : public FullTextIndex {
  public:
    // Opens the index at `path`, creating the file and schema when missing.
    explicit Fts5Index(const std::string& path);
    ~Fts5Index() override;
    Fts5Index(const Fts5Index&) = delete;
    Fts5Index& operator=(const Fts5Index&) = delete;

    using FullTextIndex::add;
    void add(UserId user, MailboxId mailbox, std::span<const Document> docs) override;
    void remove(UserId user, MailboxId mailbox, std::span<const std::uint32_t> uids) override;
    void drop_mailbox(UserId user, MailboxId mailbox) override;
    std::vector<std::uint32_t> indexed_uids(UserId user, MailboxId mailbox) override;
    std::uint32_t last_indexed_uid(UserId user, MailboxId mailbox) override;
    std::optional<std::vector<std::uint32_t>> find(UserId user, MailboxId mailbox, Field field,
                                                   std::string_view needle) override;

    // Merges the FTS5 b-trees into one (FTS5 'optimize'): faster queries after a bulk load.
    void optimize();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The FTS5 query text for `needle` in `field`: a column filter and the needle as one FTS5 string
// (`"` doubled), so operators and quotes in the needle are literal. Exposed for tests.
std::string fts5_query(Field field, std::string_view needle);

}  // namespace millipost::search
