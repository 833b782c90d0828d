// Running untrusted code (the code reward's candidate programs) in a separate, limited process.
//
// Never in-process: every run is a fresh child process (child_process.spawn) in a fresh folder
// under os.tmpdir(), launched through a chain of small wrappers, outermost first:
//
//   unshare --net --pid --fork --kill-child     no network; its own PID namespace
//     prlimit --as --cpu --nproc --fsize ...    rlimits (kernel-enforced, inherited by children)
//       setpriv --reuid=U --regid=U ...         a throwaway user id U, no groups, no new privs
//         python3 -I -S -B _r1ts_prelude.py     | node --permission-model-flags _r1ts_prelude.cjs
//
// Each layer is used when it works on this machine (probed once per language, see
// launchPlan); sandboxCapabilities() says which ones are in force. All limits are in LIMITS.
//
// What each limit enforces, and how (the one place where they are documented; the numbers are
// the defaults in LIMITS):
//
// | limit            | enforced by                                                             |
// | ---------------- | ----------------------------------------------------------------------- |
// | wall-clock time  | a timer in this process (timeoutMs, 5 s); on expiry SIGKILL to the      |
// | (killedFor       | whole process group (the run is spawned detached, so the group is its   |
// |  'time')         | own); with the PID namespace, the death of its PID 1 also kills every   |
// |                  | process in it, even ones that left the group with setsid().             |
// |                  | Backstop: RLIMIT_CPU = ceil(timeout) + 1 s of CPU per process.          |
// | memory           | Python: RLIMIT_AS (address space) = memoryMb (256 MiB), interpreter     |
// | (killedFor       | included. JS: V8's heap cap --max-old-space-size = memoryMb, plus       |
// |  'memory')       | RLIMIT_AS = memoryMb + 1 GiB (V8 reserves ~1 GiB of address space at    |
// |                  | start-up) for Buffers and other off-heap memory. An allocation past the |
// |                  | limit fails (MemoryError / "heap out of memory"), recognised on stderr. |
// | processes        | RLIMIT_NPROC = 64 tasks (processes + threads) of the run's user id: it  |
// |                  | binds only because each run gets its own random uid (root is exempt).   |
// |                  | Python's hook refuses fork, exec, spawn, subprocess (its fork_exec      |
// |                  | primitive is replaced); Node's permission model refuses child_process   |
// |                  | and worker threads.                                                     |
// | network          | a new, empty network namespace (not even loopback is up): every        |
// |                  | connect fails, 127.0.0.1 included. Python's hook also refuses sockets   |
// |                  | (AF_UNIX socketpairs, e.g. asyncio's self-pipe, are allowed; connect /  |
// |                  | bind / sendto are not). Node 20's permission model does not cover the   |
// |                  | network. Without unshare: only the proxy variables are gone from the    |
// |                  | environment — the network is reachable.                                 |
// | file writes      | Python: the audit hook refuses opening for writing (mode or O_* flags), |
// |                  | rename, remove, mkdir, chmod, link, symlink, … outside the run folder   |
// |                  | (paths resolved through symlinks). JS: permission model, --allow-fs-    |
// |                  | write=<run folder>. OS: the throwaway uid owns only the run folder (mode |
// |                  | 0700), so root's files and other runs' folders are out of reach;        |
// |                  | RLIMIT_FSIZE caps each file at 16 MiB.                                  |
// | file reads       | Python: the hook refuses reading / listing outside the run folder and   |
// |                  | the standard library (/etc/passwd, /proc/self/environ, …). JS:         |
// |                  | --allow-fs-read=<run folder> (also refuses the inspector, native addons, |
// |                  | process.binding). OS: the uid cannot read root-only files. Expected      |
// |                  | outputs never enter the sandbox: stdout is compared out here.            |
// | output           | stdout and stderr are each kept up to maxOutputBytes (64 KiB); a run    |
// | (killedFor       | that writes more is killed.                                             |
// |  'output')       |                                                                         |
// | open files, core | RLIMIT_NOFILE = 128; RLIMIT_CORE = 0.                                   |
// | environment      | a minimal one: PATH, HOME = TMPDIR = run folder, LANG=C.UTF-8 — no      |
// |                  | proxy variables, nothing of this process's; Python runs with -I (no     |
// |                  | PYTHON* variables, no user site, script folder not on sys.path) and -S  |
// |                  | (no site-packages: the standard library only).                          |
// | concurrency      | at most maxConcurrent runs at once (the number of CPUs, at least 2);    |
// |                  | further runs queue (their time limit starts when they start).           |
//
// What is not enforced, and why:
// - The audit hook and the permission model run inside the untrusted interpreter: they are
//   defence in depth, not a boundary (a determined program can reach interpreter internals —
//   e.g. re-create a builtin module, race a symlink between check and open). The OS layer is
//   the boundary.
// - The OS layer needs root (unshare, setpriv). Without root only the rlimits, the
//   process-group kill and the interpreter guards remain: no network isolation (proxy
//   variables dropped, nothing more), same uid as this process, and RLIMIT_NPROC left unset
//   (it would count every process of this user). sandboxCapabilities() says which case holds.
// - With the guards bypassed, the throwaway uid can still create files in world-writable
//   folders (/tmp, /var/tmp, /run/lock) and read world-readable files (/etc/passwd); a mount
//   namespace with private tmpfs mounts would close this, at the cost of more moving parts.
// - Disk use inside the run folder is bounded only by RLIMIT_FSIZE per file times what can be
//   written within the time limit (no per-run quota); the folder is deleted after the run.
// - Inside the PID namespace the program is PID 1: signals it sends itself with a default
//   action are ignored, and its killed children may stay zombies for a moment until the
//   machine's init reaps them.
//
// Tests (runTests) come in two kinds:
// - { stdin?, expectedStdout }: the program reads stdin and prints; stdout is compared here,
//   outside the sandbox (trailing whitespace of each line and trailing blank lines ignored),
//   and the exit code must be 0.
// - { assert }: assertion code appended to the program (Python: `assert f(2) == 4`; JS:
//   `require('node:assert').strictEqual(f(2), 4)`, synchronous, or top-level await in an
//   ES-module program); passes when the run completes (the prelude's nonce line is printed
//   only if the module ran to its end, so an early exit(0) does not pass) with exit code 0.
//   Assertions run in the candidate's interpreter: a candidate can still return objects that
//   lie about equality (__eq__ always True) — write `assert type(r) is int and r == 4` or
//   compare repr(), or prefer stdin/stdout tests, which are graded entirely out here.
// Each test is a separate run in a fresh folder.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JS_PRELUDE, PRELUDE_FILE, PYTHON_PRELUDE, mainFileName } from './sandbox-preludes.js';

