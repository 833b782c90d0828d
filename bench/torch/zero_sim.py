# R1-Zero dynamics on the PyTorch peer, fast on a GPU: pretrain the mini V3 (the `deepseek-v3-mini`
# preset, built by models.py) on a corpus exported from r1ts by bench/zero-export.ts, evaluate it
# on the held-out problems (pass@1 from 8 samples, cons@8, accuracy by answer style), then run
# GRPO as r1ts does (G samples per prompt, group-normalised advantages, per-sequence mean loss,
# one update per batch, AdamW β 0.9/0.99, clip 1) and evaluate again. Used to find which corpus,
# pretraining length and RL settings let RL raise held-out accuracy before spending a 12-minute
# `r1ts zero` run on them.
#
#   tsc -p . && node dist/bench/zero-export.js '{"chain":{"suites":["chain"]}}' .zero-sim
#   python3 bench/torch/zero_sim.py .zero-sim experiments.json [i n]      # on the GPU machine
#
# (i n: run every n-th experiment from the i-th, to share a GPU between processes; EVAL_N=…
# limits the held-out problems, for a smoke test on a CPU.)
# experiments.json: a list of {"name", "data", "pre_steps", "pre_lr", "pre_bs", "seed", "packing",
# "grpos": [{"lr", "steps", "P", "G", "T", "fw", "max_new", "loss_type", "eval_every"}]}; each
# base model is evaluated, then every GRPO setting starts from it. One JSON line per result.
import json, sys, time, math, re, os, copy
from fractions import Fraction
import numpy as np, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import ModelConfig, build_model, init_weights

torch.backends.cuda.matmul.allow_tf32 = False
dev = os.environ.get('DEV', 'cuda' if torch.cuda.is_available() else 'cpu')
ROOT = sys.argv[1] if len(sys.argv) > 1 else '.zero-sim'


