// PtArchive: a strict reader of the zip archive torch.save writes, and the same entries laid out again (zip64
// form) for LibTorch's reader. See pt_archive.hpp for why.
#include "engine/capture/pt_archive.hpp"

#include <algorithm>
#include <cstring>

namespace ts::capture {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kLocatorSig = 0x07064b50;
constexpr uint64_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kEnd64Size = 56, kLocatorSize = 20;
constexpr uint32_t k32 = 0xffffffffu;
constexpr uint64_t kMaxEntries = uint64_t(1) << 20;

uint64_t le(const char* p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i)
        v = (v << 8) | uint64_t(static_cast<unsigned char>(p[i]));
    return v;
}

void put(std::vector<char>& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i)
        out.push_back(char((v >> (8 * i)) & 0xff));
}

// ASCII lower case, as miniz compares names.
std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return s;
}

// [pos, pos + n) lies inside [0, limit), without overflow.
bool inside(uint64_t pos, uint64_t n, uint64_t limit) {
    return pos <= limit && n <= limit - pos;
}

} // namespace

std::string PtArchive::parse(std::vector<char> bytes, PtArchive& out) {
    out = PtArchive();
    out.m_bytes = std::move(bytes);
    const char* b = out.m_bytes.data();
    const uint64_t size = out.m_bytes.size();
    const std::string notZip = "is not a zip archive as torch.save writes (saved by an old torch.save with "
                               "_use_new_zipfile_serialization=False, or not by torch.save?)";
    if (size < kEndSize) return notZip;

    // End record: the last signature whose comment ends exactly at the end of the file.
    uint64_t end = UINT64_MAX;
    for (uint64_t pos = size - kEndSize + 1; pos-- > 0 && size - pos <= kEndSize + 0xffff;) {
        if (le(b + pos, 4) == kEndSig && pos + kEndSize + le(b + pos + 20, 2) == size) {
            end = pos;
            break;
        }
    }
    if (end == UINT64_MAX) return notZip;
    if (le(b + end + 4, 2) != 0 || le(b + end + 6, 2) != 0) return "is a zip archive spread over several disks";
    uint64_t count = le(b + end + 10, 2), dirSize = le(b + end + 12, 4), dirOffset = le(b + end + 16, 4);
    uint64_t dirLimit = end; // the directory ends before the records that describe it
    if (end >= kLocatorSize && le(b + end - kLocatorSize, 4) == kLocatorSig) {
        const uint64_t z = le(b + end - kLocatorSize + 8, 8);
        if (!inside(z, kEnd64Size, end - kLocatorSize) || le(b + z, 4) != kEnd64Sig)
            return "is a damaged zip archive (its zip64 end record is not where the locator says)";
        if (le(b + z + 16, 4) != 0 || le(b + z + 20, 4) != 0) return "is a zip archive spread over several disks";
        count = le(b + z + 32, 8);
        dirSize = le(b + z + 40, 8);
        dirOffset = le(b + z + 48, 8);
        dirLimit = z;
    }
    if (!inside(dirOffset, dirSize, dirLimit))
        return "is a damaged zip archive (its directory lies outside the file)";
    if (count == 0) return "is an empty zip archive";
    if (count > kMaxEntries || count > dirSize / kCentralSize)
        return "is a damaged zip archive (" + std::to_string(count) + " entries claimed in a " +
               std::to_string(dirSize) + "-byte directory)";

    const uint64_t dirEnd = dirOffset + dirSize;
    uint64_t p = dirOffset;
    for (uint64_t i = 0; i < count; ++i) {
        const std::string which = "entry " + std::to_string(i + 1) + " of " + std::to_string(count);
        if (!inside(p, kCentralSize, dirEnd) || le(b + p, 4) != kCentralSig)
            return "is a damaged zip archive (" + which + " of its directory is not where it should be)";
        const uint64_t flags = le(b + p + 8, 2), method = le(b + p + 10, 2);
        uint64_t packed = le(b + p + 20, 4), unpacked = le(b + p + 24, 4), local = le(b + p + 42, 4);
        const uint64_t nameLen = le(b + p + 28, 2), extraLen = le(b + p + 30, 2), commentLen = le(b + p + 32, 2);
        if (!inside(p + kCentralSize, nameLen + extraLen + commentLen, dirEnd))
            return "is a damaged zip archive (" + which + " runs past its directory)";
        Entry e;
        e.name.assign(b + p + kCentralSize, size_t(nameLen));
        e.crc = uint32_t(le(b + p + 16, 4));
        if (nameLen == 0) return "is a damaged zip archive (" + which + " has no name)";
        // zip64 extra field: the 8-byte values of the fields that hold 0xFFFFFFFF, in this order.
        const bool wantUnpacked = unpacked == k32, wantPacked = packed == k32, wantLocal = local == k32;
        bool found = false;
        for (uint64_t x = p + kCentralSize + nameLen, xEnd = x + extraLen; x + 4 <= xEnd;) {
            const uint64_t id = le(b + x, 2), len = le(b + x + 2, 2);
            if (!inside(x + 4, len, xEnd)) return "is a damaged zip archive (a field of " + which + " runs past it)";
            if (id == 1 && !found) {
                found = true;
                uint64_t f = x + 4;
                const uint64_t need = 8 * (uint64_t(wantUnpacked) + uint64_t(wantPacked) + uint64_t(wantLocal));
                if (len < need) return "is a damaged zip archive (the zip64 field of " + which + " is short)";
                if (wantUnpacked) unpacked = le(b + f, 8), f += 8;
                if (wantPacked) packed = le(b + f, 8), f += 8;
                if (wantLocal) local = le(b + f, 8), f += 8;
            }
            x += 4 + len;
        }
        if ((wantUnpacked || wantPacked || wantLocal) && !found)
            return "is a damaged zip archive (" + which + " claims zip64 sizes that it does not give)";
        if (flags & 1) return "holds an encrypted entry ('" + e.name + "')";
        if (method != 0)
            return "holds a compressed entry ('" + e.name + "', method " + std::to_string(method) +
                   "); torch.save stores entries uncompressed";
        if (packed != unpacked)
            return "is a damaged zip archive ('" + e.name + "' is stored uncompressed but claims " +
                   std::to_string(unpacked) + " bytes from " + std::to_string(packed) + ")";
        if (!inside(local, kLocalSize, dirOffset) || le(b + local, 4) != kLocalSig)
            return "is a damaged zip archive (the header of '" + e.name + "' is not where the directory says)";
        const uint64_t dataStart = local + kLocalSize + le(b + local + 26, 2) + le(b + local + 28, 2);
        if (!inside(dataStart, packed, dirOffset))
            return "is a damaged zip archive ('" + e.name + "' claims " + std::to_string(packed) +
                   " bytes, which run past the data in a " + std::to_string(size) + "-byte file)";
        e.offset = dataStart;
        e.size = packed;
        out.m_entries.push_back(std::move(e));
        p += kCentralSize + nameLen + extraLen + commentLen;
    }
    if (p != dirEnd) return "is a damaged zip archive (its directory holds more than its entries)";
    // torch.save puts every record in one folder, and LibTorch looks records up in the first entry's folder
    // with miniz's case-insensitive match: so one folder, and no two names that match alike.
    const std::string& first = out.m_entries.front().name;
    const size_t slash = first.find('/');
    if (slash == std::string::npos || slash == 0)
        return "is not laid out as torch.save writes (its first entry '" + first + "' is not in a folder)";
    out.m_folder = first.substr(0, slash + 1);
    std::vector<std::string> lowered;
    for (const Entry& e : out.m_entries) {
        if (e.name.compare(0, out.m_folder.size(), out.m_folder) != 0)
            return "is not laid out as torch.save writes ('" + e.name + "' is outside the folder '" + out.m_folder + "')";
        lowered.push_back(lower(e.name));
    }
    std::sort(lowered.begin(), lowered.end());
    if (auto d = std::adjacent_find(lowered.begin(), lowered.end()); d != lowered.end())
        return "is a damaged zip archive (two entries are named '" + *d + "')";
    // No two entries share bytes: what LibTorch may allocate is then at most the file's size.
    std::vector<const Entry*> byOffset;
    for (const Entry& e : out.m_entries)
        byOffset.push_back(&e);
    std::sort(byOffset.begin(), byOffset.end(), [](const Entry* x, const Entry* y) { return x->offset < y->offset; });
    for (size_t i = 1; i < byOffset.size(); ++i)
        if (byOffset[i - 1]->offset + byOffset[i - 1]->size > byOffset[i]->offset)
            return "is a damaged zip archive ('" + byOffset[i - 1]->name + "' and '" + byOffset[i]->name +
                   "' share bytes)";
    out.lay();
    return {};
}

