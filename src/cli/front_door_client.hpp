#pragma once
// Requests from a command to a site's front door (archipel share, archipel migrate).

#include "cli/commands.hpp"

#include <boost/system/result.hpp>

#include <string>

namespace archipel::cli {

struct FrontDoorResponse {
  unsigned status = 0;
  std::string body;
};

/// One request (a JSON body, may be empty) to the front door `o` names; the error says why no
/// answer came.
boost::system::result<FrontDoorResponse, std::string> call_front_door(const ServerOptions& o,
                                                                      std::string method,
                                                                      std::string target,
                                                                      std::string body);

/// The message of a Kubernetes Status answer, or the start of the body.
std::string message_of(const FrontDoorResponse& r);

}  // namespace archipel::cli
