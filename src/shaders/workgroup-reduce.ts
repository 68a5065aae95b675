// Workgroup-wide reductions for the row kernels (norms, softmax, argmax, sampling): every thread
// of a workgroup contributes a value and every thread gets the combined result back.
//
// One generated function reduces several fields at once (say a sum, a min and a max), so a kernel
// that needs three statistics pays for one round of barriers, not three. The result comes back
// through workgroupUniformLoad, so WGSL's uniformity analysis knows every thread holds the same
// value: kernels may branch or loop on it around further barriers (the sampler's threshold
// search does).
//
// Two variants, chosen at build time:
// - subgroups: subgroupAdd/Min/Max inside each subgroup, one slot per subgroup in workgroup
//   memory, then every subgroup folds the slots again with subgroup operations. 2 barriers.
// - workgroup memory only: 256 slots, 16 threads fold 16 slots each (conflict-free stride), and
//   thread 0 folds the 16 partials. 3 barriers. (A binary tree would take 9; barriers are what
//   costs on a CPU adapter and they are not free on a GPU either.)
//
// Slots are reused from one call to the next without a leading barrier: every read of a call's
// slots happens before that call's final workgroupUniformLoad, which every thread must pass
// before any thread can write the slots again in the next call.
//
// Assumption (subgroup variant): a subgroup is a contiguous run of local_invocation_index of
// length subgroup_size, which is what drivers do for 1-D workgroups whose size is a multiple of
// the subgroup size. WebGPU guarantees 4 <= subgroup_size <= 128, so 256 / 4 = 64 slots suffice.

export type ReduceOp = 'sum' | 'min' | 'max';

export interface ReduceField {
  name: string;
  /** 'argmax' is a vec2<u32> (order key, index): the larger key wins, ties go to the lower index. */
  type: 'f32' | 'u32' | 'argmax';
  op?: ReduceOp;
}

/** Threads per workgroup of every row kernel. 256 is the WebGPU default limit and fills a GPU's SM/CU well. */
export const ROW_WORKGROUP = 256;

/** `enable subgroups;` when the variant uses them (must be the first directive of the module). */
export function enableSubgroups(subgroups: boolean): string {
  return subgroups ? 'enable subgroups;' : '';
}

/** Extra entry-point parameters the reductions need (append after the other builtins). */
export function laneBuiltins(subgroups: boolean): string {
  return subgroups ? ', @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32' : '';
}

/** First statement of the entry point: tells the reductions who this thread is. */
export function initLanes(subgroups: boolean): string {
  return subgroups ? 'reduce_init(lid, sg_lane, sg_size);' : 'reduce_init(lid, 0u, 1u);';
}

/** Helpers shared by every reduction of a module: thread identity and the f32 <-> order-key maps. Include once. */
export function reduceCommon(): string {
  return /* wgsl */ `
var<private> reduce_lid: u32;
var<private> reduce_lane: u32;
var<private> reduce_sg_size: u32;
fn reduce_init(lid: u32, lane: u32, sg_size: u32) {
  reduce_lid = lid;
  reduce_lane = lane;
  reduce_sg_size = sg_size;
}

// A u32 whose unsigned order is the f32 order (-inf < ... < 0 < ... < +inf): flip all bits of
// negatives, set the sign bit of positives; -0 maps to +0's key so the two tie, as they compare.
// Used for argmax keys and the sampler's threshold search. Checked on bits, not with float
// comparisons, which shader compilers may fold assuming no NaN or signed zero.
fn order_key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if (b == 0x80000000u) { return 0x80000000u; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
fn key_value(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}
`;
}

const identity = (field: ReduceField): string => {
  if (field.type === 'argmax') return 'vec2<u32>(0u, 0xffffffffu)';
  if (field.op === 'sum') return field.type === 'f32' ? '0.0' : '0u';
  if (field.type === 'f32') return field.op === 'min' ? '3.4028234663852886e38' : '-3.4028234663852886e38';
  return field.op === 'min' ? '0xffffffffu' : '0u';
};

const wgslType = (field: ReduceField): string => (field.type === 'argmax' ? 'vec2<u32>' : field.type);

/** WGSL expression combining two values of `field`. */
const combine = (field: ReduceField, a: string, b: string): string => {
  if (field.type === 'argmax') return `argmax_combine(${a}, ${b})`;
  if (field.op === 'sum') return `(${a} + ${b})`;
  return `${field.op}(${a}, ${b})`;
};

/** WGSL expression reducing `v` across the subgroup. */
const subgroupReduce = (field: ReduceField, v: string): string => {
  if (field.type === 'argmax') return `argmax_subgroup(${v})`;
  const op = { sum: 'subgroupAdd', min: 'subgroupMin', max: 'subgroupMax' }[field.op ?? 'sum'];
  return `${op}(${v})`;
};

