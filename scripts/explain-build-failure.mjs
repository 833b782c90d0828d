#!/usr/bin/env node
// npm install fallback: `node-gyp rebuild` failed; say why that usually happens and how to fix it.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import process from 'node:process';

const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch] ?? `${process.arch}-linux-gnu`;
const header = `/usr/include/${multiarch}/openblas-openmp/cblas.h`;
const lib = `/usr/lib/${multiarch}/openblas-openmp/libopenblas.so.0`;
const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

const problems = [];
if (!existsSync(header)) problems.push(`missing ${header} (package libopenblas-openmp-dev)`);
if (!existsSync(lib)) problems.push(`missing ${lib} (package libopenblas0-openmp)`);
for (const tool of ['g++', 'make', 'python3']) if (!onPath(tool)) problems.push(`'${tool}' is not on PATH (node-gyp needs g++, make and python3)`);

console.error(`
r1ts: building the native CPU backend (build/Release/r1ts_native.node) failed; see node-gyp's output above.
${problems.length ? `Found:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` : ''}
The addon needs (Debian/Ubuntu):
  - OpenBLAS, OpenMP build:   libopenblas-openmp-dev  (brings libopenblas0-openmp)
  - a C++ toolchain with OpenMP and node-gyp's tools: g++ make python3
  - Node's headers (node-gyp takes them from --nodedir, npm's 'nodedir' setting, or downloads them)
Fix, as root:
  apt-get update && apt-get install -y --no-install-recommends libopenblas-openmp-dev g++ make python3
then run 'npm install' again (or 'npx node-gyp rebuild').
Without the addon only the reference backend (RefBackend) is usable; CpuBackend will refuse to load.
`);
process.exit(1);
