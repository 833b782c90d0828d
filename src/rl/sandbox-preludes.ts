// The interpreter-level guards of the sandbox (src/rl/sandbox.ts): a small program that runs
// *before* the candidate program, in the same interpreter, for each language.
//
// Both preludes do the same three things:
//   1. take the completion nonce out of the environment (R1TS_NONCE) and delete it there, so
//      the candidate cannot read it from os.environ / process.env;
//   2. install the guard: Python — an audit hook (PEP 578) that refuses file access outside
//      the allowed roots, writes outside the run folder, sockets, subprocesses, fork/exec,
//      ctypes and hook tampering; JavaScript — nothing to do here, the guard is Node's
//      permission model, switched on by the command line (see sandbox.ts);
//   3. run the candidate program (the file named by R1TS_MAIN in the run folder) and, only if
//      it ran to its end (no exception, no exit() on the way), write the nonce on its own line
//      to stdout. The sandbox strips that line and reports `completed`; assertion-style tests
//      pass only when it is present, so `sys.exit(0)` / `process.exit(0)` before the appended
//      assertions does not count as passing.
//
// These guards are defence in depth, not the security boundary: an audit hook can be
// sidestepped by a determined program (frame introspection could find the nonce, a race can
// swap a symlink between the check and the open). The OS layer (separate user, rlimits,
// network namespace, process-group kill; see sandbox.ts) is what holds when they fail.

/** File name of the prelude in the run folder, per language. */
export const PRELUDE_FILE = { python: '_r1ts_prelude.py', javascript: '_r1ts_prelude.cjs' } as const;