export type SandboxLanguage = 'python' | 'javascript';

/** Defaults for every limit; runInSandbox options override per run, configureSandbox globally. */
export const LIMITS = {
  /** Wall-clock limit per run (ms). */
  timeoutMs: 5000,
  /** Memory (MiB): RLIMIT_AS for Python; V8 old-space cap for JS (see JS_ADDRESS_SPACE_EXTRA_MB). */
  memoryMb: 256,
  /** Extra address space for Node on top of memoryMb (V8 reserves ~1 GiB at start-up). */
  jsAddressSpaceExtraMb: 1024,
  /** Bytes kept of each of stdout and stderr; more kills the run (killedFor 'output'). */
  maxOutputBytes: 64 * 1024,
  /** RLIMIT_NPROC: tasks (processes and threads) of the run's uid. */
  maxProcesses: 64,
  /** RLIMIT_FSIZE: largest file the run may write (bytes). */
  maxFileBytes: 16 * 1024 * 1024,
  /** RLIMIT_NOFILE. */
  maxOpenFiles: 128,
  /** Runs at once in this process (further runs queue). */
  maxConcurrent: Math.max(2, os.availableParallelism()),
  /** Throwaway uids are drawn from [uidBase, uidBase + uidSpan). */
  uidBase: 200_000,
  uidSpan: 800_000,
};

/** Override defaults for all later runs (e.g. configureSandbox({ maxConcurrent: 4 })). */
export function configureSandbox(overrides: Partial<typeof LIMITS> & { pythonPath?: string }): void {
  const { pythonPath, ...rest } = overrides;
  Object.assign(LIMITS, rest);
  if (pythonPath !== undefined) { PYTHON.path = pythonPath; plans.clear(); }
}

export interface SandboxOptions {
  language: SandboxLanguage;
  /** The whole program. */
  code: string;
  /** Written to the program's stdin, which is then closed (empty when absent). */
  stdin?: string;
  timeoutMs?: number;
  memoryMb?: number;
  maxOutputBytes?: number;
  /**
   * Testing only: skip the interpreter-level guards (Python's audit hook, Node's permission
   * model) to check what the OS layer alone enforces.
   */
  unguarded?: boolean;
}