/** Helpers for 'argmax' fields. Include once per module that reduces an argmax. */
export function argmaxReduceHelpers(subgroups: boolean): string {
  return /* wgsl */ `
fn argmax_combine(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let take_b = b.x > a.x || (b.x == a.x && b.y < a.y);
  return select(a, b, take_b);
}
${
  subgroups
    ? /* wgsl */ `fn argmax_subgroup(v: vec2<u32>) -> vec2<u32> {
  let best = subgroupMax(v.x);
  return vec2<u32>(best, subgroupMin(select(0xffffffffu, v.y, v.x == best)));
}`
    : ''
}`;
}

/**
 * WGSL for `fn <name>(v: <Name>) -> <Name>` reducing each field of struct `<Name>` over the
 * workgroup (size `workgroupSize`, a power of two from 16 to 256). Every thread must call it
 * (it has barriers) and gets the same result. Requires reduceCommon() once per module.
 */
export function workgroupReduce(name: string, structName: string, fields: ReduceField[], subgroups: boolean, workgroupSize = ROW_WORKGROUP): string {
  const fieldDecls = fields.map((f) => `  ${f.name}: ${wgslType(f)},`).join('\n');
  const header = /* wgsl */ `
struct ${structName} {
${fieldDecls}
}
var<workgroup> ${name}_result: ${structName};`;

  if (subgroups) {
    const slots = workgroupSize / 4;
    const slotDecls = fields.map((f) => `var<workgroup> ${name}_slot_${f.name}: array<${wgslType(f)}, ${slots}>;`).join('\n');
    const perSubgroup = fields.map((f) => `  let sg_${f.name} = ${subgroupReduce(f, `v.${f.name}`)};`).join('\n');
    const writeSlots = fields.map((f) => `    ${name}_slot_${f.name}[slot] = sg_${f.name};`).join('\n');
    const initAcc = fields.map((f) => `  var acc_${f.name} = ${identity(f)};`).join('\n');
    const foldSlots = fields.map((f) => `    acc_${f.name} = ${combine(f, `acc_${f.name}`, `${name}_slot_${f.name}[i]`)};`).join('\n');
    const finalFields = fields.map((f) => subgroupReduce(f, `acc_${f.name}`)).join(', ');
    return /* wgsl */ `${header}
${slotDecls}
fn ${name}(v: ${structName}) -> ${structName} {
${perSubgroup}
  let slot = reduce_lid / reduce_sg_size;
  if (reduce_lane == 0u) {
${writeSlots}
  }
  workgroupBarrier();
  // Every subgroup folds the slots (lane-strided) and reduces again; only thread 0 publishes.
  let subgroup_count = ${workgroupSize}u / reduce_sg_size;
${initAcc}
  for (var i = reduce_lane; i < subgroup_count; i += reduce_sg_size) {
${foldSlots}
  }
  let total = ${structName}(${finalFields});
  if (reduce_lid == 0u) { ${name}_result = total; }
  return workgroupUniformLoad(&${name}_result);
}
`;
  }

  const groups = 16;
  const slotDecls = fields
    .map((f) => `var<workgroup> ${name}_slot_${f.name}: array<${wgslType(f)}, ${workgroupSize}>;\nvar<workgroup> ${name}_part_${f.name}: array<${wgslType(f)}, ${groups}>;`)
    .join('\n');
  const writeSlots = fields.map((f) => `  ${name}_slot_${f.name}[reduce_lid] = v.${f.name};`).join('\n');
  const initAcc = fields.map((f) => `    var acc_${f.name} = ${name}_slot_${f.name}[reduce_lid];`).join('\n');
  const foldSlots = fields.map((f) => `      acc_${f.name} = ${combine(f, `acc_${f.name}`, `${name}_slot_${f.name}[i]`)};`).join('\n');
  const writeParts = fields.map((f) => `    ${name}_part_${f.name}[reduce_lid] = acc_${f.name};`).join('\n');
  const initTotal = fields.map((f) => `    var total_${f.name} = ${name}_part_${f.name}[0];`).join('\n');
  const foldParts = fields.map((f) => `      total_${f.name} = ${combine(f, `total_${f.name}`, `${name}_part_${f.name}[i]`)};`).join('\n');
  const totalFields = fields.map((f) => `total_${f.name}`).join(', ');
  return /* wgsl */ `${header}
${slotDecls}
fn ${name}(v: ${structName}) -> ${structName} {
${writeSlots}
  workgroupBarrier();
  // 16 threads fold 16 slots each; thread g reads g, g+16, g+32, ... (no bank conflicts).
  if (reduce_lid < ${groups}u) {
${initAcc}
    for (var i = reduce_lid + ${groups}u; i < ${workgroupSize}u; i += ${groups}u) {
${foldSlots}
    }
${writeParts}
  }
  workgroupBarrier();
  if (reduce_lid == 0u) {
${initTotal}
    for (var i = 1u; i < ${groups}u; i++) {
${foldParts}
    }
    ${name}_result = ${structName}(${totalFields});
  }
  return workgroupUniformLoad(&${name}_result);
}
`;
}

