/*
 * scrypt_plan.c - the batch planner (see scrypt_plan.h): a small dynamic
 * program over the variant's kernels and their measured costs.
 */
#include "scrypt_plan.h"

size_t scrypt_plan(const struct scrypt_variant *v, unsigned jobs, struct scrypt_plan_step *steps)
{
    /* best[k]: least cost of k jobs; choice[k]: the kernel of its last pass. */
    unsigned long long best[SCRYPT_MAX_JOBS + 1];
    unsigned choice[SCRYPT_MAX_JOBS + 1];
    unsigned k, q;
    size_t n = 0;

    if (jobs < 1 || jobs > SCRYPT_MAX_JOBS)
        return 0;
    best[0] = 0;
    for (k = 1; k <= jobs; k++) {
        best[k] = ~0ULL;
        choice[k] = 0;
        for (q = 0; q < v->n_kernels; q++) {
            unsigned take = k < v->kernels[q].lanes ? k : v->kernels[q].lanes;
            unsigned long long c = v->kernels[q].cost + best[k - take];
            if (c < best[k]) {
                best[k] = c;
                choice[k] = q;
            }
        }
    }
    for (k = jobs; k > 0;) {
        const struct scrypt_kernel *kern = &v->kernels[choice[k]];
        unsigned take = k < kern->lanes ? k : kern->lanes;
        steps[n].kernel = kern;
        steps[n].jobs = take;
        n++;
        k -= take;
    }
    return n;
}
