// MPI ranks for the landscape grid: joining the job, agreeing on errors, a shared unit counter (one-sided
// fetch-and-add on rank 0's window) and the gather of the ranks' values. One process without MPI.
#include "engine/landscape/distributed.hpp"

#include <cstdio>
#include <cstdlib>

#include "engine/core/log.hpp"

#ifdef TS_HAVE_MPI
// The C API only: mpi.h in C++ otherwise declares MPI-2's removed C++ bindings, which need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace ts::landscape {

bool builtWithMpi() {
#ifdef TS_HAVE_MPI
    return true;
#else
    return false;
#endif
}

int launcherWorldSize() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"}) {
        if (const char* v = std::getenv(name)) {
            const int n = std::atoi(v);
            if (n > 0) return n;
        }
    }
    return 1;
}

int launcherRank() {
    for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}) {
        if (const char* v = std::getenv(name)) return std::atoi(v);
    }
    return 0;
}

Expected<RankSession> RankSession::start() {
    RankSession s;
    const int announced = launcherWorldSize();
    if (announced <= 1) return s;
#ifdef TS_HAVE_MPI
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised && MPI_Init(nullptr, nullptr) != MPI_SUCCESS)
        return makeError(ErrorKind::Environment, "MPI_Init failed (started by mpirun with " +
                                                     std::to_string(announced) + " ranks)");
    s.m_started = !initialised;
    MPI_Comm_rank(MPI_COMM_WORLD, &s.m_ranks.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &s.m_ranks.size);
    return s;
#else
    return makeError(ErrorKind::Environment,
                     "started by an MPI launcher with " + std::to_string(announced) +
                         " ranks, but this tensorscape was built without MPI (install libopenmpi-dev and rebuild)");
#endif
}

RankSession::~RankSession() {
#ifdef TS_HAVE_MPI
    if (m_started) MPI_Finalize();
#endif
}

bool allRanksAgree(const Ranks& ranks, bool ok) {
#ifdef TS_HAVE_MPI
    if (ranks.distributed()) {
        int mine = ok ? 1 : 0, all = 0;
        MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
        return all != 0;
    }
#else
    (void)ranks;
#endif
    return ok;
}

std::vector<PointRow> runUnitsAcrossRanks(const Ranks& ranks, int64_t units,
                                          const std::function<std::string(int64_t, std::vector<PointRow>&)>& evaluateUnit) {
    std::vector<PointRow> rows;
    int64_t failures = 0;
    auto runOne = [&](int64_t u) {
        const std::string failure = evaluateUnit(u, rows);
        if (failure.empty()) return;
        if (failures++ == 0)
            std::fprintf(stderr, "tensorscape: rank %d: a unit of the grid failed (%s); rank 0 recomputes its points\n",
                         ranks.rank, failure.c_str());
    };
#ifdef TS_HAVE_MPI
    if (ranks.distributed()) {
        // The counter lives in rank 0's window; every rank (rank 0 too) takes the next unit with an atomic
        // fetch-and-add under a shared passive-target lock, so no rank waits for a coordinator.
        int64_t* counter = nullptr;
        MPI_Win win;
        MPI_Win_allocate(ranks.root() ? MPI_Aint(sizeof(int64_t)) : 0, sizeof(int64_t), MPI_INFO_NULL, MPI_COMM_WORLD,
                         &counter, &win);
        if (ranks.root()) {
            MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win);
            *counter = 0;
            MPI_Win_unlock(0, win);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        const int64_t one = 1;
        for (;;) {
            int64_t u = 0;
            MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win);
            MPI_Fetch_and_op(&one, &u, MPI_INT64_T, 0, 0, MPI_SUM, win);
            MPI_Win_unlock(0, win);
            if (u >= units) break;
            runOne(u);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Win_free(&win);

        // Gather: counts, then the rows as doubles, on rank 0.
        static_assert(sizeof(PointRow) == 4 * sizeof(double));
        const int mine = static_cast<int>(rows.size() * 4);
        std::vector<int> counts(static_cast<size_t>(ranks.size)), offsets(static_cast<size_t>(ranks.size));
        MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
        std::vector<PointRow> all;
        if (ranks.root()) {
            int total = 0;
            for (int r = 0; r < ranks.size; ++r) {
                offsets[static_cast<size_t>(r)] = total;
                total += counts[static_cast<size_t>(r)];
            }
            all.resize(static_cast<size_t>(total / 4));
        }
        MPI_Gatherv(rows.data(), mine, MPI_DOUBLE, all.data(), counts.data(), offsets.data(), MPI_DOUBLE, 0,
                    MPI_COMM_WORLD);
        int64_t failed = 0, failedAll = 0;
        for (const auto& r : rows)
            failed += r.ok == 0;
        MPI_Reduce(&failed, &failedAll, 1, MPI_INT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
        if (ranks.root() && failedAll > 0)
            TS_LOG_WARN("landscape: %lld points failed on some rank", static_cast<long long>(failedAll));
        return all;
    }
#endif
    for (int64_t u = 0; u < units; ++u)
        runOne(u);
    return rows;
}

} // namespace ts::landscape