/** File name of the candidate program in the run folder, per language and module kind. */
export function mainFileName(language: 'python' | 'javascript', code: string): string {
  if (language === 'python') return 'main.py';
  // ES module syntax (static import / export) needs .mjs; everything else runs as CommonJS,
  // which is what `require(...)`-style programs expect.
  return /^\s*(import\s[^(]|import\s*["'{*]|export\s)/m.test(code) ? 'main.mjs' : 'main.cjs';
}

export const PYTHON_PRELUDE = String.raw`# r1ts sandbox prelude: see src/rl/sandbox-preludes.ts. Runs with python3 -I -S -B.
import sys, os, builtins

def _r1ts_run():
    nonce = os.environ.pop('R1TS_NONCE', '').encode()
    main_name = os.environ.pop('R1TS_MAIN', 'main.py')
    guarded = os.environ.pop('R1TS_GUARD', '1') == '1'   # '0' only in the sandbox's own tests
    realpath, fspath, fsdecode, sep = os.path.realpath, os.fspath, os.fsdecode, os.sep
    write_roots = (realpath(os.getcwd()),)
    read_roots = write_roots + tuple(sorted({realpath(p) for p in sys.path if p})) + (
        '/dev/null', '/dev/zero', '/dev/urandom', '/dev/random')

    def inside(p, roots):
        if p is None:
            p = '.'
        if isinstance(p, int):          # an already-open descriptor
            return True
        try:
            p = fspath(p)
            if isinstance(p, bytes):
                p = fsdecode(p)
            p = realpath(p)
        except Exception:
            return False
        return any(p == r or p.startswith(r + sep) for r in roots)

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    # event -> indexes of its path arguments that must lie inside the run folder
    WRITE_EVENTS = {
        'os.remove': (0,), 'os.rmdir': (0,), 'os.mkdir': (0,), 'os.rename': (0, 1),
        'os.link': (0, 1), 'os.symlink': (1,), 'os.truncate': (0,), 'os.chmod': (0,),
        'os.chown': (0,), 'os.utime': (0,), 'os.chflags': (0,), 'os.lchflags': (0,),
        'os.setxattr': (0,), 'os.removexattr': (0,), 'os.mkfifo': (0,), 'os.mknod': (0,),
        'shutil.rmtree': (0,), 'shutil.copyfile': (1,), 'shutil.copymode': (1,),
        'shutil.copystat': (1,), 'shutil.move': (1,), 'shutil.chown': (0,),
        'sqlite3.connect': (0,),
    }
    READ_EVENTS = {'os.listdir': (0,), 'os.scandir': (0,), 'os.chdir': (0,), 'os.listxattr': (0,),
                   'os.getxattr': (0,), 'glob.glob': (0,)}
    DENIED = frozenset({
        'os.system', 'os.exec', 'os.posix_spawn', 'os.spawn', 'os.fork', 'os.forkpty',
        'os.kill', 'os.killpg', 'os.startfile', 'subprocess.Popen', 'pty.spawn', 'setopencode',
        'sys._current_frames', 'gc.get_objects', 'gc.get_referrers', 'gc.get_referents',
        'sys.remote_exec', 'webbrowser.open',
    })
    DENIED_PREFIXES = ('socket.', 'ctypes.', 'syslog.', 'winreg.', '_winapi.', 'msvcrt.')
    DENIED_IMPORTS = frozenset({'_ctypes', '_xxsubinterpreters'})
    # subprocess (imported by asyncio, among others) must stay importable; its process-spawning
    # primitive is replaced instead, and a fresh copy of the module may not be loaded.
    import _posixsubprocess as psp
    def no_fork_exec(*args, **kwargs):
        deny('subprocess')
    AF_UNIX = 1

    def deny(event, detail=''):
        raise PermissionError('sandbox: %s denied%s' % (event, (': ' + str(detail)) if detail else ''))

    def hook(event, args):
        if event == 'open':
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(ch in mode for ch in 'wax+')) or (
                isinstance(flags, int) and flags & WRITE_FLAGS)
            if not inside(path, write_roots if writing else read_roots):
                deny('writing' if writing else 'reading', path)
        elif event in WRITE_EVENTS:
            for i in WRITE_EVENTS[event]:
                if i >= len(args):
                    continue
                if event == 'sqlite3.connect' and isinstance(args[i], str):
                    if args[i] == ':memory:':
                        continue
                    if args[i].startswith('file:'):    # URI filenames are not plain paths
                        deny(event, args[i])
                if not inside(args[i], write_roots):
                    deny(event, args[i])
        elif event in READ_EVENTS:
            if args and not inside(args[0], read_roots):
                deny(event, args[0])
        elif event == 'socket.__new__':
            # socketpair() for asyncio's self-pipe is fine; connect/bind/sendto are refused below
            if len(args) < 2 or args[1] != AF_UNIX:
                deny(event)
        elif event in DENIED or event.startswith(DENIED_PREFIXES):
            deny(event)
        elif event == 'import':
            if args[0] in DENIED_IMPORTS or (
                    args[0] == '_posixsubprocess' and sys.modules.get('_posixsubprocess') is not psp):
                deny('import ' + args[0])
        elif event == 'object.__setattr__':
            if len(args) > 1 and args[1] in ('__code__', '__closure__', '__globals__'):
                deny('setting ' + args[1])

    if guarded:
        psp.fork_exec = no_fork_exec
        sys.addaudithook(hook)
    # Without the site module these conveniences are missing; candidate programs use them.
    builtins.exit = builtins.quit = sys.exit

    main_path = os.path.join(os.getcwd(), main_name)
    with open(main_path, encoding='utf-8') as f:
        source = f.read()
    code = compile(source, main_path, 'exec')
    write = os.write
    del source, f
    exec(code, {'__name__': '__main__', '__file__': main_path, '__builtins__': builtins})
    try:
        sys.stdout.flush()
    except Exception:
        pass
    write(1, b'\n' + nonce + b'\n')

_r1ts_run()
`;

export const JS_PRELUDE = String.raw`// r1ts sandbox prelude: see src/rl/sandbox-preludes.ts. Runs under Node's permission model.
'use strict';
const { writeSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');
const nonce = process.env.R1TS_NONCE || '';
const mainName = process.env.R1TS_MAIN || 'main.cjs';
delete process.env.R1TS_NONCE;
delete process.env.R1TS_MAIN;
delete process.env.R1TS_GUARD;
// The candidate's module body (and its top-level await, for ES modules) has finished when the
// import settles; a rejection is left unhandled, so Node prints it and exits with code 1.
import(pathToFileURL(join(__dirname, mainName)).href).then(() => { writeSync(1, '\n' + nonce + '\n'); });
`;
