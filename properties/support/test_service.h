// support/test_service.h: a millipost::Service for one property run: a fresh data directory,
// ephemeral loopback ports, few threads, and a restart on the same directory (persistence).
#pragma once
#include "service.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace millipost::props {

// A new empty directory for one run's data, named `prefix`-XXXXXX, under $MILLIPOST_PROPS_TMP,
// else /dev/shm when it is writable, else the system's temporary directory. The caller removes it.
std::filesystem::path scratch_dir(const std::string& prefix);

class TestService {
  public:
    // `tweak` may adjust the configuration (limits) before the first start.
    explicit TestService(const std::function<void(config::Config&)>& tweak = {});
    ~TestService();
    TestService(const TestService&) = delete;
    TestService& operator=(const TestService&) = delete;

    Service& svc() { return *svc_; }
    store::MailStore& store() { return svc_->store(); }
    std::uint16_t smtp_port() const { return svc_->smtp_port(); }
    std::uint16_t pop3_port() const { return svc_->pop3_port(); }
    std::uint16_t imap_port() const { return svc_->imap_port(); }

    // Stops the service and starts a new one on the same data directory; ports change.
    // With `drain_first`, waits until every session has ended before stopping (see drain()).
    void restart(bool drain_first = true);

    // Waits (up to 5 s) until the server has no connection left, so that a restart after the
    // client closed its session stops a quiet server; restart(false) stops it under live
    // sessions instead (shutdown interrupting them is part of what is tested).
    void drain();

    // Adds a user with a cheap password hash; returns its id.
    store::UserId add_user(const std::string& login, const std::string& password);
    // The id of a user's INBOX.
    store::MailboxId inbox(store::UserId user);

  private:
    std::filesystem::path dir_;
    config::Config cfg_;
    std::unique_ptr<Service> svc_;
};

}  // namespace millipost::props