const PtArchive::Entry* PtArchive::find(const std::string& name) const {
    const std::string want = lower(m_folder + name);
    for (const Entry& e : m_entries)
        if (lower(e.name) == want) return &e;
    return nullptr;
}

// Local header + zip64 extra (sizes), the data from the original bytes; then the directory (zip64 extra:
// sizes and the header's offset), the zip64 end record, its locator and the end record.
void PtArchive::lay() {
    m_made.clear();
    m_segments.clear();
    uint64_t at = 0;
    auto made = [&](size_t from) {
        m_segments.push_back({at, uint64_t(m_made.size() - from), false, uint64_t(from)});
        at += m_made.size() - from;
    };
    std::vector<uint64_t> localAt;
    for (const Entry& e : m_entries) {
        localAt.push_back(at);
        const size_t from = m_made.size();
        put(m_made, kLocalSig, 4);
        put(m_made, 45, 2); // version needed: zip64
        put(m_made, 0, 2);  // flags
        put(m_made, 0, 2);  // stored
        put(m_made, 0, 4);  // time, date
        put(m_made, e.crc, 4);
        put(m_made, k32, 4);
        put(m_made, k32, 4);
        put(m_made, e.name.size(), 2);
        put(m_made, 20, 2);
        m_made.insert(m_made.end(), e.name.begin(), e.name.end());
        put(m_made, 1, 2);
        put(m_made, 16, 2);
        put(m_made, e.size, 8);
        put(m_made, e.size, 8);
        made(from);
        if (e.size > 0) m_segments.push_back({at, e.size, true, e.offset}); // no empty segments: read() walks on
        at += e.size;
    }
    const uint64_t dirAt = at;
    const size_t dirFrom = m_made.size();
    for (size_t i = 0; i < m_entries.size(); ++i) {
        const Entry& e = m_entries[i];
        put(m_made, kCentralSig, 4);
        put(m_made, 45, 2); // made by
        put(m_made, 45, 2); // needed
        put(m_made, 0, 2);
        put(m_made, 0, 2);
        put(m_made, 0, 4);
        put(m_made, e.crc, 4);
        put(m_made, k32, 4);
        put(m_made, k32, 4);
        put(m_made, e.name.size(), 2);
        put(m_made, 28, 2); // extra
        put(m_made, 0, 2);  // comment
        put(m_made, 0, 2);  // disk
        put(m_made, 0, 2);  // internal attributes
        put(m_made, 0, 4);  // external attributes
        put(m_made, k32, 4);
        m_made.insert(m_made.end(), e.name.begin(), e.name.end());
        put(m_made, 1, 2);
        put(m_made, 24, 2);
        put(m_made, e.size, 8);
        put(m_made, e.size, 8);
        put(m_made, localAt[i], 8);
    }
    const uint64_t dirSize = m_made.size() - dirFrom;
    const uint64_t end64At = dirAt + dirSize;
    put(m_made, kEnd64Sig, 4);
    put(m_made, kEnd64Size - 12, 8);
    put(m_made, 45, 2);
    put(m_made, 45, 2);
    put(m_made, 0, 4);
    put(m_made, 0, 4);
    put(m_made, m_entries.size(), 8);
    put(m_made, m_entries.size(), 8);
    put(m_made, dirSize, 8);
    put(m_made, dirAt, 8);
    put(m_made, kLocatorSig, 4);
    put(m_made, 0, 4);
    put(m_made, end64At, 8);
    put(m_made, 1, 4);
    put(m_made, kEndSig, 4);
    put(m_made, 0, 2);
    put(m_made, 0, 2);
    put(m_made, 0xffff, 2);
    put(m_made, 0xffff, 2);
    put(m_made, k32, 4);
    put(m_made, k32, 4);
    put(m_made, 0, 2);
    made(dirFrom);
    m_size = at;
}

size_t PtArchive::read(uint64_t pos, void* buf, size_t n) const {
    char* dst = static_cast<char*>(buf);
    size_t done = 0;
    auto it = std::upper_bound(m_segments.begin(), m_segments.end(), pos,
                               [](uint64_t v, const Segment& s) { return v < s.start; });
    if (it == m_segments.begin()) return 0;
    for (--it; it != m_segments.end() && done < n; ++it) {
        const uint64_t at = pos + done;
        if (at < it->start || at >= it->start + it->length) break;
        const uint64_t k = std::min<uint64_t>(n - done, it->start + it->length - at);
        const char* src = (it->original ? m_bytes.data() : m_made.data()) + it->source + (at - it->start);
        std::memcpy(dst + done, src, size_t(k));
        done += size_t(k);
    }
    return done;
}

} // namespace ts::capture
