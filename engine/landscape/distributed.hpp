// Grid points spread over MPI ranks (`mpirun -np N tensorscape landscape ...`), as the reference scripts spread
// them: rank 0 sets up the directions and writes every file; each rank takes work units from a shared counter
// (dynamic scheduling: points near NaN regions or in the per-point path differ in cost) and rank 0 gathers the
// values. Units are aligned with the evaluator's passes, so each point is computed exactly as one process
// computes it and the surface file is the same bit for bit. A unit that fails on a rank is reported by that
// rank and recomputed by rank 0, never left missing.
//
// MPI is optional (OpenMPI from Debian, libopenmpi-dev): without it the build logs one line, every run is
// one process, and a start by mpirun with more than one rank is a one-line error. Torch-free.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::landscape {

struct Ranks {
    int rank = 0;
    int size = 1;
    bool distributed() const { return size > 1; }
    bool root() const { return rank == 0; }
};

bool builtWithMpi();
// The world size an MPI launcher announced in the environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE or
// SLURM_NTASKS); 1 when none did.
int launcherWorldSize();
// This process's rank as the launcher announced it (OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK); 0 when none.
int launcherRank();

// Joins the MPI job when the launcher started more than one rank (MPI_Init), else returns {0, 1} and touches
// no MPI. Errors (Environment): started with several ranks by a build without MPI, or MPI_Init failed.
// The returned guard finalises MPI when destroyed.
class RankSession {
  public:
    static Expected<RankSession> start();
    RankSession(RankSession&& o) noexcept : m_ranks(o.m_ranks), m_started(o.m_started) { o.m_started = false; }
    RankSession& operator=(RankSession&&) = delete;
    ~RankSession();
    const Ranks& ranks() const { return m_ranks; }

  private:
    RankSession() = default;
    Ranks m_ranks;
    bool m_started = false;
};

// True on every rank when `ok` is true on every rank (MPI_Allreduce with logical and); `ok` in one process.
bool allRanksAgree(const Ranks& ranks, bool ok);

// One computed value: the grid's flat index, loss, accuracy; ok = 0 when the point's unit failed.
struct PointRow {
    double index = 0, loss = 0, acc = 0, ok = 0;
};

// Runs `evaluateUnit(u, rows)` for units u taken from a counter shared by all ranks until `units` are
// taken, then gathers every rank's rows on rank 0 (returned there; other ranks get an empty list). In one
// process it runs every unit in order. `evaluateUnit` appends one row per point of unit u (ok = 0 when it
// failed) and returns the failure's message ("" when it worked).
std::vector<PointRow> runUnitsAcrossRanks(const Ranks& ranks, int64_t units,
                                          const std::function<std::string(int64_t, std::vector<PointRow>&)>& evaluateUnit);

} // namespace ts::landscape
