#!/usr/bin/env node
// npm preinstall: make sure the system packages the native addon (binding.gyp, native/) needs
// are present, installing them with apt-get when running as root.
//
// What the addon needs:
//   - OpenBLAS, OpenMP variant (Debian: libopenblas0-openmp + headers from libopenblas-openmp-dev).
//     The OpenMP build shares libgomp's thread pool with our own OpenMP kernels, so a GEMM issued
//     from inside one of our parallel regions runs single-threaded instead of starting a second
//     set of threads (see binding.gyp for the measurements behind this choice).
//   - g++, make and python3 for node-gyp.
//
// Also used by binding.gyp to locate the library:  node scripts/system-deps.mjs --print <key>
//   keys: include-dir, lib-dir, lib, march-flags
//
// Env: R1TS_SKIP_SYSTEM_DEPS=1 skips the check (e.g. when OpenBLAS comes from elsewhere).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import process from 'node:process';

const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu' }[process.arch]
  ?? `${process.arch}-linux-gnu`;
const includeDir = `/usr/include/${multiarch}/openblas-openmp`;
const libDir = `/usr/lib/${multiarch}/openblas-openmp`;
const lib = `${libDir}/libopenblas.so.0`;
const packages = ['libopenblas-openmp-dev'];

function print(key) {
  switch (key) {
    case 'include-dir': return includeDir;
    case 'lib-dir': return libDir;
    case 'lib': return lib;
    // The baseline: x86-64-v3 (AVX2 + FMA) runs on any x86 CPU of the last decade.
    case 'march-flags': return process.arch === 'x64' ? '-march=x86-64-v3' : '';
    default: throw new Error(`system-deps: unknown key '${key}'`);
  }
}

function onPath(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  return r.status === 0;
}

function missing() {
  const pkgs = [];
  if (!existsSync(`${includeDir}/cblas.h`) || !existsSync(lib)) pkgs.push(...packages);
  if (!onPath('g++')) pkgs.push('g++');
  if (!onPath('make')) pkgs.push('make');
  if (!onPath('python3')) pkgs.push('python3');
  return pkgs;
}

function run(cmd, args) {
  console.log(`system-deps: $ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`'${cmd} ${args.join(' ')}' exited with status ${r.status}`);
}

function main() {
  const i = process.argv.indexOf('--print');
  if (i >= 0) {
    process.stdout.write(print(process.argv[i + 1]));
    return 0;
  }
  if (process.env.R1TS_SKIP_SYSTEM_DEPS === '1') return 0;
  if (process.platform !== 'linux') {
    console.warn(`system-deps: ${process.platform} is not automated; the native addon needs OpenBLAS (OpenMP build) and a C++ toolchain with OpenMP.`);
    return 0;
  }
  const need = missing();
  if (need.length === 0) return 0;

  const aptCmd = `apt-get update && apt-get install -y --no-install-recommends ${need.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!onPath('apt-get')) {
    console.error(`system-deps: missing ${need.join(', ')} and apt-get is not available.\n` +
      'Install OpenBLAS built with OpenMP (headers + library) and g++/make/python3 with your package manager,\n' +
      `then run npm install again (or set R1TS_SKIP_SYSTEM_DEPS=1 and adapt binding.gyp). Expected ${includeDir}/cblas.h and ${lib}.`);
    return 1;
  }
  if (!isRoot) {
    console.error(`system-deps: the native CPU backend needs these system packages: ${need.join(' ')}\n` +
      `Run as root:\n\n  sudo sh -c '${aptCmd}'\n\nthen run npm install again.`);
    return 1;
  }
  console.log(`system-deps: installing ${need.join(' ')}`);
  try {
    run('apt-get', ['update']);
    run('apt-get', ['install', '-y', '--no-install-recommends', ...need]);
  } catch (e) {
    console.error(`system-deps: installing system packages failed: ${e.message}\nRun by hand: ${aptCmd}`);
    return 1;
  }
  const still = missing();
  if (still.length > 0) {
    console.error(`system-deps: still missing after apt-get: ${still.join(' ')}`);
    return 1;
  }
  return 0;
}

process.exitCode = main();
