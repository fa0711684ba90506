// Small RAII helpers for the libhdf5 C API, shared by every module that reads or writes HDF5 (landscape
// surfaces, the run store). Header-only: including it needs <hdf5.h>, so only modules linking HDF5 do.
#pragma once

#include <hdf5.h>

namespace ts::h5 {

// Owns one HDF5 id; the close function depends on the kind of object (H5Fclose, H5Dclose, ...).
class Handle {
  public:
    Handle() = default;
    Handle(hid_t id, herr_t (*close)(hid_t)) : m_id(id), m_close(close) {}
    Handle(Handle&& o) noexcept : m_id(o.m_id), m_close(o.m_close) { o.m_id = -1; }
    Handle& operator=(Handle&& o) noexcept {
        reset();
        m_id = o.m_id;
        m_close = o.m_close;
        o.m_id = -1;
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { reset(); }
    void reset() {
        if (m_id >= 0 && m_close) m_close(m_id);
        m_id = -1;
    }
    hid_t get() const { return m_id; }
    bool valid() const { return m_id >= 0; }

  private:
    hid_t m_id = -1;
    herr_t (*m_close)(hid_t) = nullptr;
};

// HDF5 prints its own error stack by default; our errors are one line, so silence it while we work.
class QuietErrors {
  public:
    QuietErrors() {
        H5Eget_auto2(H5E_DEFAULT, &m_fn, &m_data);
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    }
    ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, m_fn, m_data); }
    QuietErrors(const QuietErrors&) = delete;
    QuietErrors& operator=(const QuietErrors&) = delete;

  private:
    H5E_auto2_t m_fn = nullptr;
    void* m_data = nullptr;
};

} // namespace ts::h5
