// Schedule builders for the suite's own algorithms. Each appends rounds to a Plan for the calling rank.
// Blocks: block i of a vector of `count` elements is [block_offset(i), block_offset(i) + block_count(i)).
#pragma once

#include "schedule.hpp"

namespace partrain::coll {

// ---- ring (ring.cpp) ----------------------------------------------------------------------------------------
/// Ring reduce-scatter in n−1 steps: at step s rank r sends block r−s−1 and receives block r−s−2, which it
/// reduces with its own contribution from `send` into `part` (partial sums, at block offsets) or, at the last
/// step, into `final_dst` (its own block r). Pipelined in chunks of plan.chunk_elems; `tmp` holds one chunk.
/// Each rank sends (n−1)/n of the vector. `part` may be `send` (in place).
void ring_reduce_scatter(Plan& p, const void* send, void* part, void* final_dst, std::int64_t count, char* tmp);
/// Ring allgather in n−1 steps on `recv`, which holds this rank's block at its offset: at step s rank r sends
/// block r−s and receives block r−s−1. Each rank sends (n−1)/n of the vector.
void ring_allgather(Plan& p, void* recv, std::int64_t count);
/// Pipelined chain broadcast: the root sends chunk k to the next rank, which forwards it while receiving k+1.
void ring_broadcast(Plan& p, void* buf, std::int64_t count, int root);
/// Pairwise-exchange alltoall: at step s rank r sends block r+s to rank r+s and receives from rank r−s.
void pairwise_alltoall(Plan& p, const void* send, void* recv, std::int64_t count);
/// The same with per-peer counts (elements; each buffer packed in rank order): at step s rank r sends its block for
/// r+s and receives the block of r−s, so every pair exchanges in one round whatever the counts.
void pairwise_alltoallv(Plan& p, const void* send, const std::int64_t* send_counts, void* recv,
                        const std::int64_t* recv_counts);

// ---- recursive doubling / halving (recdbl.cpp) -----------------------------------------------------------------
// Non-powers of two: with p′ the largest power of two ≤ n and rem = n − p′, ranks 2i and 2i+1 (i < rem) are folded
// into one: the even rank hands its data to the odd one first and gets the result back last (as MPICH does).
/// Recursive-doubling allreduce in place on `work` (latency-optimal: log p′ rounds of whole-vector exchanges).
void recdbl_allreduce(Plan& p, void* work, std::int64_t count, char* tmp);
/// Rabenseifner allreduce in place on `work`: recursive-halving reduce-scatter + recursive-doubling allgather
/// (bandwidth-optimal for powers of two: 2(p′−1)/p′ of the vector sent per rank).
void rabenseifner_allreduce(Plan& p, void* work, std::int64_t count, char* tmp);
/// Recursive-halving reduce-scatter of `work` (which it overwrites); this rank's block is written to final_dst.
void recdbl_reduce_scatter(Plan& p, void* work, void* final_dst, std::int64_t count, char* tmp);
/// Recursive-doubling allgather on `recv` (own block at its offset).
void recdbl_allgather(Plan& p, void* recv, std::int64_t count);
/// Dissemination barrier: ⌈log₂ n⌉ rounds of empty messages to rank + 2^k.
void dissemination_barrier(Plan& p);

// ---- binomial tree (tree.cpp) -------------------------------------------------------------------------------
/// Binomial reduce to rank 0, then binomial broadcast from rank 0, in place on `work`.
void tree_allreduce(Plan& p, void* work, std::int64_t count, char* tmp);
void tree_broadcast(Plan& p, void* buf, std::int64_t count, int root);

}  // namespace partrain::coll
