// support/test_service.cpp: the per-run service harness (see test_service.h).
#include "support/test_service.h"

#include "auth/password.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <stdexcept>

namespace millipost::props {

TestService::TestService(const std::function<void(config::Config&)>& tweak) {
    spdlog::set_level(spdlog::level::warn);
    auto pattern = (std::filesystem::temp_directory_path() / "millipost-props-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    dir_ = pattern;
    cfg_.data_dir = dir_.string();
    cfg_.smtp_port = 0;
    cfg_.pop3_port = 0;
    cfg_.io_threads = 2;
    cfg_.store_threads = 2;
    if (tweak) tweak(cfg_);
    svc_ = std::make_unique<Service>(cfg_);
    svc_->start();
}

TestService::~TestService() {
    svc_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

void TestService::restart() {
    svc_->stop();
    svc_.reset();
    svc_ = std::make_unique<Service>(cfg_);
    svc_->start();
}

store::UserId TestService::add_user(const std::string& login, const std::string& password) {
    return svc_->store().add_user(login, auth::make_secret(password, 1000));
}

store::MailboxId TestService::inbox(store::UserId user) {
    auto mb = svc_->store().find_mailbox(user, store::kInbox);
    if (!mb) throw std::runtime_error("user has no INBOX");
    return mb->id;
}

}  // namespace millipost::props