def _b2u():
    """GPT-2's byte-to-unicode table, inverted: the characters of byte-level BPE tokens → bytes."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]; n = 0
    for b in range(256):
        if b not in bs: bs.append(b); cs.append(256 + n); n += 1
    return {chr(c): b for b, c in zip(bs, cs)}
class Tok:
    """Decoder for the exported byte-level BPE tokenizer.json."""
    def __init__(self, path):
        j = json.load(open(path)); self.inv = {v: k for k, v in j['model']['vocab'].items()}
        for a in j.get('added_tokens', []): self.inv[a['id']] = a['content']
        self.dec = _b2u()
    def get_vocab_size(self): return max(self.inv) + 1
    def decode(self, ids, skip_special_tokens=False):
        return bytes(self.dec.get(ch, 63) for t in ids for ch in self.inv.get(t, '?')).decode('utf-8', errors='replace')


def load_corpus(name, _cache={}):
    """Token ids of the packed corpus, its document lengths, the eval/train prompts and the tokenizer."""
    if name not in _cache:
        d = os.path.join(ROOT, name)
        _cache[name] = (np.fromfile(f'{d}/lens.bin', dtype=np.int32), np.fromfile(f'{d}/ids.bin', dtype=np.uint16).astype(np.int64),
                        json.load(open(f'{d}/eval.json')), Tok(f'{d}/tokenizer.json'))
    return _cache[name]

BASE = json.load(open(os.path.join(ROOT, 'model.json')))


def pack(lens, ids, eos, seq, seed, how='stream', pad=-100):
    """Windows of seq tokens (as r1ts packs): 'stream' cuts the seeded stream of documents (EOS after
    each) anywhere; 'bestfit' places whole documents into windows, longest first, each into the
    fullest window it fits, and pads the rest with `pad` (a document longer than a window is cut)."""
    offs = np.concatenate([[0], np.cumsum(lens)])
    order = np.random.default_rng(seed).permutation(len(lens))
    if how == 'stream':
        parts = []
        for i in order: parts.append(ids[offs[i]:offs[i + 1]]); parts.append(np.array([eos]))
        s = np.concatenate(parts); n = len(s) // seq
        return torch.tensor(s[: n * seq].reshape(n, seq))
    docs = [np.concatenate([ids[offs[i]:offs[i + 1]], [eos]]) for i in order]
    pieces = [d[j:j + seq] for d in docs for j in range(0, len(d), seq)]
    pieces.sort(key=len, reverse=True)
    free = [[] for _ in range(seq + 1)]  # free[r]: windows with r tokens of room
    wins = []
    for pc in pieces:
        r = next((r for r in range(len(pc), seq + 1) if free[r]), None)
        w = free[r].pop() if r is not None else (wins.append([]) or len(wins) - 1)
        wins[w].append(pc)
        room = seq - sum(len(x) for x in wins[w])
        free[room].append(w)
    out = np.full((len(wins), seq), pad, dtype=np.int64)
    for k, w in enumerate(wins):
        s = np.concatenate(w); out[k, :len(s)] = s
    out = out[np.random.default_rng(seed + 1).permutation(len(out))]
    return torch.tensor(out)

# The strict format check and the numeric answer comparison of r1ts (template.ts, answer.ts), for integers and fractions.
FMT = re.compile(r'^\s*<think>(?:(?!</?think>|</?answer>)[\s\S])*</think>\s*<answer>(?:(?!</?think>|</?answer>)[\s\S])*</answer>\s*$')
def num(s):
    s = s.strip().replace(' ', '')
    s = re.sub(r'^[a-z]=', '', s)
    try: return Fraction(s)
    except Exception: return None

def style_of(t):
    """How an answer was reached: it checked itself, worked step by step, or answered directly."""
    if re.search(r'check|verify|Wait', t, re.I): return 'checked'
    return 'stepwise' if t.count(' = ') >= 2 else 'direct'

@torch.no_grad()
def sample(model, prompts, K, T, max_new, eos, gen, top_p=1.0):
    """prompts: list of token lists; returns list (len(prompts)*K) of completion token lists (EOS included when emitted)."""
    by_len = {}
    for i, p in enumerate(prompts): by_len.setdefault(len(p), []).append(i)
    out = [None] * (len(prompts) * K)
    for L, idx in by_len.items():
        x = torch.tensor([prompts[i] for i in idx for _ in range(K)], device=dev)
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=dev)
        toks = []
        for t in range(max_new):
            logits = model(x)['logits'][:, -1].float() / T
            p = torch.softmax(logits, -1)
            if top_p < 1:
                sp, si = torch.sort(p, -1, descending=True); cum = torch.cumsum(sp, -1); sp[(cum - sp) > top_p] = 0
                nxt = si.gather(1, torch.multinomial(sp, 1, generator=gen))
            else:
                nxt = torch.multinomial(p, 1, generator=gen)
            nxt[done] = eos
            toks.append(nxt); x = torch.cat([x, nxt], 1)
            done |= nxt[:, 0] == eos
            if done.all(): break
        toks = torch.cat(toks, 1).tolist()
        for j, i in enumerate(idx):
            for k in range(K):
                s = toks[j * K + k]
                if eos in s: s = s[: s.index(eos) + 1]
                out[i * K + k] = s
    return out

def score(text, answer):
    m = re.findall(r'<answer>([\s\S]*?)</answer>', text)
    a = num(m[-1]) if m else None
    acc = float(a is not None and a == num(answer))
    fmt = float(bool(FMT.match(text)))
    return acc, fmt

def evaluate(model, ev, tok, K=8, T=0.6, max_new=192, seed=1):
    model.eval(); eos = ev['eos']; items = ev['items'][:int(os.environ.get('EVAL_N', 10**9))]
    g = torch.Generator(device=dev).manual_seed(seed)
    comps = sample(model, [it['prompt'] for it in items], K, T, max_new, eos, g, top_p=0.95)
    p1 = []; cons = 0; styles = {}; lens = []; refl = 0; fmtn = 0
    for i, it in enumerate(items):
        c = 0; votes = {}
        for k in range(K):
            s = comps[i * K + k]; text = tok.decode([t for t in s if t != eos])
            acc, fmt = score(text, it['answer']); c += acc; fmtn += fmt; lens.append(len(s))
            st = style_of(text); e = styles.setdefault(st, [0, 0]); e[0] += 1; e[1] += acc
            refl += bool(re.search(r'\b(wait|check|verify)\b', text, re.I))
            m = re.findall(r'<answer>([\s\S]*?)</answer>', text); a = num(m[-1]) if m else None
            if fmt and a is not None: votes[a] = votes.get(a, 0) + 1
        p1.append(c / K)
        if votes and max(votes, key=votes.get) == num(it['answer']): cons += 1
    model.train()
    n = len(items) * K
    return dict(pass1=round(sum(p1) / len(p1), 4), cons=round(cons / len(items), 4), fmt=round(fmtn / n, 3), len=round(sum(lens) / n, 1),
                refl=round(refl / n, 3), styles={k: (v[0], round(v[1] / v[0], 3)) for k, v in styles.items()})

def pretrain(data, steps, lr=3e-3, bs=16, seq=256, seed=0, model_over=None, packing='stream'):
    lens, ids, ev, tok = load_corpus(data)
    cfgd = dict(BASE, **(model_over or {})); cfgd['vocab_size'] = tok.get_vocab_size()
    torch.manual_seed(seed)
    model = init_weights(build_model(ModelConfig.from_dict(cfgd), mtp=True), std=0.02, seed=seed).to(dev)
    decay = [p for p in model.parameters() if p.dim() >= 2]; nodecay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': nodecay, 'weight_decay': 0}], lr=lr, betas=(0.9, 0.95), eps=1e-8)
    wins = pack(lens, ids, ev['eos'], seq, seed, packing).to(dev)
    print(f'{data}: {wins.shape[0]} windows ({packing}), {(wins == -100).float().mean().item():.3f} padding', file=sys.stderr)
    warm = min(30, steps // 10); perm = torch.randperm(wins.shape[0], device=dev); cur = 0
    for step in range(1, steps + 1):
        f = step / warm if step <= warm else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
        for gr in opt.param_groups: gr['lr'] = lr * f
        if cur + bs > wins.shape[0]: perm = torch.randperm(wins.shape[0], device=dev); cur = 0  # next epoch, reshuffled
        x = wins[perm[cur:cur + bs]]; cur += bs
        out = model(x.clamp(min=0), labels=x); opt.zero_grad(set_to_none=True); out['loss'].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    return model

def grpo(model, ev, tok, steps=16, P=8, G=8, lr=1e-4, T=0.7, max_new=192, fw=0.25, loss_type='grpo', beta1=0.9, beta2=0.99, seed=2, eval_every=0):
    """GRPO as r1ts's zero recipe runs it (its defaults); loss_type 'grpo' (per-sequence mean) or 'dapo' (token-level)."""
    eos = ev['eos']; train = ev['train']
    rng = np.random.default_rng(seed); order = rng.permutation(len(train)); cur = 0
    g = torch.Generator(device=dev).manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(beta1, beta2), eps=1e-8, weight_decay=0)
    hist = []
    for step in range(steps):
        for gr in opt.param_groups: gr['lr'] = lr * min(1, (step + 1) / 5)
        batch = [train[order[(cur + i) % len(train)]] for i in range(P)]; cur += P
        model.eval()
        comps = sample(model, [b['prompt'] for b in batch], G, T, max_new, eos, g)
        model.train()
        R = []; accs = []; lens = []; refl = 0
        for i, b in enumerate(batch):
            for k in range(G):
                s = comps[i * G + k]; text = tok.decode([t for t in s if t != eos])
                acc, fmt = score(text, b['answer']); R.append(acc + fw * fmt); accs.append(acc); lens.append(len(s))
                refl += bool(re.search(r'\b(wait|check|verify)\b', text, re.I))
        R = torch.tensor(R).view(P, G)
        A = (R - R.mean(1, keepdim=True)) / (R.std(1, keepdim=True) + 1e-4)
        A = A.view(-1)
        rows = [b['prompt'] + comps[i * G + k] for i, b in enumerate(batch) for k in range(G)]
        Lmax = max(len(r) for r in rows)
        x = torch.full((len(rows), Lmax), eos, dtype=torch.long)
        mask = torch.zeros(len(rows), Lmax - 1)
        for r, row in enumerate(rows):
            x[r, :len(row)] = torch.tensor(row)
            pl = len(batch[r // G]['prompt'])
            mask[r, pl - 1:len(row) - 1] = 1
        x = x.to(dev); mask = mask.to(dev); A = A.to(dev)
        logits = model(x)['logits'][:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(2, x[:, 1:, None])[..., 0]
        ratio = torch.exp(logp - logp.detach())
        pt = -ratio * A[:, None] * mask
        if loss_type == 'grpo': loss = (pt.sum(1) / mask.sum(1).clamp(min=1)).mean()
        else: loss = pt.sum() / mask.sum()
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
        h = dict(step=step + 1, acc=round(sum(accs) / len(accs), 3), len=round(sum(lens) / len(lens), 1), refl=round(refl / len(accs), 3))
        if eval_every and (step + 1) % eval_every == 0: h['eval'] = evaluate(model, ev, tok)['pass1']
        hist.append(h)
    return hist

def run(name, data, pre_steps=300, pre_lr=3e-3, pre_bs=16, grpos=(), seed=0, packing='stream', **kw):
    t0 = time.time()
    model = pretrain(data, pre_steps, lr=pre_lr, bs=pre_bs, seed=seed, packing=packing)
    lens, ids, ev, tok = load_corpus(data)
    base = evaluate(model, ev, tok)
    print(json.dumps(dict(name=name, phase='base', secs=round(time.time() - t0), **base)), flush=True)
    state = copy.deepcopy(model.state_dict())
    for gc in grpos:
        model.load_state_dict(state)
        t1 = time.time()
        hist = grpo(model, ev, tok, **gc)
        after = evaluate(model, ev, tok)
        tr = [h['acc'] for h in hist]
        print(json.dumps(dict(name=name, grpo=gc, secs=round(time.time() - t1), gain=round(after['pass1'] - base['pass1'], 4), **after,
                              train_acc=[round(sum(tr[i:i + 6]) / len(tr[i:i + 6]), 3) for i in range(0, len(tr), 6)],
                              train_len=[hist[i]['len'] for i in range(0, len(hist), 6)], evals=[h.get('eval') for h in hist if 'eval' in h])), flush=True)


if __name__ == '__main__':
    exps = json.load(open(sys.argv[2]))
    i, n = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (0, 1)
    for e in exps[i::n]:
        try: run(**e)
        except Exception as ex:
            import traceback; traceback.print_exc()
            print(json.dumps(dict(name=e.get('name'), error=repr(ex))), flush=True)
