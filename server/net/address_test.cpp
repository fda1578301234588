// net/address_test.cpp: client keys for the per-address connection limit and the login
// throttle: IPv4 exact, IPv4-mapped IPv6 as IPv4, other IPv6 by /64.
#include "net/address.h"

#include <gtest/gtest.h>

namespace millipost::net {
namespace {

TEST(ClientKey, Ipv4IsTheAddress) {
    EXPECT_EQ(client_key("192.0.2.7"), "192.0.2.7");
    EXPECT_EQ(client_key("127.0.0.1"), "127.0.0.1");
    EXPECT_NE(client_key("192.0.2.7"), client_key("192.0.2.8"));
}

TEST(ClientKey, Ipv4MappedIsTheIpv4Address) {
    EXPECT_EQ(client_key("::ffff:192.0.2.7"), "192.0.2.7");
    EXPECT_EQ(client_key("::ffff:127.0.0.1"), client_key("127.0.0.1"));
    EXPECT_NE(client_key("::ffff:192.0.2.7"), client_key("::ffff:192.0.2.8"));
}

TEST(ClientKey, Ipv6IsItsSlash64) {
    EXPECT_EQ(client_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    // Every address of one /64 is one client...
    EXPECT_EQ(client_key("2001:db8:1:2::1"), client_key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    EXPECT_EQ(client_key("2001:DB8:1:2::abcd"), client_key("2001:db8:1:2::1"));
    // ...and the neighbouring /64s are others.
    EXPECT_NE(client_key("2001:db8:1:2::1"), client_key("2001:db8:1:3::1"));
    EXPECT_NE(client_key("2001:db8:1:2::1"), client_key("2001:db8:0:2::1"));
    EXPECT_EQ(client_key("::1"), "::/64");
    EXPECT_EQ(client_key("fe80::1:2:3:4"), "fe80::/64");
}

TEST(ClientKey, FromAnAddressObject) {
    auto a = boost::asio::ip::make_address("2001:db8::9");
    EXPECT_EQ(client_key(a), "2001:db8::/64");
    EXPECT_EQ(client_key(boost::asio::ip::make_address("10.1.2.3")), "10.1.2.3");
}

TEST(ClientKey, TextThatIsNoAddressIsItsOwnKey) {
    EXPECT_EQ(client_key(""), "");
    EXPECT_EQ(client_key("not an address"), "not an address");
    // An IPv4 key never collides with an IPv6 one.
    EXPECT_NE(client_key("0.0.0.1"), client_key("::1"));
}

}  // namespace
}  // namespace millipost::net
