/*
 * scrypt_plan.h - the batch planner: which kernel passes run a batch's
 * ROMix jobs.
 */
#ifndef SCRYPT_HELPER_PLAN_H
#define SCRYPT_HELPER_PLAN_H

#include <stddef.h>

#include "scrypt_driver.h" /* SCRYPT_MAX_JOBS */

struct scrypt_plan_step {
    const struct scrypt_kernel *kernel;
    unsigned jobs; /* real jobs in this pass (the rest of its lanes are filler) */
};

/*
 * Spread `jobs` (1..SCRYPT_MAX_JOBS) ROMix jobs over passes of v's kernels
 * so that the summed pass cost is least: a lone job takes the one-hash
 * kernel, a full batch the widest. Writes the passes to steps[] (room for
 * `jobs` entries) and returns how many; 0 when jobs is out of range.
 */
size_t scrypt_plan(const struct scrypt_variant *v, unsigned jobs, struct scrypt_plan_step *steps);

#endif /* SCRYPT_HELPER_PLAN_H */