export interface SandboxResult {
  /** Exited with code 0, not killed. */
  ok: boolean;
  /** null when killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Up to maxOutputBytes each (the prelude's completion line removed). */
  stdout: string;
  stderr: string;
  timedOut: boolean;
  killedFor?: 'time' | 'memory' | 'output';
  /** The program ran to its end (no exception, no exit() before the end of the module). */
  completed: boolean;
  durationMs: number;
}

// ---------------------------------------------------------------------------------------
// Launch plan: which wrappers work here (probed once per language)

const PYTHON = { path: fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3' };

/** Which OS-level layers are in force for a language. */
export interface SandboxCapabilities {
  /** unshare --net --pid: no network, own PID namespace. */
  namespaces: boolean;
  /** prlimit: RLIMIT_AS / CPU / FSIZE / NOFILE / CORE (and NPROC when dropUser). */
  rlimits: boolean;
  /** setpriv to a throwaway uid: RLIMIT_NPROC binds, root's files out of reach. */
  dropUser: boolean;
  /** The interpreter could be started at all. */
  available: boolean;
}

interface Plan { caps: SandboxCapabilities }
const plans = new Map<SandboxLanguage, Promise<Plan>>();

/** Probe (once) and report which layers are enforced for this language on this machine. */
export async function sandboxCapabilities(language: SandboxLanguage): Promise<SandboxCapabilities> {
  return (await launchPlan(language)).caps;
}

function launchPlan(language: SandboxLanguage): Promise<Plan> {
  let p = plans.get(language);
  if (!p) { p = probe(language); plans.set(language, p); }
  return p;
}

function commandWorks(argv: string[]): boolean {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', timeout: 10_000, env: { PATH: SAFE_PATH } });
  return r.status === 0;
}

async function probe(language: SandboxLanguage): Promise<Plan> {
  const root = process.getuid?.() === 0;
  const interp = language === 'python' ? [PYTHON.path, '-I', '-S', '-c', 'pass'] : [process.execPath, '-e', '0'];
  // Try the strongest combination first, then drop layers until the interpreter starts.
  const candidates: SandboxCapabilities[] = [];
  for (const namespaces of root ? [true, false] : [false]) {
    for (const dropUser of root ? [true, false] : [false]) {
      for (const rlimits of [true, false]) candidates.push({ namespaces, rlimits, dropUser, available: true });
    }
  }
  for (const caps of candidates) {
    const limits: ResolvedLimits = { memoryMb: 512, timeoutMs: 10_000, uid: pickUid() };
    if (commandWorks(wrap(caps, language, limits, interp))) return { caps };
  }
  return { caps: { namespaces: false, rlimits: false, dropUser: false, available: false } };
}

const SAFE_PATH = '/usr/local/bin:/usr/bin:/bin';

interface ResolvedLimits { memoryMb: number; timeoutMs: number; uid: number }

function pickUid(): number { return LIMITS.uidBase + randomInt(LIMITS.uidSpan); }

/** The wrapper chain around an interpreter command line. */
function wrap(caps: SandboxCapabilities, language: SandboxLanguage, l: ResolvedLimits, argv: string[]): string[] {
  const out: string[] = [];
  if (caps.namespaces) out.push('unshare', '--net', '--pid', '--fork', '--kill-child');
  if (caps.rlimits) {
    const mb = language === 'python' ? l.memoryMb : l.memoryMb + LIMITS.jsAddressSpaceExtraMb;
    out.push('prlimit',
      `--as=${mb * 1024 * 1024}`,
      `--cpu=${Math.ceil(l.timeoutMs / 1000) + 1}`,
      `--fsize=${LIMITS.maxFileBytes}`,
      `--nofile=${LIMITS.maxOpenFiles}`,
      '--core=0');
    if (caps.dropUser) out.push(`--nproc=${LIMITS.maxProcesses}`);
  }
  if (caps.dropUser) {
    out.push('setpriv', `--reuid=${l.uid}`, `--regid=${l.uid}`, '--clear-groups', '--no-new-privs',
      '--inh-caps=-all', '--bounding-set=-all');
  }
  return [...out, ...argv];
}

/** Node's permission-model flag: --experimental-permission until 22.13, --permission after. */
function permissionFlag(): string {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 13) ? '--permission' : '--experimental-permission';
}

