// The zip archive of a torch.save file, checked and laid out again before LibTorch's reader sees it.
//
// LibTorch 1.13's zip reader (miniz inside PyTorchStreamReader) allocates the size an entry's directory record
// claims before it reads a byte: an entry whose sizes are 0xFFFFFFFF with no zip64 field giving them passes
// miniz's checks and made it allocate 4 GiB for a 748-byte file (found by fuzz_inputs). Rather than guess how
// miniz reads a damaged directory, this parses the archive strictly (torch.save's layout: stored entries, sizes
// that agree, data inside the file) and presents LibTorch a new archive built from what it found: fresh local
// headers, a fresh central directory and end records, all in zip64 form, with each entry's data read from the
// original bytes (no copy). LibTorch then can only ask for ranges and sizes that exist.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ts::capture {

class PtArchive {
  public:
    struct Entry {
        std::string name;
        uint64_t offset = 0; // of the entry's data in the original bytes
        uint64_t size = 0;
        uint32_t crc = 0;
    };

    // Parses `bytes` (the whole file). Empty string: the archive is usable; otherwise one line saying what is
    // wrong with it. `out` owns the bytes afterwards either way.
    static std::string parse(std::vector<char> bytes, PtArchive& out);

    const std::vector<Entry>& entries() const { return m_entries; }
    // The record `name` of the archive's folder (every entry is in one folder, as torch.save writes them),
    // matched without regard to case as LibTorch's reader does; nullptr when there is none.
    const Entry* find(const std::string& name) const;
    const char* data(const Entry& e) const { return m_bytes.data() + e.offset; }

    // The re-laid archive, for LibTorch's ReadAdapterInterface.
    uint64_t size() const { return m_size; }
    size_t read(uint64_t pos, void* buf, size_t n) const;

  private:
    struct Segment {
        uint64_t start = 0;  // in the re-laid archive
        uint64_t length = 0;
        bool original = false; // bytes from m_bytes (an entry's data), else from m_made
        uint64_t source = 0;
    };
    void lay();

    std::vector<char> m_bytes;
    std::vector<Entry> m_entries;
    std::string m_folder; // "archive/": the first entry's folder, with its slash
    std::vector<char> m_made; // headers and directory written here
    std::vector<Segment> m_segments;
    uint64_t m_size = 0;
};

} // namespace ts::capture
