// net/address.cpp: client address keys (see address.h).
#include "net/address.h"

namespace millipost::net {

std::string client_key(const boost::asio::ip::address& a) {
    if (a.is_v4()) return a.to_v4().to_string();
    auto v6 = a.to_v6();
    if (v6.is_v4_mapped())
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
    auto bytes = v6.to_bytes();
    for (std::size_t i = 8; i < bytes.size(); ++i)
        bytes[i] = 0;
    return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

std::string client_key(std::string_view address) {
    boost::system::error_code ec;
    auto a = boost::asio::ip::make_address(std::string(address), ec);
    if (ec) return std::string(address);
    return client_key(a);
}

}  // namespace millipost::net