function interpreterArgv(language: SandboxLanguage, dir: string, memoryMb: number, unguarded: boolean): string[] {
  const prelude = path.join(dir, PRELUDE_FILE[language]);
  if (language === 'python') return [PYTHON.path, '-I', '-S', '-B', '-X', 'utf8', prelude];
  const guard = unguarded ? [] : [permissionFlag(), `--allow-fs-read=${dir}`, `--allow-fs-write=${dir}`];
  return [process.execPath, ...guard, `--max-old-space-size=${memoryMb}`, '--v8-pool-size=2', '--no-warnings', prelude];
}

// ---------------------------------------------------------------------------------------
// Concurrency: at most LIMITS.maxConcurrent runs at once

let running = 0;
const waiting: (() => void)[] = [];

async function acquire(): Promise<void> {
  if (running < LIMITS.maxConcurrent) { running++; return; }
  await new Promise<void>((resolve) => waiting.push(resolve));
}

function release(): void {
  const next = waiting.shift();
  if (next) next(); else running--;
}

// ---------------------------------------------------------------------------------------
// One run

const MEMORY_ERROR = /MemoryError|JavaScript heap out of memory|Reached heap limit|Array buffer allocation failed|ERR_MEMORY_ALLOCATION_FAILED|std::bad_alloc|Cannot allocate memory/;

/** Run a program in a fresh sandbox; never throws for anything the program does. */
export async function runInSandbox(opts: SandboxOptions): Promise<SandboxResult> {
  const plan = await launchPlan(opts.language);
  if (!plan.caps.available) {
    const interp = opts.language === 'python' ? PYTHON.path : process.execPath;
    throw new Error(`sandbox: cannot start ${opts.language} (${interp}) on this machine`);
  }
  await acquire();
  try {
    return await runOnce(opts, plan.caps);
  } finally {
    release();
  }
}

async function runOnce(opts: SandboxOptions, caps: SandboxCapabilities): Promise<SandboxResult> {
  const timeoutMs = opts.timeoutMs ?? LIMITS.timeoutMs;
  const memoryMb = opts.memoryMb ?? LIMITS.memoryMb;
  const maxOut = opts.maxOutputBytes ?? LIMITS.maxOutputBytes;
  const uid = pickUid();
  const nonce = `r1ts-done-${randomBytes(16).toString('hex')}`;

  // The run folder: private to the run's uid (0700), holding the prelude and the program.
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'r1ts-sbx-')));
  const mainName = mainFileName(opts.language, opts.code);
  fs.writeFileSync(path.join(dir, PRELUDE_FILE[opts.language]), opts.language === 'python' ? PYTHON_PRELUDE : JS_PRELUDE);
  fs.writeFileSync(path.join(dir, mainName), opts.code);
  if (caps.dropUser) {
    for (const f of fs.readdirSync(dir)) fs.chownSync(path.join(dir, f), uid, uid);
    fs.chownSync(dir, uid, uid);
  }
  fs.chmodSync(dir, 0o700);

  const argv = wrap(caps, opts.language, { memoryMb, timeoutMs, uid },
    interpreterArgv(opts.language, dir, memoryMb, opts.unguarded ?? false));
  const env: Record<string, string> = {
    PATH: SAFE_PATH, HOME: dir, TMPDIR: dir, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8',
    UV_THREADPOOL_SIZE: '2', R1TS_NONCE: nonce, R1TS_MAIN: mainName, R1TS_GUARD: opts.unguarded ? '0' : '1',
  };

  const started = Date.now();
  const child = spawn(argv[0], argv.slice(1), { cwd: dir, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  let killedFor: SandboxResult['killedFor'];
  const killGroup = () => {
    try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
  };
  const kill = (why: 'time' | 'output') => { killedFor ??= why; killGroup(); };

  const collect = (stream: NodeJS.ReadableStream) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (b: Buffer) => {
      if (size < maxOut) chunks.push(b.subarray(0, maxOut - size));
      size += b.length;
      if (size > maxOut) kill('output');
    });
    return () => Buffer.concat(chunks).toString('utf8');
  };
  const stdout = collect(child.stdout!);
  const stderr = collect(child.stderr!);
  child.stdin!.on('error', () => { /* the program exited without reading its input */ });
  child.stdin!.end(opts.stdin ?? '');

  const timer = setTimeout(() => kill('time'), timeoutMs);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    child.on('error', () => resolve({ code: null, signal: null }));
    child.on('exit', (c, s) => {
      exit = { code: c, signal: s };
      killGroup();                                     // stragglers holding the pipes open
      setTimeout(() => resolve(exit!), 2000).unref();  // … in case some escaped the group
    });
    child.on('close', (c, s) => resolve(exit ?? { code: c, signal: s }));
  });
  clearTimeout(timer);
  const durationMs = Date.now() - started;
  child.stdout!.destroy();
  child.stderr!.destroy();
  removeRunFolder(dir);

  let out = stdout();
  const err = stderr();
  const at = out.indexOf(nonce);
  const completed = at >= 0;
  if (completed) {
    const start = at > 0 && out[at - 1] === '\n' ? at - 1 : at;
    const end = at + nonce.length + (out[at + nonce.length] === '\n' ? 1 : 0);
    out = out.slice(0, start) + out.slice(end);
  }
  if (!killedFor && signal === 'SIGXCPU') killedFor = 'time';
  if (!killedFor && code !== 0 && MEMORY_ERROR.test(err)) killedFor = 'memory';
  return {
    ok: code === 0 && !killedFor,
    exitCode: code,
    signal,
    stdout: out,
    stderr: err,
    timedOut: killedFor === 'time',
    killedFor,
    completed,
    durationMs,
  };
}

