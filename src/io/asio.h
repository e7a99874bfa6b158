// The Boost.Asio names Hato uses, in one place.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

namespace hato {
namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
}  // namespace hato
