"""The runtime the PyTorch peers run under; call before importing torch.

The thread pools of OpenMP and of the BLAS (Debian's torch uses OpenBLAS, which ignores
torch.set_num_threads) are sized when the libraries load, so they are fixed here first. Then,
to give torch a fair runtime: glibc malloc hands large blocks (the [B,T,V] logits, activations)
back to the kernel on free and page-faults them in again on the next allocation, which on this
machine costs more than the arithmetic. Keep freed memory in the heap (what jemalloc/tcmalloc
setups achieve), and let idle OpenMP workers sleep rather than spin against OpenBLAS's own
threads. glibc reads these at start-up, so the process re-executes itself once with them set.
"""
import os
import sys

RUNTIME_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(1 << 32),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 34),
    "MALLOC_TOP_PAD_": str(1 << 30),
    "OMP_WAIT_POLICY": "PASSIVE",
}


def prepare_runtime(threads: int, tuned: bool = True) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if tuned and os.environ.get("R1TS_TORCH_PEER_EXEC") != "1":
        os.environ.update(RUNTIME_ENV)
        os.environ["R1TS_TORCH_PEER_EXEC"] = "1"
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable] + sys.argv)
