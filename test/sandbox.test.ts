// The sandbox: correct programs pass, wrong ones fail, and escape attempts score 0 without
// disturbing this process. Tests of an OS-level layer (user id, network namespace) are skipped,
// with the reason, where that layer is not available (e.g. not running as root).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { LIMITS, configureSandbox, runInSandbox, runTests, sandboxCapabilities, type SandboxOptions } from '../src/rl/sandbox.js';

const py = (code: string, o: Partial<SandboxOptions> = {}) => runInSandbox({ language: 'python', code, timeoutMs: 3000, ...o });
const js = (code: string, o: Partial<SandboxOptions> = {}) => runInSandbox({ language: 'javascript', code, timeoutMs: 3000, ...o });
const caps = await sandboxCapabilities('python');
const jsCaps = await sandboxCapabilities('javascript');
const noUser = caps.dropUser && jsCaps.dropUser ? false : 'needs root (setpriv to a throwaway uid)';
const noNetns = caps.namespaces && jsCaps.namespaces ? false : 'needs root (unshare --net)';

/** A fresh path in the shared temp folder, outside any sandbox. */
const outside = (name: string) => path.join(os.tmpdir(), `r1ts-escape-${process.pid}-${Math.random().toString(36).slice(2)}-${name}`);

/**
 * Processes still running under the sandbox's throwaway uids (there should be none between
 * runs). Zombies are left out: they run nothing and wait for the machine's init to reap them.
 */
