// Replays a fuzz target's corpus (fuzz/corpus/<target>/: seeds and every crash ever found) through
// the target's entry point in the normal and sanitizer builds, so a fixed crash stays fixed
// without libFuzzer. Built once per target with that target's *_fuzzer.cc; the corpus directory
// comes from GATEHOUSE_FUZZ_CORPUS.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(FuzzRegressionTest, CorpusReplaysCleanly) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(GATEHOUSE_FUZZ_CORPUS)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << "empty corpus " << GATEHOUSE_FUZZ_CORPUS;
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    std::fprintf(stderr, "replaying %s\n", f.c_str());  // names the input if it crashes
    std::ifstream in(f, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The targets trap (abort) on a broken oracle; a crash fails the test binary.
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size()), 0);
  }
  std::printf("replayed %zu inputs from %s\n", files.size(), GATEHOUSE_FUZZ_CORPUS);
}

}  // namespace
