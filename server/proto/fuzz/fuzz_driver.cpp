// proto/fuzz/fuzz_driver.cpp: runs a libFuzzer target without libFuzzer (g++ builds, ctest):
// every file of the corpus directories given, then N inputs mutated from them with a seed that
// is printed and can be passed back (FUZZ_SEED=... FUZZ_RUNS=...).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    std::vector<std::string> corpus;
    for (int i = 1; i < argc; ++i)
        for (auto& e : std::filesystem::directory_iterator(argv[i])) {
            std::ifstream f(e.path(), std::ios::binary);
            corpus.emplace_back(std::istreambuf_iterator<char>(f),
                                std::istreambuf_iterator<char>());
        }
    if (corpus.empty()) corpus.emplace_back("EHLO x\r\n");
    for (auto& c : corpus)
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(c.data()), c.size());

    std::uint64_t seed = std::getenv("FUZZ_SEED")
                             ? std::strtoull(std::getenv("FUZZ_SEED"), nullptr, 10)
                             : std::random_device{}();
    long runs = std::getenv("FUZZ_RUNS") ? std::atol(std::getenv("FUZZ_RUNS")) : 20000;
    std::printf("fuzz: %zu corpus inputs, %ld mutations, FUZZ_SEED=%llu\n", corpus.size(), runs,
                static_cast<unsigned long long>(seed));
    std::mt19937_64 rng(seed);
    static const char kBytes[] = "\r\n.\0 :<>@\"\\AZaz09\x80\xff";
    for (long r = 0; r < runs; ++r) {
        std::string s = corpus[rng() % corpus.size()];
        int edits = 1 + static_cast<int>(rng() % 8);
        for (int e = 0; e < edits; ++e) {
            std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
            char c = kBytes[rng() % (sizeof kBytes - 1)];
            switch (rng() % 4) {
                case 0:
                    s.insert(pos, 1, c);
                    break;
                case 1:
                    if (pos < s.size()) s.erase(pos, 1);
                    break;
                case 2:
                    if (pos < s.size()) s[pos] = c;
                    break;
                default:
                    if (!s.empty()) s.insert(pos, s.substr(rng() % s.size(), 1 + rng() % 16));
            }
        }
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    }
    std::printf("fuzz: ok\n");
    return 0;
}
