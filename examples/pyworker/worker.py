# A worker of a Go proc.Start pool, in Python (the Go side: examples/pyworker).
from dataclasses import dataclass

import ipcchan


@dataclass
class Job:  # Go: type Job struct { N int64; Scale float64 }
    N: ipcchan.int64
    Scale: ipcchan.float64


def handle(job: Job) -> str:
    if job.N < 0:
        raise ValueError("cannot take %d items" % job.N)  # this job fails
    return "%d items of %g: %g" % (job.N, job.Scale, job.N * job.Scale)


# Jobs are Go's codec.Default for Job (binary-le), results a Go string.
ipcchan.serve(handle, job=ipcchan.Binary(Job), result=ipcchan.STRING)
