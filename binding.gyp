{
  # The native CPU backend: build/Release/r1ts_native.node
  #
  # OpenBLAS variant: Debian's OpenMP build (libopenblas0-openmp), linked explicitly by path with
  # an rpath to its directory, so the addon uses it whatever the libblas/libopenblas alternatives
  # point to. scripts/system-deps.mjs installs the package and tells the paths (--print).
  #
  # Why the OpenMP build and not Debian's default pthread build: our kernels run in OpenMP parallel
  # regions, and some of them call sgemm from inside those regions (batched gemm over many small
  # matrices, the attention blocks on CPUs without AVX-512). The OpenMP build sees
  # omp_in_parallel() and runs such a call single-threaded on the calling thread; calls made
  # outside our regions use libgomp's pool, the same threads as our loops, so there is one pool of
  # #CPU threads and no oversubscription. The pthread build keeps its own pool and fans every call
  # out to it, from each of our threads at once. Measured on the 2-core dev machine (same objects
  # linked against each build):
  #   attention fwd+bwd B=8 H=8 T=S=256 D=32 causal (sgemm path): OpenMP build 12 ms, pthread 629 ms
  #   a mixed step (gemm 2048x256x256, row-broadcast add, rmsNorm, silu, batched 64 x 64x64x32 gemm):
  #     OpenMP build 2.4 ms, pthread build 7.1-8.2 ms
  #   a single large sgemm: the same (~170 GFLOP/s at 2048x8192x256 on 2 threads).
  #
  # Flags: -O3, OpenMP, x86-64-v3 baseline (AVX2+FMA: runs on any x86 CPU of the last decade);
  # the hot loops carry AVX-512 clones chosen at load time (R1_CLONES in native/fmath.h: 1.5-2x on
  # the exp-heavy kernels here) and the attention kernels dispatch to AVX-512 code at run time.
  # -fno-math-errno / -fno-trapping-math let GCC vectorise loops with sqrt and with branch-free
  # selects (our exp); they do not change IEEE results (NaN/Inf handling is kept, unlike -ffast-math).
  "targets": [
    {
      "target_name": "r1ts_native",
      "sources": [
        "native/addon.cc",
        "native/memory.cc",
        "native/gemm.cc",
        "native/elementwise.cc",
        "native/rows.cc",
        "native/index.cc",
        "native/attention.cc",
        "native/moe.cc",
        "native/decode.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node scripts/system-deps.mjs --print include-dir)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-O2", "-O0", "-fno-exceptions"],
      "cflags_cc!": ["-O2", "-O0", "-fno-exceptions", "-std=gnu++17", "-std=gnu++14"],
      "cflags": ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unused-function", "-Wno-psabi"],
      "cflags_cc": ["-O3", "-std=c++17", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unused-function", "-Wno-psabi"],
      "conditions": [
        ["target_arch=='x64'", {
          # baseline x86-64-v3 (AVX2 + FMA); hot loops carry AVX-512 clones picked at load time
          "cflags": ["-march=x86-64-v3", "-mtune=generic"],
          "cflags_cc": ["-march=x86-64-v3", "-mtune=generic"]
        }]
      ],
      "libraries": [
        "<!(node scripts/system-deps.mjs --print lib)",
        "-lgomp",
        "-Wl,-rpath,<!(node scripts/system-deps.mjs --print lib-dir)"
      ],
      "ldflags": ["-fopenmp"]
    }
  ]
}