function sandboxProcesses(): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
      const state = /^State:\s+(.*)$/m.exec(status)![1];
      if (uid >= LIMITS.uidBase && uid < LIMITS.uidBase + LIMITS.uidSpan && !state.startsWith('Z')) {
        found.push(`${pid} (uid ${uid}, ${state}): ${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
      }
    } catch { /* gone */ }
  }
  return found;
}

test('capabilities are probed and reported', () => {
  assert.ok(caps.available && jsCaps.available);
  console.log('# python:', JSON.stringify(caps), 'javascript:', JSON.stringify(jsCaps));
});

test('correct programs pass; stdin, ESM and CommonJS', async () => {
  const a = await py('import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))', { stdin: '1 2 3\n' });
  assert.equal(a.ok, true);
  assert.equal(a.completed, true);
  assert.equal(a.stdout, '6\n');
  const b = await js("const fs = require('node:fs'); console.log(fs.readFileSync(0, 'utf8').trim().split(' ').map(Number).reduce((x, y) => x + y));", { stdin: '4 5' });
  assert.equal(b.ok, true);
  assert.equal(b.stdout, '9\n');
  const c = await js("import { strictEqual } from 'node:assert';\nstrictEqual(1 + 1, 2);\nconsole.log(await Promise.resolve('esm'));");
  assert.equal(c.ok, true);
  assert.equal(c.stdout, 'esm\n');
});

test('runTests: stdin/stdout tests and assertion tests; wrong answers fail', async () => {
  const io = await runTests({
    language: 'python', code: 'print(input().upper())', timeoutMs: 3000,
    tests: [{ stdin: 'ab\n', expectedStdout: 'AB' }, { stdin: 'c\n', expectedStdout: 'C\n\n' }, { stdin: 'd\n', expectedStdout: 'd' }],
  });
  assert.deepEqual(io.outcomes.map((o) => o.reason), [undefined, undefined, 'wrong-output']);
  assert.equal(io.passed, 2);
  const asserts = [{ assert: 'assert add(2, 3) == 5' }, { assert: 'assert add(0, 0) == 0' }];
  const good = await runTests({ language: 'python', code: 'def add(a, b):\n    return a + b', tests: asserts, timeoutMs: 3000 });
  assert.equal(good.fraction, 1);
  const bad = await runTests({ language: 'python', code: 'def add(a, b):\n    return a - b', tests: asserts, timeoutMs: 3000 });
  assert.deepEqual(bad.outcomes.map((o) => o.reason), ['error', undefined]);
  const crash = await runTests({ language: 'python', code: 'def add(a, b):\n    return a +', tests: asserts, timeoutMs: 3000 });
  assert.equal(crash.passed, 0);
});

test('exiting with code 0 before the appended assertions does not pass', async () => {
  const asserts = [{ assert: 'assert add(2, 3) == 5' }];
  const pyHack = await runTests({ language: 'python', code: 'import sys\ndef add(a, b):\n    return 0\nsys.exit(0)', tests: asserts, timeoutMs: 3000 });
  assert.equal(pyHack.outcomes[0].run.exitCode, 0);
  assert.equal(pyHack.outcomes[0].reason, 'incomplete');
  const pyHack2 = await runTests({ language: 'python', code: 'import os\ndef add(a, b):\n    return 0\nos._exit(0)', tests: asserts, timeoutMs: 3000 });
  assert.equal(pyHack2.passed, 0);
  const jsHack = await runTests({
    language: 'javascript', code: 'function add(a, b) { return 0; }\nprocess.exit(0);', timeoutMs: 3000,
    tests: [{ assert: "require('node:assert').strictEqual(add(2, 3), 5);" }],
  });
  assert.equal(jsHack.outcomes[0].reason, 'incomplete');
  // the nonce is not in the candidate's environment
  const env = await py("import os\nprint(sorted(k for k in os.environ if k.startswith('R1TS')))");
  assert.equal(env.stdout, '[]\n');
  const jsEnv = await js("console.log(JSON.stringify(Object.keys(process.env).filter((k) => k.startsWith('R1TS'))))");
  assert.equal(jsEnv.stdout, '[]\n');
});

test('infinite loop: killed at the wall-clock limit', async () => {
  const t0 = Date.now();
  const [a, b] = await Promise.all([py('while True: pass', { timeoutMs: 1000 }), js('for (;;) {}', { timeoutMs: 1000 })]);
  for (const r of [a, b]) {
    assert.equal(r.ok, false);
    assert.equal(r.timedOut, true);
    assert.equal(r.killedFor, 'time');
  }
  assert.ok(Date.now() - t0 < 6000);
});

test('fork bomb: refused by the guards', async () => {
  const a = await py('import os\nwhile True:\n    os.fork()');
  assert.equal(a.ok, false);
  assert.match(a.stderr, /sandbox: os\.fork denied/);
  const b = await py('import subprocess\nsubprocess.run(["/bin/sh", "-c", "echo escaped"])');
  assert.equal(b.ok, false);
  assert.doesNotMatch(b.stdout, /escaped/);
  const c = await js("const { spawn } = require('node:child_process'); for (;;) spawn(process.execPath, ['-e', '0']);");
  assert.equal(c.ok, false);
  assert.match(c.stderr, /ERR_ACCESS_DENIED/);
});

test('fork bomb: RLIMIT_NPROC holds without the guards', { skip: noUser }, async () => {
  const r = await py([
    'import os, time', 'n = 0', 'try:', '    while True:',
    '        if os.fork() == 0:', '            time.sleep(30)', '            os._exit(0)', '        n += 1',
    'except OSError as e:', '    print(n, e.errno)',
  ].join('\n'), { unguarded: true, timeoutMs: 5000 });
  const [n, errno] = r.stdout.trim().split(' ').map(Number);
  assert.equal(errno, 11);                 // EAGAIN
  assert.ok(n < LIMITS.maxProcesses, `forked ${n} times`);
  assert.equal(r.ok, true, 'the sleeping children do not hold the run open');
  assert.deepEqual(sandboxProcesses(), []);
});

test('memory bomb: the allocation fails at the limit', async () => {
  const [a, b] = await Promise.all([
    py('x = []\nwhile True:\n    x.append(bytearray(1 << 20))', { memoryMb: 64, timeoutMs: 8000 }),
    js('const x = []; for (;;) x.push(new Array(1e5).fill(1.5));', { memoryMb: 32, timeoutMs: 8000 }),
  ]);
  for (const r of [a, b]) {
    assert.equal(r.ok, false);
    assert.equal(r.killedFor, 'memory', r.stderr.slice(-500));
  }
  const c = await js('const b = Buffer.alloc(512 * 1024 * 1024, 1); console.log(b.length);', { memoryMb: 64 });
  assert.equal(c.ok, false);
  assert.doesNotMatch(c.stdout, /536870912/);
});

test('output flood: cut at maxOutputBytes', async () => {
  const r = await py("while True:\n    print('x' * 1000)", { maxOutputBytes: 16 * 1024 });
  assert.equal(r.killedFor, 'output');
  assert.equal(r.ok, false);
  assert.ok(r.stdout.length <= 16 * 1024);
});

test('reading files outside the run folder is denied', async () => {
  const a = await py("try:\n    print(open('/etc/passwd').read())\nexcept PermissionError as e:\n    print('denied', e)");
  assert.match(a.stdout, /^denied/);
  assert.doesNotMatch(a.stdout, /root:/);
  const b = await js("try { console.log(require('node:fs').readFileSync('/etc/passwd', 'utf8')); } catch (e) { console.log('denied', e.code); }");
  assert.equal(b.stdout, 'denied ERR_ACCESS_DENIED\n');
  const c = await py("print(open('/proc/self/environ', 'rb').read())");
  assert.equal(c.ok, false);
});

test('reading a root-only file is denied by the OS even without the guards', { skip: noUser }, async () => {
  const secret = outside('secret');
  fs.writeFileSync(secret, 'expected output: 42', { mode: 0o600 });
  try {
    const r = await py(`try:\n    print(open(${JSON.stringify(secret)}).read())\nexcept OSError as e:\n    print('denied', e.errno)`, { unguarded: true });
    assert.equal(r.stdout, 'denied 13\n');  // EACCES
  } finally {
    fs.rmSync(secret, { force: true });
  }
});

test('writing outside the run folder is denied', async () => {
  const p1 = outside('py.txt'), p2 = outside('js.txt');
  const a = await py(`open(${JSON.stringify(p1)}, 'w').write('pwned')`);
  assert.equal(a.ok, false);
  assert.match(a.stderr, /sandbox: writing denied/);
  const b = await js(`require('node:fs').writeFileSync(${JSON.stringify(p2)}, 'pwned');`);
  assert.equal(b.ok, false);
  assert.match(b.stderr, /ERR_ACCESS_DENIED/);
  assert.equal(fs.existsSync(p1), false);
  assert.equal(fs.existsSync(p2), false);
  // renames, symlinks and os.open flags go through the same check
  const c = await py(`import os\nopen('x', 'w').write('1')\nos.rename('x', ${JSON.stringify(p1)})`);
  assert.equal(c.ok, false);
  const d = await py(`import os\nos.symlink(${JSON.stringify(p1)}, 'link')\nopen('link', 'w').write('1')`);
  assert.equal(d.ok, false);
  const e = await py(`import os\nos.close(os.open(${JSON.stringify(p1)}, os.O_CREAT | os.O_WRONLY))`);
  assert.equal(e.ok, false);
  assert.equal(fs.existsSync(p1), false);
  // writing inside the run folder is fine
  const f = await py("open('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())");
  assert.equal(f.stdout, 'ok\n');
});

test('the run folder is removed afterwards, even when the program locks parts of it', async () => {
  const r = await py("import os\nos.makedirs('d/e')\nopen('d/e/f', 'w').write('x')\nos.chmod('d/e', 0)\nos.chmod('d', 0)\nprint(os.getcwd())");
  assert.equal(r.ok, true, r.stderr);
  assert.match(r.stdout, /r1ts-sbx-/);
  assert.equal(fs.existsSync(r.stdout.trim()), false);
});

test('writing into a root-owned folder is denied by the OS even without the guards', { skip: noUser }, async () => {
  const dir = outside('dir');
  fs.mkdirSync(dir, { mode: 0o755 });
  try {
    const r = await py(`open(${JSON.stringify(path.join(dir, 'f'))}, 'w').write('pwned')`, { unguarded: true });
    assert.equal(r.ok, false);
    assert.match(r.stderr, /PermissionError/);
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A TCP server on 127.0.0.1 of this process, counting the connections it gets. */
async function withServer(fn: (port: number) => Promise<void>): Promise<number> {
  let connections = 0;
  const server = net.createServer((s) => { connections++; s.end('hello'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn((server.address() as net.AddressInfo).port);
  } finally {
    server.close();
  }
  return connections;
}

const connectPy = (port: number) => `import socket\ns = socket.create_connection(('127.0.0.1', ${port}), timeout=1)\nprint('connected', s.recv(5))`;

test('network: Python sockets are refused by the guard', async () => {
  const connections = await withServer(async (port) => {
    const a = await py(connectPy(port));
    assert.equal(a.ok, false);
    assert.match(a.stderr, /sandbox: socket\.\S+ denied/);
    assert.doesNotMatch(a.stdout, /connected/);
  });
  assert.equal(connections, 0);
});

test('network: connecting to 127.0.0.1 fails in the network namespace', { skip: noNetns }, async () => {
  const connections = await withServer(async (port) => {
    const b = await py(connectPy(port), { unguarded: true });    // the namespace alone
    assert.match(b.stderr, /Network is unreachable|Connection refused/);
    const c = await js(`const s = require('node:net').connect(${port}, '127.0.0.1');\ns.on('connect', () => console.log('connected'));\ns.on('error', (e) => { console.log(e.code); process.exitCode = 1; });`);
    assert.equal(c.ok, false);
    assert.match(c.stdout, /ENETUNREACH|ECONNREFUSED/);
    for (const r of [b, c]) assert.doesNotMatch(r.stdout, /connected/);
  });
  assert.equal(connections, 0);
});

test('four concurrent sandboxes are isolated from each other', async () => {
  const program = (id: number) => [
    'import os, time',
    `open('mine.txt', 'w').write('${id}')`,
    'time.sleep(0.3)',
    "print(open('mine.txt').read(), sorted(os.listdir('.')))",
  ].join('\n');
  const before = LIMITS.maxConcurrent;
  configureSandbox({ maxConcurrent: 4 });
  const t0 = Date.now();
  const runs = await Promise.all([
    py(program(1)), py(program(2)), py(program(3)),
    py('while True: pass', { timeoutMs: 1500 }),
  ]).finally(() => configureSandbox({ maxConcurrent: before }));
  for (const [i, r] of runs.slice(0, 3).entries()) {
    assert.equal(r.ok, true, r.stderr);
    assert.equal(r.stdout, `${i + 1} ['_r1ts_prelude.py', 'main.py', 'mine.txt']\n`);
    assert.ok(r.durationMs < 1500, 'not held up by the looping neighbour');
  }
  assert.equal(runs[3].killedFor, 'time');
  assert.ok(Date.now() - t0 < 8000);
  // a run cannot look into another's folder: each is 0700 and owned by its own uid
  const peek = await py("import os\nprint(os.listdir('..'))");
  assert.equal(peek.ok, false);
});

test('no sandbox process or escaped file is left behind', { skip: noUser }, () => {
  assert.deepEqual(sandboxProcesses(), []);
  assert.deepEqual(fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith('r1ts-escape-')), []);
});