/** Remove a run folder, even if the program took the permissions off parts of it. */
function removeRunFolder(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    const unlock = (d: string) => {
      try { fs.chmodSync(d, 0o700); } catch { /* not ours */ }
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) unlock(path.join(d, e.name));
    };
    try { unlock(dir); fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
}

// ---------------------------------------------------------------------------------------
// Tests

/** A stdin/stdout test (graded here) or assertion code appended to the program. */
export type SandboxTest =
  | { stdin?: string; expectedStdout: string }
  | { assert: string };

export interface TestOutcome {
  passed: boolean;
  /** Why it failed: 'wrong-output' | 'error' (non-zero exit or exception) | 'incomplete' | killedFor. */
  reason?: 'wrong-output' | 'error' | 'incomplete' | 'time' | 'memory' | 'output';
  run: SandboxResult;
}

export interface TestReport {
  passed: number;
  total: number;
  /** passed / total (0 when there are no tests). */
  fraction: number;
  outcomes: TestOutcome[];
}

export interface RunTestsOptions extends Omit<SandboxOptions, 'stdin'> {
  tests: SandboxTest[];
  /** Stop at the first failure (the remaining tests count as failed and are not run). */
  stopOnFailure?: boolean;
  /** Output comparison for stdin/stdout tests; default: sameOutput. */
  compare?: (actual: string, expected: string) => boolean;
}

/** Outputs equal up to line endings, trailing whitespace on each line and trailing blank lines. */
export function sameOutput(actual: string, expected: string): boolean {
  const norm = (s: string) => s.replace(/\r\n?/g, '\n').split('\n').map((l) => l.trimEnd()).join('\n').replace(/\n+$/, '');
  return norm(actual) === norm(expected);
}

/** Run each test in its own sandbox (concurrently, up to LIMITS.maxConcurrent) and tally. */
export async function runTests(opts: RunTestsOptions): Promise<TestReport> {
  const { tests, stopOnFailure = false, compare = sameOutput, ...base } = opts;
  const runOne = async (t: SandboxTest): Promise<TestOutcome> => {
    if ('assert' in t) {
      const run = await runInSandbox({ ...base, code: `${base.code}\n\n${t.assert}\n` });
      const reason = run.killedFor ?? (run.exitCode !== 0 ? 'error' : !run.completed ? 'incomplete' : undefined);
      return { passed: reason === undefined, reason, run };
    }
    const run = await runInSandbox({ ...base, stdin: t.stdin });
    const reason = run.killedFor ?? (run.exitCode !== 0 ? 'error' : !compare(run.stdout, t.expectedStdout) ? 'wrong-output' : undefined);
    return { passed: reason === undefined, reason, run };
  };
  let outcomes: TestOutcome[];
  if (stopOnFailure) {
    outcomes = [];
    for (const t of tests) {
      const o = await runOne(t);
      outcomes.push(o);
      if (!o.passed) break;
    }
  } else {
    outcomes = await Promise.all(tests.map(runOne));
  }
  const passed = outcomes.filter((o) => o.passed).length;
  return { passed, total: tests.length, fraction: tests.length ? passed / tests.length : 0, outcomes };
}
