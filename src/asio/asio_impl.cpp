// Asio and Beast in separate-compilation mode: their implementation is compiled once, here, and
// every other translation unit sees declarations only (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION are set on the archipel_asio target).

#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
