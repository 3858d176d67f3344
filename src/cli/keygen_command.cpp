#include "archipel/peer/identity.hpp"
#include "cli/commands.hpp"

#include <iostream>

namespace archipel::cli {

int keygen(const KeygenOptions& o) {
  if (!peer::sodium_ready()) {
    std::cerr << "archipel: libsodium cannot be initialised\n";
    return kExitFailed;
  }
  const peer::Identity id = peer::Identity::generate(o.site);
  auto saved = id.save(o.out);
  if (!saved) {
    std::cerr << "archipel: " << saved.error() << "\n";
    return kExitFailed;
  }
  std::cout << "wrote " << (o.out / (o.site + ".key")).string()
            << " (secret: keep it on this site)\n"
            << "wrote " << (o.out / (o.site + ".pub")).string() << "\n"
            << "pin it in the other sites' configuration:\n"
            << "  - name: " << o.site << "\n"
            << "    public_key: " << peer::encode_public_key(id.public_key) << "\n";
  return kExitOk;
}

}  // namespace archipel::cli
