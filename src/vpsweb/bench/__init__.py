"""`vpsweb bench`: parallel scaling, orchestration overhead, throughput, memory, cost."""
