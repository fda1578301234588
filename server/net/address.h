// net/address.h: how a client address is counted by the connection limits and the failed-login
// throttle.
#pragma once
#include <boost/asio/ip/address.hpp>

#include <string>
#include <string_view>

namespace millipost::net {

// The key a client is counted under: an IPv4 address as itself ("192.0.2.7"); an IPv4-mapped
// IPv6 address (a dual-stack listener's IPv4 client) as that IPv4 address; any other IPv6
// address by its /64 prefix ("2001:db8:1:2::/64"). A host or a customer usually gets a whole
// /64 and can pick any address in it, so counting /128s would let one client multiply its
// connections and its login guesses by 2^64.
std::string client_key(const boost::asio::ip::address& a);
// The same for an address in text; text that is not an address is its own key.
std::string client_key(std::string_view address);

}  // namespace millipost::net
