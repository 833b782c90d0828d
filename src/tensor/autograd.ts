// Reverse-mode differentiation over the graph recorded by makeResult().
import { noGrad, Tensor } from './tensor.js';
import { accumulate } from './ops/elementwise.js';
import { full } from './tensor.js';

/**
 * Backpropagates from `root` (a scalar unless `gradOutput` is given). Leaves that require grad
 * get their gradient added to `.grad` (so several backward calls accumulate). The graph is
 * released afterwards, so intermediate buffers can be freed.
 */
export function backward(root: Tensor, gradOutput?: Tensor): void {
  if (!root.requiresGrad) throw new Error('backward(): the tensor does not require grad (no parameter feeds it, or it was computed under noGrad)');
  if (!gradOutput && root.size !== 1) throw new Error(`backward(): needs a scalar or an explicit gradient, got shape [${root.shape}]`);
  const order = topologicalOrder(root);
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, gradOutput ?? full(root.shape, 1, { backend: root.backend, dtype: root.dtype }));
  noGrad(() => {
    for (const t of order) {
      const g = grads.get(t);
      grads.delete(t);
      if (!g) continue;
      const node = t.node;
      if (!node) {
        t.grad = t.grad ? accumulate(t.grad, g) : g;
        continue;
      }
      const inGrads = node.backward(g);
      node.inputs.forEach((inp, i) => {
        const gi = inGrads[i];
        if (!inp || !gi || !inp.requiresGrad) return;
        const prev = grads.get(inp);
        grads.set(inp, prev ? accumulate(prev, gi) : gi);
      });
      // Release the graph behind us: the saved activations can be collected.
      node.inputs = [];
      node.backward = releasedBackward;
      t.node = null;
    }
  });
}

function releasedBackward(): never {
  throw new Error('backward() through a graph that was already released; run the forward pass again');
}

/** Tensors reachable from root that require grad, root first, each before its inputs. */
function topologicalOrder(root: Tensor): Tensor[] {
  const visited = new Set<Tensor>();
  const post: Tensor[] = [];
  // Iterative DFS: graphs of deep models overflow the JS stack with recursion.
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c && c.requiresGrad && !visited.has(c)) { visited.add(c); stack.push([c, 0]); }
    } else {
      stack.pop();
      post.push(t);
    }
  }
  return post.reverse();
}
