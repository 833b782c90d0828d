// The routed experts of a DeepSeekMoE layer, for inference, in one call:
//   out[t] += Σ_j w[t,j] · W_down[e] (silu(W_gate[e] x_t) ⊙ W_up[e] x_t),   e = idx[t,j].
//
// The (token, slot) pairs are grouped by expert; each expert gathers its tokens, runs its three
// products through linear_rows (which streams the weights once for one or a few rows, as in
// decoding, where sgemm would first pack them) and writes its outputs to the slots' rows of a
// scratch buffer. Experts are shared among threads (each expert's weights are read by one
// thread, once); the weighted sum over each token's slots comes last, in slot order, so the
// result does not depend on the thread count.
#include "common.h"
#include "kernels.h"

namespace r1 {

void moe_experts(const float* x, const int32_t* idx, const float* w, const float* const* gate, const float* const* up,
                 const float* const* down, i64 E, float* out, i64 n, i64 k, i64 C, i64 I) {
  const i64 slots = n * k;
  if (slots == 0 || C == 0) return;
  // slots grouped by expert (stable): order[start[e] .. start[e+1])
  std::vector<i64> start(E + 1, 0), order(slots), row(slots);
  for (i64 s = 0; s < slots; s++) start[idx[s] + 1]++;
  for (i64 e = 0; e < E; e++) start[e + 1] += start[e];
  {
    std::vector<i64> fill(start.begin(), start.end() - 1);
    for (i64 s = 0; s < slots; s++) { const i64 r = fill[idx[s]]++; order[r] = s; row[s] = r; }
  }
  std::vector<i64> active;
  i64 most = 0;
  for (i64 e = 0; e < E; e++) {
    const i64 cnt = start[e + 1] - start[e];
    if (cnt > 0) { active.push_back(e); most = std::max(most, cnt); }
  }
  std::vector<float> Y(static_cast<size_t>(slots * C));  // expert outputs, one row per slot in expert order

  // Threads share the experts when there is enough to share: a few tokens through a few small
  // experts (a decoding step) run faster on one thread than split over two.
  const double macs = 3.0 * slots * C * I, weights = 3.0 * active.size() * C * I;
  int nt = std::min<int>(threads(), static_cast<int>(active.size()));
  if (macs < 4.0e6 && weights < 1.0e6) nt = 1;
  if (nt == 1) prefetch_weights(gate[active[0]], I * C);
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> X(static_cast<size_t>(most * C)), G(static_cast<size_t>(most * I)), U(static_cast<size_t>(most * I));
#pragma omp for schedule(dynamic, 1)
    for (size_t a = 0; a < active.size(); a++) {
      const i64 e = active[a], r0 = start[e], m = start[e + 1] - r0;
      // while one matrix is read, the start of the next is requested (on one thread, the next
      // expert's gate comes after this one's down, and the first one's before the loop)
      const float* after = nt == 1 && a + 1 < active.size() ? gate[active[a + 1]] : nullptr;
      for (i64 r = 0; r < m; r++) std::memcpy(X.data() + r * C, x + (order[r0 + r] / k) * C, sizeof(float) * C);
      prefetch_weights(up[e], I * C);
      linear_rows((int)m, (int)I, (int)C, X.data(), (int)C, gate[e], (int)C, G.data(), (int)I);
      prefetch_weights(down[e], C * I);
      linear_rows((int)m, (int)I, (int)C, X.data(), (int)C, up[e], (int)C, U.data(), (int)I);
      swiglu_row(G.data(), U.data(), G.data(), m * I);
      if (after) prefetch_weights(after, I * C);
      linear_rows((int)m, (int)C, (int)I, G.data(), (int)I, down[e], (int)I, Y.data() + r0 * C, (int)C);
    }
  }
  // out[t] += Σ_j w[t,j] · Y[row of slot (t, j)], slots in order
  const int ntOut = nthreads_for(n * C);
#pragma omp parallel for num_threads(ntOut) schedule(static)
  for (i64 t = 0; t < n; t++) {
    float* o = out + t * C;
    for (i64 j = 0; j < k; j++) {
      const float wt = w[t * k + j];
      const float* y = Y.data() + row[t * k + j] * C;
#pragma omp simd
      for (i64 c = 0; c < C; c++) o[c] += wt * y[c];
    }
  }
}

std::vector<i64> experts_used(const int32_t* idx, i64 slots, i64 E) {
  std::vector<char> on(E, 0);
  for (i64 s = 0; s < slots; s++) on[idx[s]] = 1;
  std::vector<i64> used;
  for (i64 e = 0; e < E; e++) if (on[e]) used.push_back(e);
  return used;
}

// moeExperts(x, idx, weights, gate[], up[], down[], out, n, k, C, I)
static Napi::Value MoeExperts(const Napi::CallbackInfo& info) {
  Args A(info, "moeExperts");
  const float* x = A.f32(0, "x");
  const int32_t* idx = A.i32(1, "idx");
  const float* w = A.f32(2, "weights");
  float* out = A.f32(6, "out");
  const i64 n = A.n(7), k = A.n(8), C = A.n(9), I = A.n(10);
  if (A.ok && !info[3].IsArray()) A.fail("gate must be an array of Float32Arrays");
  if (!A.ok) return info.Env().Undefined();
  const i64 E = static_cast<i64>(info[3].As<Napi::Array>().Length()), slots = n * k;
  if (slots == 0 || C == 0) return info.Env().Undefined();
  const std::vector<i64> used = experts_used(idx, slots, E);  // only their weights are fetched
  std::vector<const float*> gate, up, down;
  f32_list(A, 3, "gate", used, gate);
  f32_list(A, 4, "up", used, up);
  f32_list(A, 5, "down", used, down);
  if (!A.ok) return info.Env().Undefined();
  moe_experts(x, idx, w, gate.data(), up.data(), down.data(), E, out, n, k, C, I);
  return info.Env().Undefined();
}

void RegisterMoe(Napi::Env env, Napi::Object exports) {
  R1_EXPORT(exports, "moeExperts", MoeExperts);
}

}  // namespace r1
