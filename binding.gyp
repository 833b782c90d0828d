{
  # The native CPU backend: build/Release/r1ts_native.node
  #
  # OpenBLAS variant: Debian's OpenMP build (libopenblas0-openmp), linked explicitly by path with
  # an rpath to its directory, so the addon uses it whatever the libblas/libopenblas alternatives
  # point to. Why OpenMP and not the default pthread build: our own kernels run in OpenMP
  # parallel regions and several of them (attention, batched gemm) call sgemm from inside those
  # regions. The OpenMP build then runs each call single-threaded on the calling thread (it checks
  # omp_in_parallel()) and, for calls made outside our regions, shares libgomp's thread pool with
  # our loops instead of keeping a second pool of spinning threads. With the pthread build, sgemm
  # called from our parallel region starts its own threads from every caller (4 runnable threads
  # on 2 cores), and its idle-spinning workers compete with ours between calls; measured figures
  # are in the report of the CPU backend work (attention fwd+bwd ran slower with the pthread build).
  # scripts/system-deps.mjs installs the package and tells the paths (--print).
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
        "native/attention.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node scripts/system-deps.mjs --print include-dir)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-O2", "-O0", "-fno-exceptions"],
      "cflags_cc!": ["-O2", "-O0", "-fno-exceptions", "-std=gnu++17", "-std=gnu++14"],
      "cflags": ["-O3", "-fopenmp", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
      "cflags_cc": ["-O3", "-std=c++17", "-fopenmp", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
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
