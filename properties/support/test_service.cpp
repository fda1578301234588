// support/test_service.cpp: the per-run service harness (see test_service.h).
#include "support/test_service.h"

#include "auth/password.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace millipost::props {

namespace {

// Where data directories go: $MILLIPOST_PROPS_TMP, else /dev/shm when it is there (a restart
// within one process needs no disk, and fsync on a busy CI disk would dominate the run time),
// else the system's temporary directory.
std::filesystem::path scratch_root() {
    if (const char* dir = std::getenv("MILLIPOST_PROPS_TMP")) return dir;
    std::error_code ec;
    if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    return std::filesystem::temp_directory_path();
}

}  // namespace

std::filesystem::path scratch_dir(const std::string& prefix) {
    auto pattern = (scratch_root() / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    return pattern;
}

TestService::TestService(const std::function<void(config::Config&)>& tweak) {
    spdlog::set_level(spdlog::level::warn);
    dir_ = scratch_dir("millipost-props");
    cfg_.data_dir = dir_.string();
    cfg_.smtp_port = 0;
    cfg_.pop3_port = 0;
    cfg_.imap_port = 0;
    cfg_.io_threads = 2;
    cfg_.store_threads = 2;
    try {
        if (tweak) tweak(cfg_);
        svc_ = std::make_unique<Service>(cfg_);
        svc_->start();
    } catch (...) {  // no destructor runs for a constructor that throws
        svc_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        throw;
    }
}

TestService::~TestService() {
    drain();
    svc_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

void TestService::restart(bool drain_first) {
    if (drain_first) drain();
    svc_->stop();
    svc_.reset();
    svc_ = std::make_unique<Service>(cfg_);
    svc_->start();
}

void TestService::drain() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (svc_ && svc_->running() && svc_->net().connections() > 0 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
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
