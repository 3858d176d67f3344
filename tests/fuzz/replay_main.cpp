// Runs the fuzz target without libFuzzer (any compiler) over: every expression of the example
// files (*.txt: each line, and its part before " => "), and every other file whole (inputs the
// fuzzer once found failing, kept in tests/fuzz/regressions/).

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
void run(const std::string& s) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR...\n", argv[0]);
    return 2;
  }
  std::size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    for (const auto& entry : std::filesystem::directory_iterator(argv[i])) {
      std::ifstream in(entry.path(), std::ios::binary);
      if (entry.path().extension() != ".txt") {
        std::ostringstream whole;
        whole << in.rdbuf();
        run(whole.str());
        ++inputs;
        continue;
      }
      std::string line;
      while (std::getline(in, line)) {
        run(line);
        run(line.substr(0, line.rfind(" => ")));
        inputs += 2;
      }
    }
  }
  std::printf("%zu inputs replayed\n", inputs);
  return inputs > 0 ? 0 : 1;
}
